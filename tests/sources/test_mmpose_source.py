"""The mmpose adapter: every card builds and runs on real images, checkpoints load for real, mmpose's rescoring."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from posefix_bench.errors import PosefixError
from posefix_bench.sources import get_source
from posefix_bench.sources.cards import discover_cards
from posefix_bench.sources.mmpose_source import checkpoint_cache_dir, rescore_and_nms
from posefix_bench.structures.results import validate_results
from posefix_bench.structures.transforms import box_to_center_scale

CARDS = sorted(discover_cards())


def _inside_crops(records, boxes, card) -> bool:
    """Every keypoint lies in the padded crop of its box (decoders return positions inside their input)."""
    aspect = card.input_size[0] / card.input_size[1]
    for r in records:
        center, scale = box_to_center_scale(np.asarray(r["bbox"]), aspect)
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)[:, :2]
        lo, hi = center - 0.55 * scale, center + 0.55 * scale
        if not ((kp >= lo) & (kp <= hi)).all():
            return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("name", CARDS)
def test_every_card_runs_untrained_on_two_images(name, val_gt, two_image_boxes):
    src = get_source(name, untrained=True, batch_size=2)
    assert not src.info.trained and src.info.weights is None and "UNTRAINED" in src.info.description
    records = src.predict(val_gt, two_image_boxes)
    assert len(records) == two_image_boxes.num_boxes >= 2  # OKS-NMS keeps distinct people
    assert all(r["untrained"] is True for r in records)
    validate_results(records, num_keypoints=17, image_ids=val_gt.image_ids, category_ids=[val_gt.category_id])
    inputs = {tuple(b[:4]) for i in two_image_boxes.image_ids for b in two_image_boxes.for_image(i)}
    assert {tuple(r["bbox"]) for r in records} == inputs
    assert _inside_crops(records, two_image_boxes, src.card)


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, val_gt, two_image_boxes):
    from mmengine.runner import save_checkpoint

    name = "rtmpose-m-256x192"
    seed0 = get_source(name, untrained=True, seed=0)
    path = tmp_path / "rtmpose-m.pth"
    # the layout mmpose's released checkpoints have: weights plus meta with numpy arrays
    save_checkpoint({"state_dict": seed0.model.state_dict(), "meta": {"dataset_meta": seed0.model.dataset_meta}},
                    str(path))
    loaded = get_source(name, checkpoint=path)
    assert loaded.info.trained and loaded.info.weights == str(path)
    expected = seed0.predict(val_gt, two_image_boxes)
    got = loaded.predict(val_gt, two_image_boxes)
    assert [{k: v for k, v in r.items() if k != "untrained"} for r in expected] == got
    assert all("untrained" not in r for r in got)
    other = get_source(name, untrained=True, seed=1).predict(val_gt, two_image_boxes)
    assert [r["keypoints"] for r in other] != [r["keypoints"] for r in expected]  # the weights matter


@pytest.mark.slow
def test_checkpoint_errors(tmp_path):
    name = "sandbox-rtmpose-t-64x48"
    with pytest.raises(PosefixError, match="checkpoint not found"):
        get_source(name, checkpoint=tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(PosefixError, match="not a readable checkpoint"):
        get_source(name, checkpoint=corrupt)
    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict": {}, "message_hub": Fraction(1, 3)}, pickled)  # code torch's safe loader refuses
    with pytest.raises(PosefixError, match="refuses the pickled fractions.Fraction: a full training checkpoint"):
        get_source(name, checkpoint=pickled)
    other = tmp_path / "other.pth"
    torch.save({"state_dict": get_source("sandbox-simplebaseline-r18-128x96", untrained=True).model.state_dict()}, other)
    with pytest.raises(PosefixError, match=f"{other}: does not fit {name}: .* missing"):
        get_source(name, checkpoint=other)
    url = "https://download.invalid/posefix-bench/rtmpose-t.pth"
    with pytest.raises(PosefixError) as e:
        get_source(name, checkpoint=url)
    assert f"{url}: cannot download the checkpoint" in str(e.value)
    assert str(checkpoint_cache_dir() / "rtmpose-t.pth") in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_detection_protocol_on_the_four_images(val_gt, det_boxes_path):
    from posefix_bench.sources import load_boxes

    boxes = load_boxes(det_boxes_path, val_gt)
    records = get_source("sandbox-rtmpose-t-64x48", untrained=True, batch_size=32).predict(val_gt, boxes)
    assert {r["image_id"] for r in records} <= set(boxes.image_ids) and 0 < len(records) <= boxes.num_boxes
    det = {tuple(b[:4]) for i in boxes.image_ids for b in boxes.for_image(i)}
    assert all(tuple(r["bbox"]) in det for r in records)


class _Cfg(dict):
    def get(self, key, default=None):
        return dict.get(self, key, default)


def test_rescoring_and_oks_nms_follow_mmpose():
    sigmas = np.full(3, 0.05)

    def inst(x, scores, bbox_score, area=1e4):
        kp = np.stack([np.full(3, x), np.arange(3.0) * 30, scores], axis=1)
        return {"keypoints": kp, "keypoint_scores": np.asarray(scores), "bbox_score": bbox_score, "area": area}

    a = inst(10.0, [0.9, 0.5, 0.1], 0.8)  # 0.1 is below keypoint_score_thr: not averaged
    b = inst(10.5, [0.3, 0.3, 0.3], 0.9)  # same place as a, lower score: suppressed by OKS-NMS (> 0.9)
    c = inst(300.0, [0.1, 0.1, 0.1], 1.0)  # nothing above 0.2: score 0
    kept = rescore_and_nms([a, b, c], _Cfg(), sigmas)
    assert a["score"] == pytest.approx(0.8 * 0.7) and b["score"] == pytest.approx(0.27) and c["score"] == 0.0
    assert kept == [a, c]
    cfg = _Cfg(val_evaluator={"type": "CocoMetric", "nms_mode": "none", "score_mode": "bbox"})
    assert [i["score"] for i in rescore_and_nms([a, b, c], cfg, sigmas)] == [0.8, 0.9, 1.0]
