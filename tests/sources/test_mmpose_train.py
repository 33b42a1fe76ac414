"""Training a sandbox card with mmpose's own training: a short real run, deterministic for a seed, loadable."""

from __future__ import annotations

import json

import pytest
import torch

from posefix_bench.errors import PosefixError
from posefix_bench.sources import get_source
from posefix_bench.sources.mmpose_train import CHECKPOINT_FORMAT, train_mmpose_estimator, train_mmpose_ladder

CARD = "sandbox-simplebaseline-r18-128x96"
SHORT = {"train_cfg.max_iters": 3, "train_dataloader.batch_size": 4}


@pytest.mark.slow
def test_short_training_is_deterministic_and_loads(tmp_path, coco_mini_root, val_gt, two_image_boxes):
    ticks = []

    def progress(it, total=None, desc=""):
        for x in it:
            ticks.append(x)
            yield x

    a = train_mmpose_estimator(CARD, coco_mini_root, tmp_path / "a", overrides=SHORT, seed=3, progress=progress)
    b = train_mmpose_estimator(CARD, coco_mini_root, tmp_path / "b", overrides=SHORT, seed=3)
    assert a.name == f"{CARD}.pth" and a.read_bytes() == b.read_bytes()  # same seed, same bytes
    assert ticks == [0, 1, 2]
    log = json.loads((tmp_path / "a" / "train_log.json").read_text())
    assert log["format"] == CHECKPOINT_FORMAT and log["train_split"] == "train2017" and len(log["losses"]) == 3
    assert all(loss > 0 for loss in log["losses"]) and log["samples_per_s"] > 0
    assert [c["iteration"] for c in log["checkpoints"]] == [3]

    src = get_source(CARD, checkpoint=a)
    assert src.info.trained
    records = src.predict(val_gt, two_image_boxes)
    assert len(records) == two_image_boxes.num_boxes and all("untrained" not in r for r in records)
    untrained = get_source(CARD, untrained=True, seed=3).predict(val_gt, two_image_boxes)
    assert [r["keypoints"] for r in untrained] != [r["keypoints"] for r in records]  # training changed weights


def test_bad_training_inputs(tmp_path, coco_mini_root):
    with pytest.raises(PosefixError, match="COCO root not found"):
        train_mmpose_estimator(CARD, tmp_path / "nope", tmp_path / "w")
    with pytest.raises(PosefixError, match="no annotation file for training"):
        train_mmpose_estimator(CARD, tmp_path, tmp_path / "w")
    with pytest.raises(PosefixError, match="unknown estimator card 'nope'"):
        train_mmpose_estimator("nope", coco_mini_root, tmp_path / "w")
    with pytest.raises(PosefixError, match="iteration-based schedule"):
        train_mmpose_estimator("rtmpose-m-256x192", coco_mini_root, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_ladder_checkpoints_are_one_training_saved_along_the_way(tmp_path, coco_mini_root, val_gt, two_image_boxes):
    ladder = train_mmpose_ladder(CARD, coco_mini_root, tmp_path / "ladder", iterations=(1, 3), overrides=SHORT,
                                 seed=3)
    assert list(ladder) == [1, 3] and [p.name for p in ladder.values()] == [f"{CARD}-iter1.pth", f"{CARD}-iter3.pth"]
    final = train_mmpose_estimator(CARD, coco_mini_root, tmp_path / "final", overrides=SHORT, seed=3)
    last, first = _weights(ladder[3]), _weights(ladder[1])
    assert last.keys() == _weights(final).keys()
    assert all(torch.equal(last[k], v) for k, v in _weights(final).items())  # same run, same seed: same weights
    assert not all(torch.equal(first[k], v) for k, v in last.items())
    meta = torch.load(ladder[1], map_location="cpu", weights_only=True)["meta"]
    assert meta["iteration"] == 1 and meta["seed"] == 3
    log = json.loads((tmp_path / "ladder" / "train_log.json").read_text())
    assert [c["iteration"] for c in log["checkpoints"]] == [1, 3] and len(log["losses"]) == 3
    assert 0 < log["checkpoints"][0]["seconds"] <= log["checkpoints"][1]["seconds"] <= log["wall_s"]
    records = get_source(CARD, checkpoint=ladder[1]).predict(val_gt, two_image_boxes)
    assert len(records) == two_image_boxes.num_boxes


def test_bad_ladder_iterations(tmp_path, coco_mini_root):
    for its, message in (((0, 2), "distinct and >= 1"), ((2, 2), "distinct and >= 1"), ((), "distinct and >= 1"),
                         ((1, 4), "iteration 4 is past the end of the schedule")):
        with pytest.raises(PosefixError, match=message):
            train_mmpose_ladder(CARD, coco_mini_root, tmp_path / "w", iterations=its, overrides=SHORT)
    assert not (tmp_path / "w").exists()
