import numpy as np
import pytest

from posefix_bench.structures.schema import COCO17
from posefix_bench.structures.transforms import (
    affine_matrix,
    apply_affine,
    box_to_center_scale,
    flip_keypoints,
    invert_affine,
    keypoints_to_box,
    warp_image,
)


def test_center_scale_aspect_and_padding():
    c, s = box_to_center_scale(np.array([[10.0, 20.0, 100.0, 100.0], [0.0, 0.0, 30.0, 200.0]]), 0.75)
    np.testing.assert_allclose(c, [[60, 70], [15, 100]])
    np.testing.assert_allclose(s, [[125, 125 / 0.75], [150 * 1.25, 250]])
    np.testing.assert_allclose(s[:, 0] / s[:, 1], 0.75)


@pytest.mark.parametrize("rot", [0.0, 17.0, -40.0, 90.0])
def test_crop_roundtrip_on_real_keypoints(val_gt, rot):
    """image -> crop -> image recovers every keypoint within 1e-4 px (real coco-mini persons)."""
    for image_id in val_gt.image_ids[:20]:
        arr = val_gt.gt_arrays(image_id)
        if len(arr) == 0:
            continue
        c, s = box_to_center_scale(arr.boxes, 192 / 256)
        m = affine_matrix(c, s, np.full(len(arr), rot), (192, 256))
        crop = apply_affine(arr.keypoints, m)
        back = apply_affine(crop, invert_affine(m))
        assert np.abs(back - arr.keypoints[..., :2]).max() < 1e-4


def test_affine_maps_center_and_box_edges():
    m = affine_matrix(np.array([50.0, 80.0]), np.array([60.0, 80.0]), 0.0, (48, 64))
    np.testing.assert_allclose(apply_affine(np.array([[50.0, 80.0], [20.0, 40.0], [80.0, 120.0]]), m),
                               [[24, 32], [0, 0], [48, 64]])
    # 90 degrees: a point to the right of the center ends up above it in the crop
    m90 = affine_matrix(np.array([0.0, 0.0]), np.array([10.0, 10.0]), 90.0, (10, 10))
    np.testing.assert_allclose(apply_affine(np.array([[1.0, 0.0]]), m90), [[5, 4]], atol=1e-12)


def test_warp_image_agrees_with_point_transform():
    img = np.zeros((100, 120, 3), np.uint8)
    img[40, 70] = 255  # a single bright pixel at (x=70, y=40)
    m = affine_matrix(np.array([60.0, 50.0]), np.array([60.0, 80.0]), 25.0, (48, 64))
    crop = warp_image(img, m, (48, 64))
    assert crop.shape == (64, 48, 3)
    yx = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    expected = apply_affine(np.array([[70.0, 40.0]]), m)[0]
    assert abs(yx[1] - expected[0]) <= 1 and abs(yx[0] - expected[1]) <= 1


def test_keypoints_to_box_and_flip():
    kp = np.array([[[1.0, 2.0, 2], [5.0, 9.0, 2], [100.0, 100.0, 0]]])
    np.testing.assert_allclose(keypoints_to_box(kp, kp[..., 2] > 0), [[1, 2, 4, 7]])
    np.testing.assert_allclose(keypoints_to_box(kp, np.zeros((1, 3), bool)), [[0, 0, 0, 0]])
    pts = np.random.default_rng(0).uniform(0, 40, size=(2, 17, 3))
    f = flip_keypoints(pts, 48, COCO17.flip_index)
    np.testing.assert_allclose(flip_keypoints(f, 48, COCO17.flip_index), pts)
    np.testing.assert_allclose(f[:, 1, 0], 47 - pts[:, 2, 0])
