import contextlib
import io
import json

import numpy as np
import pytest

from posefix_bench.cli import main
from posefix_bench.evaluation.coco_eval import METRIC_KEYS, evaluate
from posefix_bench.structures.results import load_results, save_results

from helpers import noisy_results


def _pycocotools_stats(gt_path, res_path, image_ids):
    """pycocotools on its own, straight from the files."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(res_path))
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("seed,noise", [(0, 0.03), (1, 0.08), (2, 0.15)])
def test_cli_evaluate_equals_pycocotools_exactly(val_gt, val_gt_path, tmp_path, seed, noise, capsys):
    res_path = tmp_path / "res.json"
    save_results(res_path, noisy_results(val_gt, seed=seed, noise=noise))
    out = tmp_path / "eval"
    assert main(["evaluate", "--gt", str(val_gt_path), "--results", str(res_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "AP50" in printed and "Average Precision" not in printed  # pycocotools' own printing is silent
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == [*METRIC_KEYS, "warnings"] and metrics["warnings"] == []  # clean inputs: no warning
    ref = _pycocotools_stats(val_gt_path, res_path, val_gt.image_ids)
    assert [metrics[k] for k in METRIC_KEYS] == [float(v) for v in ref]
    assert all(0.0 <= metrics[k] <= 1.0 for k in METRIC_KEYS)


def test_perfect_results_give_ap_one(val_gt):
    res = []
    for image_id in val_gt.image_ids:
        for a in val_gt.annotations(image_id):
            if a["num_keypoints"] > 0 and not a["iscrowd"]:
                res.append({"image_id": image_id, "category_id": 1, "keypoints": a["keypoints"], "score": 1.0})
    m = evaluate(val_gt, res)["metrics"]
    assert m["AP"] == pytest.approx(1.0) and m["AR"] == pytest.approx(1.0)


def test_absent_policy_pycocotools_is_exact_and_absent_policy_differs(val_gt, val_gt_path, tmp_path):
    res = noisy_results(val_gt, seed=5, noise=0.04)
    rng = np.random.default_rng(0)
    for r in res:  # make a third of the keypoints "unpredicted": at (0, 0) with zero confidence
        kp = np.asarray(r["keypoints"]).reshape(17, 3)
        drop = rng.random(17) < 0.33
        kp[drop] = 0.0
        r["keypoints"] = kp.reshape(-1).tolist()
    path = tmp_path / "res.json"
    save_results(path, res)
    loaded = load_results(path, val_gt)
    ref = _pycocotools_stats(val_gt_path, path, val_gt.image_ids)
    coco = evaluate(val_gt, loaded, absent_policy="pycocotools")
    assert [coco["metrics"][k] for k in METRIC_KEYS] == [float(v) for v in ref]
    absent = evaluate(val_gt, loaded, absent_policy="absent")
    assert absent["absent_keypoints"] > 0
    assert absent["metrics"]["AP"] <= coco["metrics"]["AP"] + 0.02


def test_person_subset_ignores_other_persons(val_gt):
    """Persons outside the subset are ignore regions: missing them costs no recall, detecting them no precision."""
    multi = [i for i in val_gt.image_ids if sum(a["num_keypoints"] > 0 for a in val_gt.annotations(i)) >= 2]
    subset = {next(a["id"] for a in val_gt.annotations(i) if a["num_keypoints"] > 0) for i in multi}
    assert len(multi) >= 5
    def exact(keep, score):
        return [{"image_id": i, "category_id": 1, "keypoints": a["keypoints"], "score": score}
                for i in multi for a in val_gt.annotations(i) if a["num_keypoints"] > 0 and keep(a["id"])]

    only_subset = exact(lambda a: a in subset, 0.5)
    others = exact(lambda a: a not in subset, 1.0)  # ranked above every subset detection
    assert others
    rec = evaluate(val_gt, only_subset, person_ids=subset)
    assert rec["num_gt_persons"] == len(subset) and rec["num_images"] == len(multi)
    assert rec["metrics"]["AR"] == pytest.approx(1.0)  # the other persons are not needed
    assert evaluate(val_gt, only_subset, image_ids=multi)["metrics"]["AR"] < 0.7  # without the subset they are
    # detections of the other persons are neither true nor false positives inside the subset
    assert evaluate(val_gt, others + only_subset, person_ids=subset)["metrics"]["AP"] == pytest.approx(1.0)
    # ...because they match their (ignored) persons: moved away from everybody, they are false positives
    far = [dict(r, keypoints=[v + 5000.0 if i % 3 != 2 else v for i, v in enumerate(r["keypoints"])])
           for r in others]
    assert evaluate(val_gt, far + only_subset, person_ids=subset)["metrics"]["AP"] < 0.9
