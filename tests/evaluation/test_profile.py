import json

import numpy as np

from posefix_bench.cli import main
from posefix_bench.codecs.taxonomy import ERROR_TYPES, O_BINS, V_BINS
from posefix_bench.evaluation.diagnosis import diagnose
from posefix_bench.evaluation.profile import measure_profile
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import save_results
from posefix_bench.synthesis.error_profile import ErrorProfile

from evaluation.diagnosis_helpers import coco17_case, custom_case
from helpers import noisy_results


def _cell(profile, v, o):
    return profile.counts[V_BINS.index(v), O_BINS.index(o)]


def test_hand_built_keypoints_land_in_their_v_o_cells(tmp_path):
    gt_path, results, expected = coco17_case(tmp_path)
    profile = measure_profile(CocoDataset(gt_path), results, meta={"estimator": "hand-built"})
    cls = {name: ERROR_TYPES.index(name) for name in ERROR_TYPES}
    overlapped = _cell(profile, "V>10", "O=1-2")  # A (V 15) and B (V 17) overlap each other
    alone = _cell(profile, "V>10", "O=0")  # D (V 17), alone in its image
    assert overlapped.sum() == 15 + 17 - 1 and alone.sum() == 17 and profile.counts.sum() == 15 + 17 - 1 + 17
    assert overlapped[9, cls["inversion"]] == 1 and overlapped[10, cls["inversion"]] == 1
    assert overlapped[7, cls["swap"]] == 1 and overlapped[10, cls["swap"]] == 1
    assert overlapped[13, cls["jitter"]] == 1 and overlapped[0, cls["miss"]] == 1
    assert overlapped[15:, :].sum(axis=1).tolist() == [1, 1]  # only B's ankles: A's are unlabelled
    assert (alone[:, cls["good"]] == 1).all()
    assert profile.absent.sum() == 1 and profile.absent[V_BINS.index("V>10"), O_BINS.index("O=1-2"), 3] == 1
    assert profile.meta["estimator"] == "hand-built" and profile.meta["matched_detections"] == 3
    assert profile.meta["untrained"] is False


def test_profile_totals_equal_the_diagnosis_and_round_trip(val_gt, tmp_path):
    res = noisy_results(val_gt, seed=11, noise=0.1)
    profile = measure_profile(val_gt, res)
    diag = diagnose(val_gt, res, ap_impact=False)
    per_class = profile.counts.sum(axis=(0, 1, 2))
    assert per_class.tolist() == [diag["counts"][c] for c in ERROR_TYPES]
    assert profile.absent.sum() == diag["counts"]["absent"]
    per_joint = profile.counts.sum(axis=(0, 1, 3))
    assert per_joint.tolist() == [diag["per_keypoint"][k]["total"] - diag["per_keypoint"][k]["absent"]
                                  for k in val_gt.schema.keypoints]
    profile.save(tmp_path / "p.json")
    back = ErrorProfile.load(tmp_path / "p.json")
    assert np.array_equal(back.counts, profile.counts) and back.keypoints == val_gt.schema.keypoints


def test_custom_schema_profile(tmp_path):
    gt_path, results, _ = custom_case(tmp_path)
    profile = measure_profile(CocoDataset(gt_path), results)
    assert profile.schema == "critter4" and profile.keypoints == ("head", "left_hand", "right_hand", "tail")
    assert profile.counts.shape == (len(V_BINS), len(O_BINS), 4, len(ERROR_TYPES))
    assert _cell(profile, "V<=5", "O=1-2").sum(axis=0).tolist() == [3, 1, 2, 1, 0]  # good jitter inv swap miss


def test_cli_profile_writes_the_profile_and_a_plot(val_gt, val_gt_path, tmp_path, capsys):
    res_path = tmp_path / "res.json"
    records = noisy_results(val_gt, seed=12)
    save_results(res_path, [dict(r, untrained=True) for r in records])
    out = tmp_path / "prof" / "profile.json"
    assert main(["profile", "--gt", str(val_gt_path), "--results", str(res_path), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["meta"]["results"] == str(res_path) and data["meta"]["untrained"] is True
    assert ErrorProfile.load(out).counts.sum() == measure_profile(val_gt, records).counts.sum()
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "V>10" in capsys.readouterr().out


def test_cli_profile_bad_input_writes_nothing(val_gt, val_gt_path, tmp_path, capsys):
    good, bad = tmp_path / "res.json", tmp_path / "bad.json"
    save_results(good, noisy_results(val_gt, seed=13))
    bad.write_text("[1, 2]")
    (tmp_path / "adir").mkdir()
    cases = [(good, tmp_path / "adir", "adir: is a directory"), (bad, tmp_path / "p.json", "bad.json: result 0")]
    for res, out, message in cases:
        assert main(["profile", "--gt", str(val_gt_path), "--results", str(res), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "bad.json", "res.json"]
    assert not any((tmp_path / "adir").iterdir())
