"""Real person crops from coco-mini for the model tests (the shared crop transform, ground-truth boxes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posefix_bench.structures.transforms import affine_matrix, apply_affine, box_to_center_scale, warp_image


def make_crops(gt, size: tuple[int, int], count: int, min_keypoints: int = 8):
    """The first ``count`` persons with >= ``min_keypoints`` labelled keypoints, cropped to ``size`` = (W, H).

    Returns uint8 images (B, H, W, 3), float32 keypoints (B, K, 2) in crop pixels, bool valid (B, K) (labelled and
    inside the crop).
    """
    w, h = size
    images, coords, valid = [], [], []
    for image_id, ann in gt.persons(min_keypoints=min_keypoints):
        img = gt.read_image(image_id)
        center, scale = box_to_center_scale(np.asarray(ann["bbox"]), w / h)
        m = affine_matrix(center, scale, 0.0, (w, h))
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        xy = apply_affine(kp[:, :2], m)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
        images.append(warp_image(img, m, (w, h)))
        coords.append(xy)
        valid.append((kp[:, 2] > 0) & inside)
        if len(images) == count:
            break
    return (np.stack(images), torch.as_tensor(np.stack(coords), dtype=torch.float32),
            torch.as_tensor(np.stack(valid)))


@pytest.fixture(scope="session")
def crops_64x48(val_gt):
    return make_crops(val_gt, (48, 64), 8)


@pytest.fixture(scope="session")
def crops_256x192(val_gt):
    return make_crops(val_gt, (192, 256), 8)
