"""Lower-body augmentation: segment lengths after shrinking, the cut-out region, schemas, the config record."""

import numpy as np
import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.structures.schema import COCO17, MPII16, KeypointSchema
from posefix_bench.synthesis.lowerbody import (
    LowerBodyAug, apply_lower_body_aug, cutout_lower_body, leg_chains, lower_body_box, shrink_lower_body,
)

LEGS = [(COCO17.index(f"{s}_hip"), COCO17.index(f"{s}_knee"), COCO17.index(f"{s}_ankle")) for s in ("left", "right")]


def _persons(val_gt):
    """Every coco-mini val person with all six leg keypoints labelled: (N, 17, 3)."""
    kp = np.concatenate([val_gt.gt_arrays(i).keypoints for i in val_gt.image_ids])
    legs = np.asarray(LEGS).reshape(-1)
    return kp[(kp[:, legs, 2] > 0).all(1)]


@pytest.mark.parametrize("factor", [0.8, 0.5])
def test_segments_shrink_toward_the_proximal_joint(val_gt, factor):
    kp = _persons(val_gt)
    assert len(kp) >= 10
    valid = kp[..., 2] > 0
    out = shrink_lower_body(kp, valid, COCO17, factor)
    assert out.shape == kp.shape and out is not kp
    for hip, knee, ankle in LEGS:
        for a, b in ((hip, knee), (knee, ankle)):
            before, after = kp[:, b, :2] - kp[:, a, :2], out[:, b, :2] - out[:, a, :2]
            np.testing.assert_allclose(after, factor * before, atol=1e-9)  # same direction, factor x length
        np.testing.assert_array_equal(out[:, hip], kp[:, hip])
    others = [j for j in range(17) if j not in np.asarray(LEGS)]
    np.testing.assert_array_equal(out[:, others], kp[:, others])
    np.testing.assert_array_equal(out[..., 2], kp[..., 2])


def test_missing_joints_break_the_chain(val_gt):
    kp = _persons(val_gt)[:1].copy()
    valid = kp[..., 2] > 0
    hip, knee, ankle = LEGS[0]
    no_hip = valid.copy()
    no_hip[:, hip] = False
    out = shrink_lower_body(kp, no_hip, COCO17, 0.8)
    np.testing.assert_array_equal(out[:, knee], kp[:, knee])  # nothing to shrink the knee toward
    np.testing.assert_allclose(out[:, ankle, :2] - out[:, knee, :2], 0.8 * (kp[:, ankle, :2] - kp[:, knee, :2]))
    no_knee = valid.copy()
    no_knee[:, knee] = False
    out = shrink_lower_body(kp, no_knee, COCO17, 0.8)
    np.testing.assert_array_equal(out[:, [knee, ankle]], kp[:, [knee, ankle]])


def test_cutout_covers_the_lower_body_and_nothing_else(val_gt):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(256, 192, 3), dtype=np.uint8)
    kp = _persons(val_gt)[0]
    box = kp[:, :2].min(0), kp[:, :2].max(0)
    crop = (kp[:, :2] - box[0]) / (box[1] - box[0]).max() * 160 + 16  # the person inside the crop
    valid = kp[:, 2] > 0
    out, region = cutout_lower_body(img, crop, valid, COCO17, np.random.default_rng(1), margin=0.1, fill="zero")
    x0, y0, x1, y1 = region.tolist()
    legs = np.asarray(LEGS).reshape(-1)
    assert y0 == int(np.floor(crop[[LEGS[0][0], LEGS[1][0]], 1].mean())) and y1 == 256  # from the hips down
    assert (crop[legs, 0] >= x0).all() and (crop[legs, 0] < x1).all() and (crop[legs, 1] < y1).all()
    assert x0 <= crop[legs, 0].min() - 0.1 * 192 + 1 and x1 >= crop[legs, 0].max() + 0.1 * 192
    assert (out[y0:y1, x0:x1] == 0).all()
    mask = np.ones(img.shape[:2], bool)
    mask[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[mask], img[mask])
    assert img[y0:y1, x0:x1].any()  # the input is not modified
    noisy, r2 = cutout_lower_body(img, crop, valid, COCO17, np.random.default_rng(1), fill="noise")
    again, _ = cutout_lower_body(img, crop, valid, COCO17, np.random.default_rng(1), fill="noise")
    np.testing.assert_array_equal(noisy, again)
    assert (noisy[y0:y1, x0:x1] != img[y0:y1, x0:x1]).mean() > 0.9
    mean, _ = cutout_lower_body(img.astype(np.float32), crop, valid, COCO17, np.random.default_rng(1), fill="mean")
    np.testing.assert_allclose(mean[y0:y1, x0:x1], np.broadcast_to(img.reshape(-1, 3).mean(0), (y1 - y0, x1 - x0, 3)),
                               rtol=1e-5)
    nothing, none = cutout_lower_body(img, crop, np.zeros(17, bool), COCO17, np.random.default_rng(1))
    assert none is None and np.array_equal(nothing, img)


def test_legs_are_resolved_by_name():
    assert leg_chains(COCO17).tolist() == [list(c) for c in LEGS]
    mp = leg_chains(MPII16)
    assert [MPII16.keypoints[i] for i in mp[0]] == ["left_hip", "left_knee", "left_ankle"]
    kp = np.zeros((16, 2))
    kp[mp[0]] = [[10, 10], [10, 30], [10, 50]]
    valid = np.zeros(16, bool)
    valid[mp[0]] = True
    out = shrink_lower_body(kp, valid, MPII16, 0.5)
    np.testing.assert_allclose(out[mp[0]], [[10, 10], [10, 20], [10, 30]])
    assert lower_body_box(kp, valid, MPII16, (64, 64), margin=0.0).tolist() == [10, 10, 11, 64]
    arms = KeypointSchema("arms", ("left_wrist", "right_wrist"), (0.06, 0.06))
    with pytest.raises(PosefixError, match="names no hip/knee/ankle"):
        leg_chains(arms)


def test_config_record_and_apply(val_gt):
    assert LowerBodyAug().p == 0.0 and LowerBodyAug().factor == 0.8
    for bad in (dict(p=1.5), dict(factor=0.0), dict(factor=1.2), dict(margin=-1), dict(fill="blur")):
        with pytest.raises(PosefixError, match="lower-body augmentation"):
            LowerBodyAug(**bad)
    kp = _persons(val_gt)[0]
    valid = kp[:, 2] > 0
    img = np.full((400, 400, 3), 7, np.uint8)
    same, same_img, applied = apply_lower_body_aug(LowerBodyAug(), np.random.default_rng(0), COCO17, kp, valid, img)
    assert not applied and same is kp and same_img is img
    out, out_img, applied = apply_lower_body_aug(LowerBodyAug(p=1.0, fill="zero"), np.random.default_rng(0),
                                                 COCO17, kp, valid, img)
    assert applied
    np.testing.assert_allclose(out, shrink_lower_body(kp, valid, COCO17, 0.8))
    assert (out_img == 0).any() and (out_img == 7).any()
    hits = [apply_lower_body_aug(LowerBodyAug(p=0.3, cutout=False), np.random.default_rng(s), COCO17, kp, valid)[2]
            for s in range(400)]
    assert 0.2 < np.mean(hits) < 0.4
