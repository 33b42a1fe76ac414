"""Speed of the diagnosis on ~100,000 detected keypoints (~6,000 detections), beside COCOeval on the same data.

The ground truth is coco-mini val tiled under new image and annotation ids (built in memory, written to a temporary
file for CocoDataset); the results are one seeded set of noisy results tiled the same way, so the diagnosis of the
tiled set must be exactly the tiled diagnosis of one copy. Run ``make bench-throughput`` for timings; the two tests
share a benchmark group so their ratio is measured side by side.
"""

import json
import math

import pytest

from posefix_bench.evaluation.coco_eval import evaluate
from posefix_bench.evaluation.diagnosis import classify, summarize
from posefix_bench.structures.coco import CocoDataset

from helpers import noisy_results

TARGET_KEYPOINTS = 100_000
ID_STRIDE = 10**8  # coco-mini ids are below 10**7 (images) and 10**8 (annotations)


@pytest.fixture(scope="module")
def tiled(val_gt, val_gt_path, tmp_path_factory):
    one = noisy_results(val_gt, seed=0, noise=0.08)
    k = val_gt.schema.num_keypoints
    copies = math.ceil(TARGET_KEYPOINTS / (k * len(one)))
    data = json.loads(val_gt_path.read_text())
    tiled_gt = dict(
        data,
        images=[dict(im, id=im["id"] + t * ID_STRIDE) for t in range(copies) for im in data["images"]],
        annotations=[dict(a, id=a["id"] + t * ID_STRIDE, image_id=a["image_id"] + t * ID_STRIDE)
                     for t in range(copies) for a in data["annotations"]],
    )
    path = tmp_path_factory.mktemp("tiled") / "person_keypoints_tiled.json"
    path.write_text(json.dumps(tiled_gt))
    results = [dict(r, image_id=r["image_id"] + t * ID_STRIDE) for t in range(copies) for r in one]
    return CocoDataset(path), results, summarize(classify(val_gt, one)), copies


@pytest.mark.benchmark(group="diagnosis-100k")
def test_diagnosis_core_on_100k_keypoints(benchmark, tiled):
    gt, results, one, copies = tiled
    assert len(results) * gt.schema.num_keypoints >= TARGET_KEYPOINTS
    summary = benchmark(lambda: summarize(classify(gt, results)))
    assert summary["counts"] == {c: copies * n for c, n in one["counts"].items()}
    for joint, rec in one["per_keypoint"].items():
        assert summary["per_keypoint"][joint] == {c: copies * n for c, n in rec.items()}
    assert summary["matched_detections"] == copies * one["matched_detections"]
    assert summary["unmatched_detections"] == copies * one["unmatched_detections"]


@pytest.mark.benchmark(group="diagnosis-100k")
def test_reference_coco_eval_on_the_same_results(benchmark, tiled):
    gt, results, _, _ = tiled
    record = benchmark(evaluate, gt, results, evaluator="pycocotools")
    assert record["num_results"] == len(results) and 0.0 < record["metrics"]["AP"] < 1.0
