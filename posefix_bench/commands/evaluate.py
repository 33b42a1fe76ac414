"""COCO keypoint AP/AR of a results file against a COCO ground truth (pycocotools' numbers; hotcoco computes them
where it was shown to give the same, see --evaluator).

Prints the ten ``COCOeval.stats`` numbers as a table and, with ``--out DIR``, writes them to ``DIR/metrics.json``
under the keys AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl, with the data warnings of the inputs under
``warnings`` (e.g. duplicated results entries, which lower AP; see :mod:`posefix_bench.structures.checks`), and the
whole record (counts, absent policy, the evaluator that computed the numbers) to ``DIR/evaluation.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posefix_bench.commands import _checks
from posefix_bench.evaluation.coco_eval import DEFAULT_EVALUATOR, EVALUATORS

HELP = "COCO keypoint AP/AR of a results file (pycocotools' numbers)"
EVALUATOR_HELP = (
    "who computes COCOeval's numbers: 'pycocotools' (the reference), 'hotcoco' (Rust, same numbers, ~50x faster; "
    "an error where it cannot stand in), 'auto' (hotcoco where parity-tested, else pycocotools; default)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    _checks.add_gt(p)
    _checks.add_results(p)
    p.add_argument("--out", type=Path, help="folder for metrics.json")
    _checks.add_absent_policy(p)
    p.add_argument("--evaluator", choices=EVALUATORS, default=DEFAULT_EVALUATOR, help=EVALUATOR_HELP)


def run(args: argparse.Namespace) -> int:
    _checks.input_file(args.gt, "--gt", "COCO annotation file")
    _checks.input_file(args.results, "--results", "results file")
    _checks.output_dir(args.out)

    from posefix_bench.evaluation.coco_eval import METRIC_KEYS, evaluate
    from posefix_bench.reporting.tables import text_table
    from posefix_bench.structures.checks import warning_records
    from posefix_bench.structures.io import atomic_write_json

    gt, results, found = _checks.load_scored_inputs(args, "evaluate")
    warnings = _checks.print_warnings("evaluate", found)
    record = evaluate(gt, results, absent_policy=args.absent_policy, evaluator=args.evaluator)
    m = record["metrics"]
    print(text_table(["metric", "value"], [[k, m[k]] for k in METRIC_KEYS]))
    print(
        f"{record['num_results']} results on {record['num_images']} images, {record['num_gt_persons']} ground-truth "
        f"persons; {record['absent_keypoints']} absent keypoints (policy: {record['absent_policy']}); "
        f"computed by {record['evaluator']}"
        + (f" (auto fell back: {record['evaluator_fallback']})" if record["evaluator_fallback"] else "")
    )
    if warnings:
        print(f"{len(warnings)} data warning(s) above: these numbers are skewed by them")
    if args.out:
        full = dict(record, inputs={"gt": str(args.gt), "results": str(args.results)},
                    warnings=warning_records(warnings))
        for name, data in (("metrics.json", {**m, "warnings": warning_records(warnings)}), ("evaluation.json", full)):
            print(f"wrote {atomic_write_json(args.out / name, data)}")
    return 0
