import contextlib
import copy
import io
import json

import numpy as np
import pytest

from posefix_bench.cli import main
from posefix_bench.codecs.taxonomy import ABSENT, CLASSES, GOOD, MISS
from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.coco_eval import METRIC_KEYS, evaluate
from posefix_bench.evaluation.diagnosis import (
    MATCH_OKS, MAX_DETS, classify, conf_bin_labels, corrected_results, diagnose, summarize, transitions,
)  # fmt: skip
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import load_results, save_results
from posefix_bench.structures.schema import COCO17

from evaluation.diagnosis_helpers import JITTER_KS, TEMPLATE17, coco17_case, custom_case, person, result, write_coco
from helpers import noisy_results


def _classes(table):
    return {(int(r), int(j)): CLASSES[c] for r, j, c in zip(table.result_index, table.joint, table.cls)}


@pytest.fixture
def case17(tmp_path):
    gt_path, results, expected = coco17_case(tmp_path)
    return CocoDataset(gt_path), results, expected


# -- hand-built cases ----------------------------------------------------------------------------------------------
def test_hand_built_cases_give_exactly_the_expected_classes(case17):
    gt, results, expected = case17
    table = classify(gt, results)
    assert _classes(table) == {k: v for k, v in expected.items() if isinstance(k, tuple)}
    assert table.det_ann_id.tolist() == expected["det_ann_id"]
    assert table.det_ignored.tolist() == expected["det_ignored"]
    assert table.det_evaluated.all()
    rows = {(int(r), int(j)): i for i, (r, j) in enumerate(zip(table.result_index, table.joint))}
    assert table.ks_own[rows[0, 13]] == pytest.approx(JITTER_KS, abs=1e-9)  # the jitter sits at the chosen KS
    assert table.ks_sym[rows[0, 9]] == pytest.approx(1.0) and table.ks_other[rows[1, 7]] == pytest.approx(1.0)
    assert table.ks_other[rows[1, 10]] == pytest.approx(1.0)  # swapped onto the neighbour's symmetric joint
    assert np.isnan(table.ks_sym[rows[0, 0]])  # the nose has no symmetric partner
    assert (15 not in table.joint[table.result_index == 0]) and (16 not in table.joint[table.result_index == 0])
    assert set(table.V[table.result_index == 0]) == {15} and set(table.O[table.result_index == 4]) == {0}
    assert set(table.O[table.result_index < 2]) == {1}  # A and B overlap; the crowd region does not count


def test_pycocotools_policy_classifies_the_unpredicted_keypoint_as_a_miss(case17):
    gt, results, _ = case17
    classes = _classes(classify(gt, results, absent_policy="pycocotools"))
    assert classes[0, 3] == "miss" and "absent" not in classes.values()
    diag = diagnose(gt, results, absent_policy="pycocotools")
    assert diag["ap_impact"]["absent"] == {"keypoints": 0, "AP": diag["ap"]["AP"], "delta_AP": 0.0,
                                           "metrics": diag["ap"], "evaluator": diag["evaluator"]}  # the same AP
    assert diag["ap_impact"]["miss"]["keypoints"] == 2 and diag["ap_impact"]["miss"]["delta_AP"] > 0


def test_custom_schema_is_followed(tmp_path):
    gt_path, results, expected = custom_case(tmp_path)
    gt = CocoDataset(gt_path)
    assert gt.schema.name == "critter4" and gt.schema.flip_pairs == ((1, 2),)
    table = classify(gt, results)
    assert _classes(table) == expected
    assert table.visibility[(table.result_index == 1) & (table.joint == 2)].tolist() == [1]
    diag = diagnose(gt, results, refined=results, ap_impact=False)
    assert list(diag["per_keypoint"]) == ["head", "left_hand", "right_hand", "tail"]
    assert list(diag["per_group"]) == ["front", "hands", "back"]
    assert diag["per_group"]["hands"]["inversion"] == 2 and diag["per_group"]["front"]["swap"] == 1
    assert diag["per_visibility"]["1"]["good"] == 1
    assert diag["transitions"]["matrix"][GOOD][GOOD] == 3 and diag["transitions"]["broken"]["broken"] == 0


# -- matching: COCOeval's, at OKS 0.1 ------------------------------------------------------------------------------
def _cocoeval_matches(gt, results):
    """{result index: (matched gt id or 0, ignored)} from COCOeval itself at iouThrs = [0.1], area "all"."""
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt.coco, gt.coco.loadRes([dict(r) for r in results]), "keypoints")
        ev.params.imgIds, ev.params.iouThrs = gt.image_ids, np.array([MATCH_OKS])
        ev.params.areaRng, ev.params.areaRngLbl = ev.params.areaRng[:1], ["all"]
        ev.evaluate()
    out = {}
    for e in filter(None, ev.evalImgs):
        for dt_id, m, ig in zip(e["dtIds"], e["dtMatches"][0], e["dtIgnore"][0]):
            out[dt_id - 1] = (int(m), bool(ig))
    return out


def test_matching_equals_cocoeval_on_coco_mini(val_gt, case17):
    res = noisy_results(val_gt, seed=4, noise=0.2, extra=0.5)
    busy = max(val_gt.image_ids, key=lambda i: sum(r["image_id"] == i for r in res))
    rng = np.random.default_rng(0)
    mine = [r for r in res if r["image_id"] == busy]
    for i in range(MAX_DETS + 5):  # more than maxDets in one image, duplicates and score ties included
        src = mine[i % len(mine)]
        kp = np.asarray(src["keypoints"]).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, 15, size=(len(kp), 2))
        res.append(dict(src, keypoints=kp.reshape(-1).tolist(), score=float(rng.choice([0.2, 0.5, src["score"]]))))
    for gt, results in ((val_gt, res), case17[:2]):
        table = classify(gt, results, absent_policy="pycocotools")
        ref = _cocoeval_matches(gt, results)
        n = len(results)
        assert table.det_evaluated.tolist() == [i in ref for i in range(n)]
        assert table.det_ann_id.tolist() == [ref[i][0] if i in ref and not ref[i][1] and ref[i][0] else -1
                                             for i in range(n)]
        assert table.det_ignored.tolist() == [i in ref and ref[i][1] and ref[i][0] > 0 for i in range(n)]
        if gt is val_gt:
            assert 0 < (~table.det_evaluated).sum() and (table.det_ann_id == -1).sum() > (~table.det_evaluated).sum()


def test_ties_go_to_the_later_ground_truth_in_file_order_as_in_cocoeval(tmp_path):
    k = COCO17.num_keypoints
    twin = TEMPLATE17 + (100, 100)
    anns = [person(32, 1, twin, np.full(k, 2), 10000.0, (100, 100, 100, 200)),  # file order 32, 31
            person(31, 1, twin, np.full(k, 2), 10000.0, (100, 100, 100, 200))]
    gt = CocoDataset(write_coco(tmp_path / "twins.json", anns, COCO17.to_coco_category()))
    results = [result(1, twin + 3.0, 0.9), result(1, twin - 3.0, 0.9)]
    table = classify(gt, results)
    assert table.det_ann_id.tolist() == [31, 32]  # equal OKS: the later in the file wins, then the other
    assert table.det_ann_id.tolist() == [_cocoeval_matches(gt, results)[i][0] for i in range(2)]


def test_counts_follow_the_matching_and_ap_equals_evaluate(val_gt):
    res = noisy_results(val_gt, seed=2, noise=0.1)
    table = classify(val_gt, res)
    labelled = {a["id"]: a["num_keypoints"] for a in val_gt.coco.anns.values()}
    matched = table.det_ann_id[table.det_ann_id >= 0]
    assert len(table) == sum(labelled[a] for a in matched)  # every labelled joint of every counted match, once
    assert len(set(matched.tolist())) == len(matched)
    diag = diagnose(val_gt, res, ap_impact=False)
    assert diag["ap"] == evaluate(val_gt, res)["metrics"]
    assert diag["matched_detections"] == len(matched) and diag["counts"]["total"] == len(table)
    for key in ("per_keypoint", "per_group", "per_visibility", "per_confidence", "per_size"):
        for c in CLASSES:
            assert sum(b[c] for b in diag[key].values()) == diag["counts"][c], (key, c)
    assert list(diag["per_size"]) == ["M", "L"]  # coco-mini val has no small person with keypoints
    assert diag["per_size"]["L"]["total"] == int((table.area > 96**2).sum())
    assert diag["per_visibility"]["1"]["total"] == int((table.visibility == 1).sum()) > 0


def test_confidence_bins_last_bin_is_open_ended(case17):
    gt, results, _ = case17
    results = [dict(r, keypoints=[v * 2 if i % 3 == 2 else v for i, v in enumerate(r["keypoints"])])
               for r in results]  # confidences 1.8 (0 stays 0)
    s = summarize(classify(gt, results), conf_bins=(0, 0.5, 1.0))
    assert conf_bin_labels((0, 0.5, 1.0)) == ["<0.5", ">=0.5"]
    assert s["per_confidence"][">=0.5"]["total"] == s["counts"]["total"] - 1 and s["per_confidence"]["<0.5"]["absent"]
    with pytest.raises(PosefixError, match="strictly increasing"):
        summarize(classify(gt, results), conf_bins=(0.5, 0.5))


# -- AP impact -----------------------------------------------------------------------------------------------------
def test_ap_impact_has_known_answers(case17, val_gt):
    gt, results, _ = case17
    diag = diagnose(gt, [results[i] for i in (0, 1, 4)])  # every person found, no false positive
    impact = diag["ap_impact"]
    assert diag["ap"]["AP"] < 0.9 and impact["all"]["AP"] == pytest.approx(1.0)  # perfect localisation: AP 1
    assert {n: r["keypoints"] for n, r in impact.items()} == {
        "jitter": 1, "inversion": 2, "swap": 2, "miss": 1, "absent": 1, "all": 7}
    assert all(diag["ap"]["AP"] <= r["AP"] <= 1.0 for r in impact.values())
    # real data: ground-truth copies with two labelled keypoints moved by 8% of the person's size
    rng = np.random.default_rng(1)
    res = []
    for image_id in val_gt.image_ids:
        for a in val_gt.annotations(image_id):
            if a["num_keypoints"] and not a["iscrowd"]:
                kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
                js = rng.choice(np.flatnonzero(kp[:, 2] > 0), size=min(2, a["num_keypoints"]), replace=False)
                kp[js, 1] += 0.08 * np.sqrt(a["area"])
                res.append({"image_id": image_id, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1.0})
    diag = diagnose(val_gt, res)
    impact = diag["ap_impact"]
    assert diag["counts"]["jitter"] > 0 and diag["ap"]["AP"] < impact["jitter"]["AP"] < impact["all"]["AP"]
    assert impact["all"]["AP"] > 0.98 and impact["all"]["keypoints"] == diag["counts"]["total"] - diag["counts"]["good"]


def test_correcting_every_error_leaves_only_good_keypoints(val_gt):
    res = noisy_results(val_gt, seed=6, noise=0.15)
    before = copy.deepcopy(res)
    table = classify(val_gt, res)
    fixed = corrected_results(res, table, table.cls != GOOD)
    again = classify(val_gt, fixed)
    assert (again.det_ann_id == table.det_ann_id).all() and (again.cls == GOOD).all() and len(again) == len(table)
    assert res == before and fixed != res  # the input records are not modified


# -- refined results -----------------------------------------------------------------------------------------------
def test_transitions_count_what_was_fixed_and_broken(case17):
    gt, results, _ = case17
    before = classify(gt, results)
    gt_kp = {a["id"]: np.asarray(a["keypoints"]).reshape(-1, 3) for a in gt.coco.anns.values()}
    refined = [dict(r) for r in results]
    kp0 = np.asarray(results[0]["keypoints"]).reshape(-1, 3)
    kp0[[0, 9, 10], :2] = gt_kp[11][[0, 9, 10], :2]  # the miss and the inversion fixed
    kp1 = np.asarray(results[1]["keypoints"]).reshape(-1, 3)
    kp1[0, 1] += 200  # B's nose broken: good -> miss
    refined[0] = dict(results[0], keypoints=kp0.ravel().tolist())
    refined[1] = dict(results[1], keypoints=kp1.ravel().tolist())
    t = transitions(before, classify(gt, refined))
    m = np.asarray(t["matrix"])
    assert t["fixed"]["inversion"] == {"input": 2, "fixed": 2, "rate": 1.0}
    assert t["fixed"]["miss"]["fixed"] == 1 and t["fixed"]["swap"] == {"input": 2, "fixed": 0, "rate": 0.0}
    assert t["broken"]["broken"] == 1 and t["broken"]["to"]["miss"] == 1
    assert m[MISS, GOOD] == 1 and m[GOOD, MISS] == 1 and m[ABSENT, ABSENT] == 1 and m.sum() == t["keypoints"]
    assert t["net_fixed"] == 2 and t["excluded"]["detections"] == 0
    assert t["per_group"]["upper"]["fixed"]["inversion"]["fixed"] == 2
    assert t["per_group"]["face"]["broken"]["broken"] == 1
    assert sum(b["keypoints"] for b in t["per_confidence"].values()) == t["keypoints"]


def test_transitions_exclude_detections_whose_match_changed(case17):
    gt, results, _ = case17
    refined = [dict(r) for r in results]
    moved = [v + 3000 if i % 3 != 2 else v for i, v in enumerate(results[1]["keypoints"])]  # matches nobody
    refined[1] = dict(results[1], keypoints=moved)
    diag = diagnose(gt, results, refined=refined, ap_impact=False)
    assert diag["transitions"]["excluded"] == {"detections": 1, "input_keypoints": 17, "refined_keypoints": 0}
    assert diag["transitions"]["keypoints"] == diag["counts"]["total"] - 17
    assert diag["refined"]["matched_detections"] == diag["matched_detections"] - 1
    assert set(diag["ap_change"]) == set(METRIC_KEYS)
    assert diag["ap_change"]["AP"]["after"] == evaluate(gt, refined)["metrics"]["AP"]


def test_refined_results_must_be_one_to_one(case17):
    gt, results, _ = case17
    with pytest.raises(PosefixError, match="7 input results"):
        diagnose(gt, results, refined=results[:-1])
    swapped = [results[4]] + results[1:4] + [results[0]] + results[5:]
    with pytest.raises(PosefixError, match="result 0 is for image 2 but input result 0 is for image 1"):
        diagnose(gt, results, refined=swapped)


def test_results_that_do_not_fit_the_ground_truth_are_rejected(case17):
    gt, results, _ = case17
    cases = [
        ([], "empty results list"),
        ([dict(results[0], image_id=99)], "image id 99 is not in"),
        ([dict(results[0], category_id=2)], "category id 2 is not the keypoint category"),
        ([dict(results[0], keypoints=results[0]["keypoints"][:-3])], "results have 16 keypoints, expected 17"),
    ]
    for bad, message in cases:
        with pytest.raises(PosefixError, match=message):
            classify(gt, bad)


# -- absent keypoints ----------------------------------------------------------------------------------------------
def test_unpredicted_keypoints_are_absent_and_pycocotools_policy_gives_pycocotools_ap(val_gt, val_gt_path, tmp_path):
    from pycocotools.cocoeval import COCOeval

    res = noisy_results(val_gt, seed=7, noise=0.05)
    rng = np.random.default_rng(3)
    for r in res:  # a quarter of the joints not predicted: (0, 0) with zero confidence
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)
        kp[rng.random(len(kp)) < 0.25] = 0.0
        r["keypoints"] = kp.ravel().tolist()
    path = tmp_path / "res.json"
    save_results(path, res)
    res = load_results(path, val_gt)
    table = classify(val_gt, res)
    kp = np.asarray([r["keypoints"] for r in res]).reshape(len(res), -1, 3)
    unset = (kp[table.result_index, table.joint] == 0).all(axis=1)
    assert unset.sum() > 100 and (table.cls[unset] == ABSENT).all() and (table.cls[~unset] != ABSENT).all()
    coco = diagnose(val_gt, res, absent_policy="pycocotools", ap_impact=False)
    assert coco["counts"]["absent"] == 0 and coco["counts"]["miss"] >= unset.sum()
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(val_gt.coco, val_gt.coco.loadRes(str(path)), "keypoints")
        ev.params.imgIds = val_gt.image_ids
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert [coco["ap"][k] for k in METRIC_KEYS] == [float(v) for v in ev.stats]


# -- command line --------------------------------------------------------------------------------------------------
def test_cli_diagnose_matches_cli_evaluate_and_is_deterministic(val_gt, val_gt_path, tmp_path, capsys):
    res_path, ref_path = tmp_path / "res.json", tmp_path / "ref.json"
    save_results(res_path, noisy_results(val_gt, seed=8, noise=0.1))
    save_results(ref_path, noisy_results(val_gt, seed=8, noise=0.05))
    args = ["diagnose", "--gt", str(val_gt_path), "--results", str(res_path), "--refined", str(ref_path)]
    assert main(args + ["--out", str(tmp_path / "d")]) == 0
    assert main(["evaluate", "--gt", str(val_gt_path), "--results", str(res_path), "--out", str(tmp_path / "e")]) == 0
    assert main(args + ["--out", str(tmp_path / "d2"), "--no-plots"]) == 0
    diag = json.loads((tmp_path / "d" / "diagnosis.json").read_text())
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert diag["ap"] == {k: v for k, v in metrics.items() if k != "warnings"}
    assert diag["warnings"] == metrics["warnings"] == []
    assert diag["ap_change"]["AP"]["after"] > diag["ap_change"]["AP"]["before"]
    assert (tmp_path / "d" / "diagnosis.json").read_bytes() == (tmp_path / "d2" / "diagnosis.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "ap_impact.svg", "confidence_bins.svg", "diagnosis.json", "error_types.svg", "keypoint_errors.svg"]
    assert sorted(p.name for p in (tmp_path / "d2").iterdir()) == ["diagnosis.json"]
    out = capsys.readouterr().out
    assert "AP impact" in out and "fixed" in out and "time:" in out


def _bad_inputs(tmp_path, val_gt):
    good = tmp_path / "res.json"
    save_results(good, noisy_results(val_gt, seed=9))
    recs = json.loads(good.read_text())
    files = {"short": recs[:-1], "order": recs[::-1], "k16": [dict(r, keypoints=r["keypoints"][:-3]) for r in recs]}
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / "afile").write_text("x")
    return good, [  # (options, expected message)
        ({"--results": tmp_path / "nope.json"}, "nope.json: results file not found"),
        ({"--results": tmp_path / "k16.json"}, "k16.json: result 0 has 48 keypoint values"),
        ({"--refined": tmp_path / "short.json"}, f"short.json: {len(recs) - 1} refined results for {len(recs)} input"),
        ({"--refined": tmp_path / "order.json"}, "order.json: result 0 is for image"),
        ({"--conf-bins": "0,a"}, "--conf-bins '0,a'"),
        ({"--conf-bins": "0.5,0.2"}, "strictly increasing"),
        ({"--out": tmp_path / "afile"}, "afile: exists and is not a directory"),
    ]


def test_cli_bad_input_is_one_line_and_writes_nothing(val_gt, val_gt_path, tmp_path, capsys):
    good, cases = _bad_inputs(tmp_path, val_gt)
    for i, (options, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        opts = {"--gt": val_gt_path, "--results": good, "--out": out, **options}
        assert main(["diagnose"] + [str(x) for kv in opts.items() for x in kv]) == 2, options
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, (options, err)
        assert not out.exists(), options
    assert (tmp_path / "afile").read_text() == "x"
