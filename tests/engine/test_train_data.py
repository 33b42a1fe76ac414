"""Training samples: crops and keypoints stay consistent under scale / rotation / flip, every sample is a pure
function of (seed, epoch, index), and the iteration sampler shards and resumes deterministically."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from posefix_bench.engine.data import AugmentConfig, IterationSampler, RefinerTrainSet, collate_samples, epoch_order
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.schema import COCO17
from posefix_bench.synthesis.lowerbody import LowerBodyAug
from posefix_bench.synthesis.mixes import get_mix

SIZE = (48, 64)


@pytest.fixture(scope="module")
def blob_dataset(tmp_path_factory):
    """One person whose 17 keypoints are solid discs of 17 distinct colours on a grey image: whatever the crop
    transform does, the crop pixel under target keypoint k must have the colour of the keypoint it came from."""
    root = tmp_path_factory.mktemp("blobs")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    colors = rng.permutation(np.array([(r, g, b) for r in (40, 140, 240) for g in (40, 140, 240)
                                       for b in (40, 140, 240)]))[:17]
    img = np.full((240, 220, 3), 90, np.uint8)
    kps = []
    for k in range(17):
        x, y = 50 + 40 * (k % 4), 30 + 40 * (k // 4)
        cv2.circle(img, (x, y), 12, tuple(int(c) for c in colors[k]), -1)
        kps += [float(x), float(y), 2]
    cv2.imwrite(str(root / "images" / "blobs.png"), img[:, :, ::-1])
    ann = {
        "images": [{"id": 1, "file_name": "blobs.png", "width": 220, "height": 240}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": kps, "num_keypoints": 17,
                         "bbox": [38.0, 18.0, 144.0, 184.0], "area": 144.0 * 184.0, "iscrowd": 0}],
        "categories": [COCO17.to_coco_category()],
    }
    (root / "ann.json").write_text(json.dumps(ann))
    return CocoDataset(root / "ann.json", root / "images"), colors


def test_crop_and_keypoints_agree_under_scale_rotation_and_flip(blob_dataset):
    ds, colors = blob_dataset
    train = RefinerTrainSet(ds, SIZE, get_mix("none", ds.schema), seed=0, augment=AugmentConfig())
    flips = 0
    for epoch in range(24):
        s = train.sample(epoch, 0)
        flips += s["flipped"]
        source = COCO17.flip_index if s["flipped"] else np.arange(17)
        for k in np.flatnonzero(s["target_valid"]):
            x, y = np.round(s["target"][k]).astype(int)
            assert np.abs(s["image"][y, x].astype(int) - colors[source[k]]).max() <= 2, (epoch, k, s["flipped"])
        # mix "none" places every input keypoint within d(0.85) (< 20 px here) of its own joint, and the joints are
        # 40 px apart: each input keypoint is nearest to its own target iff both follow the same transform and flip
        d = np.linalg.norm(s["pose"][:, None] - s["target"][None], axis=-1)
        assert (d.argmin(axis=1) == np.arange(17)).all()
    assert 0 < flips < 24


def test_samples_are_pure_functions_of_seed_epoch_index(train_gt):
    mix = get_mix("paper", train_gt.schema)
    a = RefinerTrainSet(train_gt, SIZE, mix, seed=5, max_samples=6, cache_images=True)
    b = RefinerTrainSet(train_gt, SIZE, mix, seed=5, max_samples=6)
    c = RefinerTrainSet(train_gt, SIZE, mix, seed=6, max_samples=6)
    for key in [(0, 0), (3, 5), (1, 2)]:
        s1, s2 = a[key], b[key]
        assert all(np.array_equal(s1[k], s2[k]) for k in s1)
        assert not np.array_equal(s1["pose"], c[key]["pose"])
    assert not np.array_equal(a[(0, 1)]["pose"], a[(1, 1)]["pose"])  # a new epoch, new input poses and augmentation
    batch = collate_samples([a[(0, i)] for i in range(4)])
    assert tuple(batch["image"].shape) == (4, SIZE[1], SIZE[0], 3) and str(batch["image"].dtype) == "torch.uint8"
    assert tuple(batch["pose"].shape) == (4, 17, 2) and tuple(batch["target_valid"].shape) == (4, 17)


def test_lower_body_augmentation_shrinks_the_input_legs_and_cuts_the_crop(train_gt):
    mix = get_mix("none", train_gt.schema)
    plain = RefinerTrainSet(train_gt, SIZE, mix, seed=0, max_samples=4)
    aug = RefinerTrainSet(train_gt, SIZE, mix, seed=0, max_samples=4, lower_body=LowerBodyAug(p=1.0))
    legs = [COCO17.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    changed = 0
    for i in range(4):
        p, a = plain.sample(0, i), aug.sample(0, i)
        others = np.setdiff1d(np.arange(17), legs)
        assert np.array_equal(p["pose"][others], a["pose"][others])
        assert np.array_equal(p["target"], a["target"])
        changed += int(not np.array_equal(p["pose"][legs], a["pose"][legs]))
        diff_rows = np.flatnonzero((p["image"] != a["image"]).any(axis=(1, 2)))
        if diff_rows.size:  # the cut-out lies below the hips
            hips = a["target"][[COCO17.index("left_hip"), COCO17.index("right_hip")], 1]
            assert diff_rows.min() >= np.floor(hips.min()) - 1
    assert changed > 0


def test_iteration_sampler_shards_epochs_and_resumes():
    n, gb = 22, 4  # 5 iterations per epoch, 2 samples dropped per epoch
    full = list(IterationSampler(n, gb, seed=1, start=0, stop=12))
    assert len(full) == 12 and all(len(b) == gb for b in full)
    for epoch in (0, 1):
        idx = [i for b in full[5 * epoch:5 * epoch + 5] for e, i in b]
        assert len(set(idx)) == 20 and all(e == epoch for b in full[5 * epoch:5 * epoch + 5] for e, _ in b)
        assert idx == epoch_order(1, epoch, n)[:20].tolist()
    assert full[7:] == list(IterationSampler(n, gb, seed=1, start=7, stop=12))  # resume at any iteration
    shards = [list(IterationSampler(n, gb, seed=1, start=0, stop=12, rank=r, world_size=2)) for r in (0, 1)]
    assert all(s0 + s1 == f for s0, s1, f in zip(shards[0], shards[1], full))
    with pytest.raises(Exception, match="not divisible"):
        IterationSampler(n, 5, seed=1, start=0, stop=1, world_size=2)
