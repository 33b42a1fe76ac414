"""Training a sandbox card with mmpose's own training: a short real run, deterministic for a seed, loadable."""

from __future__ import annotations

import json

import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.sources import get_source
from posefix_bench.sources.mmpose_train import CHECKPOINT_FORMAT, train_mmpose_estimator

CARD = "sandbox-simplebaseline-r18-64x48"
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
    assert all(loss > 0 for loss in log["losses"])

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
