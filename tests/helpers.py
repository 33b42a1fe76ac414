"""Test helpers: seeded, realistic results built from a ground truth (no synthesis module needed)."""

from __future__ import annotations

import numpy as np

from posefix_bench.structures.coco import CocoDataset


def noisy_results(gt: CocoDataset, seed: int = 0, noise: float = 0.06, drop: float = 0.1, extra: float = 0.1):
    """Perturbed ground truth as COCO results.

    Each non-crowd person with keypoints becomes a detection whose keypoints move by Gaussian noise of
    ``noise * sqrt(area)`` px (unlabelled ones are placed near the labelled centroid), with a random score;
    a fraction ``drop`` of persons is left out and ``extra`` false positives (shifted copies) are added.
    """
    rng = np.random.default_rng(seed)
    k = gt.schema.num_keypoints
    out = []
    for image_id in gt.image_ids:
        arr = gt.gt_arrays(image_id)
        for g in range(len(arr)):
            if arr.iscrowd[g] or (arr.keypoints[g, :, 2] > 0).sum() == 0:
                continue
            if rng.random() < drop:
                continue
            kp = arr.keypoints[g].copy()
            lab = kp[:, 2] > 0
            center = kp[lab, :2].mean(axis=0)
            kp[~lab, :2] = center
            s = np.sqrt(max(arr.areas[g], 1.0))
            kp[:, :2] += rng.normal(0, noise * s, size=(k, 2))
            kp[:, 2] = rng.uniform(0.2, 1.0, size=k)
            out.append({"image_id": int(image_id), "category_id": gt.category_id,
                        "keypoints": kp.reshape(-1).tolist(), "score": float(rng.uniform(0.3, 1.0))})
            if rng.random() < extra:
                fp = kp.copy()
                fp[:, :2] += rng.normal(0, 0.5 * s, size=2)
                out.append({"image_id": int(image_id), "category_id": gt.category_id,
                            "keypoints": fp.reshape(-1).tolist(), "score": float(rng.uniform(0.0, 0.5))})
    return out
