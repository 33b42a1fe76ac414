"""``posefix-bench synthesize``: a valid, deterministic results file, or one error line and nothing written."""

import json

import pytest

from posefix_bench.cli import main
from posefix_bench.evaluation.profile import measure_profile
from posefix_bench.structures.results import load_results

from helpers import noisy_results


def _run(capsys, *argv):
    rc = main(["synthesize", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_writes_a_deterministic_results_file(val_gt, val_gt_path, tmp_path, capsys):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    rc, out, _ = _run(capsys, "--gt", val_gt_path, "--mix", "paper", "--seed", 4, "--out", a)
    assert rc == 0 and "wrote 91 synthetic poses" in out and "jitter" in out
    recs = load_results(a, val_gt)  # a valid results file for this ground truth
    assert len(recs) == 91 and all(0 < r["score"] < 1 for r in recs)
    assert _run(capsys, "--gt", val_gt_path, "--mix", "paper", "--seed", 4, "--out", b)[0] == 0
    assert _run(capsys, "--gt", val_gt_path, "--mix", "paper", "--seed", 5, "--out", c)[0] == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_profile_and_json_mixes(val_gt, val_gt_path, tmp_path, capsys):
    prof = measure_profile(val_gt, noisy_results(val_gt, seed=0))
    path = tmp_path / "profile.json"
    prof.save(path)
    out = tmp_path / "p.json"
    rc, text, _ = _run(capsys, "--gt", val_gt_path, "--mix", path, "--out", out)
    assert rc == 0 and "measured profile" in text and len(json.loads(out.read_text())) == 91
    rc, text, _ = _run(capsys, "--gt", val_gt_path, "--mix", '{"base": "paper", "scale": {"swap": 3}}', "--out", out)
    assert rc == 0 and "paper+swap*3" in text


def test_estimator_fills_unlabelled_joints(val_gt, val_gt_path, tmp_path, capsys):
    est = tmp_path / "est.json"
    est.write_text(json.dumps(noisy_results(val_gt, seed=2, drop=0.0, extra=0.0)))
    plain, filled = tmp_path / "plain.json", tmp_path / "filled.json"
    assert _run(capsys, "--gt", val_gt_path, "--out", plain)[0] == 0
    assert _run(capsys, "--gt", val_gt_path, "--estimator", est, "--out", filled)[0] == 0
    absent = lambda p: sum(r["keypoints"][i + 2] == 0 for r in json.loads(p.read_text())  # noqa: E731
                           for i in range(0, 51, 3))
    assert absent(filled) < 0.2 * absent(plain)


@pytest.mark.parametrize("args, words", [
    (["--mix", "nonsense"], "unknown error mix 'nonsense'"),
    (["--seed", "-3"], "--seed must be >= 0"),
    (["--samples", "0"], "--samples must be >= 1"),
    (["--mix", "missing_profile.json"], "missing_profile.json: error profile not found"),
])
def test_bad_input_is_one_line_and_writes_nothing(val_gt_path, tmp_path, capsys, args, words):
    out = tmp_path / "out.json"
    rc, _, err = _run(capsys, "--gt", val_gt_path, "--out", out, *args)
    assert rc == 2 and words in err and err.count("\n") == 1
    assert not out.exists()


def test_bad_files_are_one_line(val_gt_path, tmp_path, capsys):
    bad_est = tmp_path / "est.json"
    bad_est.write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 3], "score": 1}]))
    out = tmp_path / "out.json"
    for args, words in (
        (["--gt", tmp_path / "nope.json"], "nope.json: COCO annotation file not found"),
        (["--gt", val_gt_path, "--estimator", bad_est], "est.json: result 0 has 3 keypoint values"),
        (["--gt", val_gt_path, "--out", tmp_path], "is a directory"),
    ):
        rc, _, err = _run(capsys, *args, *([] if "--out" in args else ["--out", out]))
        assert rc == 2 and words in err and err.count("\n") == 1, err
    assert not out.exists()
