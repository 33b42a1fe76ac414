"""hotcoco gives pycocotools' ten numbers on real data: the evidence ``evaluator="auto"`` stands on.

Every case evaluates the same inputs with both backends and requires all ten stats equal to 1e-12 (they come out
identical). Inputs: the coco-analyze reference results files on coco-mini val, seeded detections that exercise every
branch of COCOeval (see ``parity_helpers.varied_results``), both absent-keypoint policies, image and person subsets,
the CrowdPose-14 and MPII-16 layouts and a layout with its own OKS sigmas (coco-mini val converted), and the
diagnosis' AP-impact evaluations.
"""

import json

import numpy as np
import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.evaluation import hotcoco_backend
from posefix_bench.evaluation.coco_eval import evaluate, evaluate_stats
from posefix_bench.evaluation.diagnosis import diagnose
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import ABSENT_POLICIES, load_results

from evaluation.parity_helpers import SCHEMAS, converted_gt, varied_results

TOL = 1e-12
REFERENCE_FILES = ("mediapipe_cocomini_val.json", "noisy4x_cocomini_val.json", "synthetic_paper_s1000.json")


def both(gt, results, **kw) -> np.ndarray:
    """pycocotools' stats after checking that hotcoco's equal them."""
    ref, name_ref, _ = evaluate_stats(gt, results, evaluator="pycocotools", **kw)
    fast, name_fast, _ = evaluate_stats(gt, results, evaluator="hotcoco", **kw)
    assert (name_ref, name_fast) == ("pycocotools", "hotcoco")
    assert np.abs(ref - fast).max() <= TOL, f"pycocotools {ref.tolist()}\nhotcoco     {fast.tolist()}"
    return ref


@pytest.mark.parametrize("policy", ABSENT_POLICIES)
@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_reference_results_files(val_gt, coco_mini_root, name, policy):
    results = load_results(coco_mini_root.parent / "coco-analyze-reference" / name, val_gt)
    stats = both(val_gt, results, absent_policy=policy)
    assert 0.1 < stats[0] < 1.0


@pytest.mark.parametrize("policy", ABSENT_POLICIES)
@pytest.mark.parametrize("seed", range(4))
def test_varied_results(val_gt, seed, policy):
    results = varied_results(val_gt, seed, ties=seed % 2 == 0)
    per_image = np.bincount(np.unique([r["image_id"] for r in results], return_inverse=True)[1])
    assert per_image.max() > 20 and len(set(r["image_id"] for r in results)) < len(val_gt.image_ids)
    stats = both(val_gt, results, absent_policy=policy)
    assert (stats >= 0).all()


def test_results_with_a_bbox_field_take_its_area(val_gt):
    """pycocotools' loadRes reads a detection's area from its ``bbox`` field when the first record has one."""
    results = varied_results(val_gt, 7, absent=0.0)
    rng = np.random.default_rng(7)
    boxed = [dict(r, bbox=[0.0, 0.0, float(w), float(h)]) for r, (w, h) in
             zip(results, rng.uniform(10, 200, size=(len(results), 2)))]
    plain, with_box = both(val_gt, results, absent_policy="pycocotools"), both(val_gt, boxed,
                                                                               absent_policy="pycocotools")
    assert with_box[0] == plain[0] and (with_box[3:5] != plain[3:5]).any()  # medium / large ranges change


@pytest.mark.parametrize("seed", range(3))
def test_person_and_image_subsets(val_gt, seed):
    rng = np.random.default_rng(seed)
    results = varied_results(val_gt, 10 + seed)
    anns = sorted(val_gt.coco.anns)  # crowds and persons without labelled keypoints included
    subset = rng.choice(anns, size=len(anns) // 3, replace=False).tolist()
    both(val_gt, results, person_ids=subset)
    both(val_gt, results, person_ids=subset, image_ids=val_gt.image_ids)
    both(val_gt, results, image_ids=val_gt.image_ids[seed::3])
    no_detections = [i for i in val_gt.image_ids if i not in {r["image_id"] for r in results}][:5]
    assert (both(val_gt, results, image_ids=no_detections) <= 0).all()  # 0 with persons to find, else -1


def test_images_without_persons(val_gt_path, tmp_path):
    """Detections on images that have no annotation at all are false positives in both evaluators."""
    data = json.loads(val_gt_path.read_text())
    data["images"] += [dict(data["images"][0], id=10**9 + i) for i in range(3)]
    path = tmp_path / "with_empty_images.json"
    path.write_text(json.dumps(data))
    gt = CocoDataset(path)
    results = varied_results(gt, 8)
    assert {10**9, 10**9 + 1, 10**9 + 2} & {r["image_id"] for r in results}
    with_fp = both(gt, results, absent_policy="pycocotools")
    without = both(gt, [r for r in results if r["image_id"] < 10**9], absent_policy="pycocotools")
    assert with_fp[0] < without[0]


def test_the_cached_index_gives_fresh_numbers(val_gt):
    """The ground truth is indexed once per dataset and per subset; evaluations after others are unaffected."""
    a, b = varied_results(val_gt, 20), varied_results(val_gt, 21)
    first = evaluate_stats(val_gt, a, evaluator="hotcoco")[0]
    for i in range(10):  # more subsets than the cache keeps
        evaluate_stats(val_gt, b, person_ids=sorted(val_gt.coco.anns)[i::10], evaluator="hotcoco")
    assert np.array_equal(evaluate_stats(val_gt, a, evaluator="hotcoco")[0], first)
    both(val_gt, a, person_ids=sorted(val_gt.coco.anns)[3::10])


@pytest.mark.parametrize("policy", ABSENT_POLICIES)
@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_other_keypoint_layouts(val_gt_path, tmp_path, schema, policy):
    gt = CocoDataset(converted_gt(val_gt_path, schema, tmp_path / f"{schema}.json"))
    assert gt.schema.num_keypoints == SCHEMAS[schema].num_keypoints
    assert gt.schema.sigmas == SCHEMAS[schema].sigmas
    for seed in range(2):
        stats = both(gt, varied_results(gt, seed), absent_policy=policy)
        assert (stats >= 0).all()


def test_diagnosis_ap_and_ap_impact_are_the_same(val_gt):
    results = varied_results(val_gt, 30, ties=False)
    ref = diagnose(val_gt, results, evaluator="pycocotools")
    fast = diagnose(val_gt, results, evaluator="hotcoco")
    assert ref["evaluator"] == "pycocotools" and fast["evaluator"] == "hotcoco"
    assert {v["evaluator"] for v in fast["ap_impact"].values()} == {"hotcoco"}
    assert fast["ap"] == ref["ap"]
    for name, rec in ref["ap_impact"].items():
        assert fast["ap_impact"][name]["metrics"] == rec["metrics"]
        assert fast["ap_impact"][name]["delta_AP"] == rec["delta_AP"]
    assert ref["ap_impact"]["all"]["AP"] > ref["ap"]["AP"]


def test_auto_takes_hotcoco_and_says_so(val_gt):
    rec = evaluate(val_gt, varied_results(val_gt, 40))
    assert rec["evaluator"] == "hotcoco" and rec["evaluator_fallback"] is None


def test_auto_falls_back_where_hotcoco_is_not_verified(val_gt, val_gt_path, tmp_path, monkeypatch):
    results = varied_results(val_gt, 41)
    monkeypatch.setattr(hotcoco_backend, "available", lambda: "hotcoco is not installed")
    rec = evaluate(val_gt, results)
    assert rec["evaluator"] == "pycocotools" and rec["evaluator_fallback"] == "hotcoco is not installed"
    with pytest.raises(PosefixError, match="evaluator 'hotcoco': hotcoco is not installed"):
        evaluate(val_gt, results, evaluator="hotcoco")
    monkeypatch.undo()
    # a ground-truth field that COCOeval reads in its own way (iscrowd 2 counts as a crowd there)
    data = json.loads(val_gt_path.read_text())
    data["annotations"][0]["iscrowd"] = 2
    odd_path = tmp_path / "odd.json"
    odd_path.write_text(json.dumps(data))
    odd = CocoDataset(odd_path)
    rec = evaluate(odd, results)
    assert rec["evaluator"] == "pycocotools" and "COCOeval may read differently" in rec["evaluator_fallback"]
    assert rec["metrics"] == evaluate(odd, results, evaluator="pycocotools")["metrics"]


def test_unknown_evaluator_is_a_one_line_error(val_gt):
    with pytest.raises(PosefixError, match="evaluator 'fast': unknown"):
        evaluate(val_gt, varied_results(val_gt, 42), evaluator="fast")
