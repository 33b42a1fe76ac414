"""Person boxes: ground truth and COCO detection files, with one-line errors for bad box files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.sources.boxes import load_boxes


def test_gt_boxes_are_the_persons_with_keypoints(val_gt, val_boxes):
    expected = sum(1 for _ in val_gt.persons(min_keypoints=1))
    assert val_boxes.num_boxes == expected == 91
    assert val_boxes.image_ids == val_gt.image_ids  # images without persons stay in the set, with no box
    some = next(i for i in val_boxes.image_ids if len(val_boxes.for_image(i)))
    arr = val_gt.gt_arrays(some)
    b = val_boxes.for_image(some)
    assert b.shape[1] == 5 and np.all(b[:, 4] == 1.0)
    assert any(np.allclose(b[0, :4], g) for g in arr.boxes)


def test_detection_file_gives_its_four_images(val_gt, det_boxes_path):
    boxes = load_boxes(det_boxes_path, val_gt)
    raw = json.loads(det_boxes_path.read_text())
    assert boxes.image_ids == [785, 40083, 196141, 197388]
    assert boxes.num_boxes == len(raw) == 118
    strict = load_boxes(det_boxes_path, val_gt, score_thr=0.5)
    assert strict.num_boxes == sum(d["score"] >= 0.5 for d in raw) < 118
    assert strict.image_ids == boxes.image_ids
    assert np.all(strict.for_image(785)[:, 4] >= 0.5)


def _write(tmp_path, data, name="dets.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize("data, message", [
    ([], "empty box list"),
    ([{"image_id": 785, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.01}], "no box with score >= 0.5"),
    ([{"image_id": 123456789, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9}], "not in"),
    ([{"image_id": 785, "category_id": 1, "bbox": [1, 2], "score": 0.9}], "box 0 has a 'bbox'"),
    ([{"image_id": 785, "category_id": 1, "bbox": [1, 2, 0, 4], "score": 0.9}], "non-positive width"),
    ([{"image_id": 785, "category_id": 1, "bbox": [1, 2, 3, 4]}], "box 0 has no 'score'"),
    ([{"image_id": 785, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.9}], "no box of category 1"),
    ({"image_id": 785}, "expected a JSON list"),
])
def test_bad_box_files_are_one_line_errors(tmp_path, val_gt, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(PosefixError, match=message) as e:
        load_boxes(path, val_gt, score_thr=0.5)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_box_file_and_bad_threshold(tmp_path, val_gt):
    with pytest.raises(PosefixError, match="not found"):
        load_boxes(tmp_path / "nope.json", val_gt)
    with pytest.raises(PosefixError, match="threshold"):
        load_boxes("gt", val_gt, score_thr=-1)
