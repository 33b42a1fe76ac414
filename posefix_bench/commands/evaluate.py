"""COCO keypoint AP/AR of a results file against a COCO ground truth (pycocotools' numbers; hotcoco computes them
where it was shown to give the same, see --evaluator).

Prints the ten ``COCOeval.stats`` numbers as a table and, with ``--out DIR``, writes them to ``DIR/metrics.json``
under the keys AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl, and the whole record (counts, absent policy,
the evaluator that computed the numbers) to ``DIR/evaluation.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posefix_bench.evaluation.coco_eval import DEFAULT_EVALUATOR, EVALUATORS
from posefix_bench.structures.results import ABSENT_POLICIES, DEFAULT_ABSENT_POLICY

HELP = "COCO keypoint AP/AR of a results file (pycocotools' numbers)"
EVALUATOR_HELP = (
    "who computes COCOeval's numbers: 'pycocotools' (the reference), 'hotcoco' (Rust, same numbers, ~50x faster; "
    "an error where it cannot stand in), 'auto' (hotcoco where parity-tested, else pycocotools; default)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", type=Path, required=True, help="COCO keypoint annotation file")
    p.add_argument("--results", type=Path, required=True, help="COCO keypoint results file")
    p.add_argument("--out", type=Path, help="directory for metrics.json")
    p.add_argument(
        "--absent-policy", choices=ABSENT_POLICIES, default=DEFAULT_ABSENT_POLICY,
        help="'absent': keypoints with zero confidence or at exactly (0, 0) are not predicted (KS 0); "
        "'pycocotools': every keypoint counts as predicted (default: %(default)s)",
    )
    p.add_argument("--evaluator", choices=EVALUATORS, default=DEFAULT_EVALUATOR, help=EVALUATOR_HELP)


def run(args: argparse.Namespace) -> int:
    from posefix_bench.evaluation.coco_eval import METRIC_KEYS, evaluate
    from posefix_bench.reporting.tables import text_table
    from posefix_bench.structures.coco import CocoDataset
    from posefix_bench.structures.io import atomic_write_json
    from posefix_bench.structures.results import load_results

    gt = CocoDataset(args.gt)
    results = load_results(args.results, gt)
    record = evaluate(gt, results, absent_policy=args.absent_policy, evaluator=args.evaluator)
    m = record["metrics"]
    print(text_table(["metric", "value"], [[k, m[k]] for k in METRIC_KEYS]))
    print(
        f"{record['num_results']} results on {record['num_images']} images, {record['num_gt_persons']} ground-truth "
        f"persons; {record['absent_keypoints']} absent keypoints (policy: {record['absent_policy']}); "
        f"computed by {record['evaluator']}"
        + (f" (auto fell back: {record['evaluator_fallback']})" if record["evaluator_fallback"] else "")
    )
    if args.out:
        full = dict(record, inputs={"gt": str(args.gt), "results": str(args.results)})
        for name, data in (("metrics.json", m), ("evaluation.json", full)):
            print(f"wrote {atomic_write_json(args.out / name, data)}")
    return 0
