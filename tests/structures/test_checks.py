"""Data checks (structures/checks.py): each policy row of the module table, as an error or a returned warning."""

from __future__ import annotations

import json
import math

import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.structures.checks import (
    MAX_COORDINATE,
    DataWarning,
    check_ground_truth,
    check_results,
    require_persons,
    warning_records,
)
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import validate_results

from helpers import noisy_results


def gt_variant(tmp_path, val_gt, change, name="gt.json"):
    """The coco-mini val ground truth with ``change(data)`` applied, written to ``tmp_path / name``."""
    data = json.loads(val_gt.path.read_text())
    change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))  # json.dumps writes NaN / Infinity tokens, which json.load reads back
    return path


def _labelled(data, n=0):
    return [a for a in data["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]][n]


def test_real_coco_mini_has_no_warnings(val_gt, train_gt):
    assert check_ground_truth(val_gt) == [] and check_ground_truth(train_gt) == []
    assert require_persons(val_gt) == 91
    assert check_results(noisy_results(val_gt, seed=0), "res.json") == []


@pytest.mark.parametrize("change, words", [
    (lambda d: _labelled(d).update(area=float("nan")), "non-finite area"),
    (lambda d: _labelled(d).update(area=float("inf")), "non-finite area"),
    (lambda d: _labelled(d).update(area=-5.0), "negative area"),
    (lambda d: _labelled(d).update(area=0), "area 0: the OKS divides by the area"),
    (lambda d: _labelled(d)["keypoints"].__setitem__(0, float("nan")), "non-finite keypoint"),
    (lambda d: _labelled(d)["keypoints"].__setitem__(1, 1e308), "beyond 1e+06 px"),
    (lambda d: _labelled(d)["bbox"].__setitem__(2, float("inf")), "non-finite bbox"),
    (lambda d: _labelled(d)["keypoints"].__setitem__(0, "12"), "non-numeric keypoint"),
    (lambda d: _labelled(d, 1).update(id=_labelled(d, 0)["id"]), "annotation ids are used more than once"),
    (lambda d: _labelled(d).pop("id"), "has no 'id'"),
], ids=["nan-area", "inf-area", "negative-area", "zero-area", "nan-keypoint", "huge-keypoint", "inf-bbox",
        "string-keypoint", "duplicate-id", "no-id"])
def test_corrupt_ground_truth_is_an_error_naming_the_file_and_annotation(tmp_path, val_gt, change, words):
    path = gt_variant(tmp_path, val_gt, change)
    with pytest.raises(PosefixError, match="annotation") as info:
        CocoDataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message


def test_zero_area_of_an_unlabelled_person_is_fine(tmp_path, val_gt):
    def change(d):
        unlabelled = [a for a in d["annotations"] if a["num_keypoints"] == 0]
        unlabelled[0]["area"] = 0

    assert len(CocoDataset(gt_variant(tmp_path, val_gt, change))) == len(val_gt)


def test_orphan_and_duplicated_annotations_are_warnings(tmp_path, val_gt):
    def change(d):
        person = _labelled(d)
        d["annotations"].append(dict(person, id=10**9))  # the same person again
        d["annotations"].append(dict(person, id=10**9 + 1, image_id=123456789))  # an image not in 'images'

    gt = CocoDataset(gt_variant(tmp_path, val_gt, change))
    found = check_ground_truth(gt)
    assert [w.code for w in found] == ["orphan-annotations", "duplicate-persons"]
    assert all(isinstance(w, DataWarning) and w.count == 1 and w.message.startswith(str(gt.path)) for w in found)
    assert "image 123456789" in found[0].message and str(10**9) in found[1].message
    records = warning_records(found)
    assert records[0] == {"code": "orphan-annotations", "source": str(gt.path), "count": 1,
                          "message": found[0].message}
    json.dumps(records)  # plain JSON


def test_no_persons_is_an_error(tmp_path, val_gt):
    def no_keypoints(d):
        for a in d["annotations"]:
            a["keypoints"] = [0] * 51
            a["num_keypoints"] = 0

    gt = CocoDataset(gt_variant(tmp_path, val_gt, no_keypoints))
    with pytest.raises(PosefixError, match="no non-crowd person with labelled keypoints in 96 images: nothing to "
                                           "evaluate"):
        require_persons(gt)
    empty = CocoDataset(gt_variant(tmp_path, val_gt, lambda d: d.update(images=[], annotations=[]), "empty.json"))
    with pytest.raises(PosefixError, match="in 0 images"):
        require_persons(empty, "diagnose")


def test_duplicated_results_are_a_warning(val_gt):
    res = validate_results(noisy_results(val_gt, seed=1), "res.json")
    doubled = res + [dict(r) for r in res[:5]]
    (w,) = check_results(doubled, "res.json")
    assert w.code == "duplicate-results" and w.count == 5 and w.source == "res.json"
    assert w.message.startswith(f"res.json: 5 of {len(doubled)} entries") and f"entries 0 and {len(res)}" in w.message
    # the same keypoints on another image, or another score, are not duplicates of the first kind
    moved = [dict(res[0], image_id=res[0]["image_id"] + 1)]
    assert check_results(res + moved, "res.json") == []


@pytest.mark.parametrize("value", [1e308, -2e6, MAX_COORDINATE * 1.01])
def test_results_beyond_any_image_are_an_error(val_gt, value):
    res = noisy_results(val_gt, seed=2)
    res[3]["keypoints"][4] = value
    with pytest.raises(PosefixError, match=r"res.json: result 3 has a coordinate .* at index 4, beyond 1e\+06 px"):
        validate_results(res, "res.json")
    res[3]["keypoints"][4] = MAX_COORDINATE  # the bound itself is allowed
    assert math.isfinite(validate_results(res, "res.json")[3]["keypoints"][4])
