import json
import os

import numpy as np
import pytest

from posefix_bench.cli import main
from posefix_bench.errors import PosefixError
from posefix_bench.structures.results import (
    absent_mask,
    arrays_to_results,
    load_results,
    results_to_arrays,
    save_results,
)

from helpers import noisy_results


def _write(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return p


def _good(gt):
    return noisy_results(gt, seed=1)


BAD_CASES = {
    "not_json": ("{not json", "not valid JSON"),
    "not_list": ({"image_id": 785}, "expected a JSON list"),
    "empty": ([], "empty results list"),
    "wrong_count": ("WRONG_COUNT", "48 keypoint values, expected 51"),
    "nan": ("NAN", "non-finite keypoint value"),
    "inf": ("INF", "non-finite keypoint value"),
    "neg_score": ("NEG_SCORE", "negative score"),
    "no_score": ("NO_SCORE", "has no 'score'"),
    "nan_score": ("NAN_SCORE", "non-finite score"),
    "unknown_image": ("UNKNOWN_IMAGE", "absent from"),
    "not_object": ([1, 2], "expected an object"),
}


def _make_bad(kind, gt):
    content, _ = BAD_CASES[kind]
    if not isinstance(content, str) or not content.isupper():
        return content
    recs = _good(gt)[:5]
    r = recs[2]
    if kind == "wrong_count":
        r["keypoints"] = r["keypoints"][:48]
    elif kind == "nan":
        r["keypoints"][7] = float("nan")
    elif kind == "inf":
        r["keypoints"][4] = float("inf")
    elif kind == "neg_score":
        r["score"] = -0.1
    elif kind == "no_score":
        del r["score"]
    elif kind == "nan_score":
        r["score"] = float("nan")
    elif kind == "unknown_image":
        r["image_id"] = 123456789
    return json.dumps(recs)  # python's json writes NaN / Infinity literals


@pytest.mark.parametrize("kind", sorted(BAD_CASES))
def test_bad_results_give_one_line_error(kind, val_gt, tmp_path):
    path = _write(tmp_path, f"{kind}.json", _make_bad(kind, val_gt))
    with pytest.raises(PosefixError) as e:
        load_results(path, val_gt)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)) and BAD_CASES[kind][1] in msg


@pytest.mark.parametrize("kind", ["not_json", "empty", "nan", "unknown_image", "wrong_count"])
def test_cli_bad_results_exit_nonzero_without_traceback(kind, val_gt, val_gt_path, tmp_path, capsys):
    path = _write(tmp_path, f"{kind}.json", _make_bad(kind, val_gt))
    out = tmp_path / "out"
    assert main(["evaluate", "--gt", str(val_gt_path), "--results", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_missing_files_are_one_line_errors(val_gt_path, tmp_path, capsys):
    assert main(["evaluate", "--gt", str(val_gt_path), "--results", str(tmp_path / "none.json")]) == 2
    assert "results file not found" in capsys.readouterr().err
    bad_gt = _write(tmp_path, "gt.json", {"images": []})
    assert main(["evaluate", "--gt", str(bad_gt), "--results", str(bad_gt)]) == 2
    assert "no 'annotations' list" in capsys.readouterr().err


def test_save_is_atomic_and_roundtrips(val_gt, tmp_path):
    recs = _good(val_gt)
    p = tmp_path / "res.json"
    save_results(p, recs)
    assert load_results(p, val_gt) == load_results(p, val_gt)
    back = load_results(p, val_gt)
    assert [r["image_id"] for r in back] == [r["image_id"] for r in recs]
    before = p.read_bytes()
    bad = [dict(recs[0], score=float("nan"))]
    with pytest.raises(PosefixError):
        save_results(p, bad)
    assert p.read_bytes() == before  # the complete earlier file survives
    assert [f for f in os.listdir(tmp_path) if f != "res.json"] == []  # no temp file left


def test_arrays_roundtrip(val_gt):
    recs = _good(val_gt)
    arr = results_to_arrays(recs, 17)
    assert arr.keypoints.shape == (len(recs), 17, 3)
    back = arrays_to_results(arr.image_ids, arr.keypoints, arr.scores, arr.category_ids)
    assert back == [{k: r[k] for k in ("image_id", "category_id", "keypoints", "score")} for r in recs]


def test_absent_policy():
    kp = np.array([[[0.0, 0.0, 0.9], [5.0, 6.0, 0.0], [5.0, 0.0, 0.5], [1.0, 1.0, 0.7]]])
    np.testing.assert_array_equal(absent_mask(kp, "absent"), [[True, True, False, False]])
    np.testing.assert_array_equal(absent_mask(kp, "pycocotools"), [[False] * 4])
    with pytest.raises(PosefixError, match="unknown absent-keypoint policy"):
        absent_mask(kp, "weird")


def test_atomic_writes_get_normal_permissions(tmp_path):
    from posefix_bench.structures.io import atomic_write_text

    p = atomic_write_text(tmp_path / "x.txt", "hi")
    q = tmp_path / "y.txt"
    q.write_text("hi")
    assert (p.stat().st_mode & 0o777) == (q.stat().st_mode & 0o777)
