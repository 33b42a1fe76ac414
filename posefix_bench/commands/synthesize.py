"""A synthetic upstream source: ground truth + PoseFix input-pose synthesis -> a COCO keypoint results file.

Every non-crowd person with labelled keypoints gets one pose whose keypoints are drawn from the chosen error mix
(PoseFix Sec. 4; ``--mix paper``, ``jitter``, ``inversion``, ``swap``, ``miss``, ``none``, ``no-swap``,
``no-inversion``, ``jitter-only``, ``miss-heavy``, an error-profile .json measured by ``posefix-bench profile``,
or a JSON object such as '{"base": "paper", "scale": {"swap": 2}}'), with per-keypoint confidences that fall
with the keypoint's error and an instance score from them. Unlabelled joints are left out (0, 0, 0), or taken
from ``--estimator RES.json`` where one of its poses matches the person. The same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posefix_bench.commands import _checks

HELP = "synthetic results: ground truth + input-pose synthesis with a chosen error mix"


def add_arguments(p: argparse.ArgumentParser) -> None:
    _checks.add_gt(p)
    p.add_argument("--mix", default="paper",
                   help="error mix: a name, an error-profile .json or a JSON object (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed, >= 0 (default: %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="results file to write (JSON)")
    p.add_argument("--estimator", type=Path,
                   help="optional results file whose matched poses fill the unlabelled joints")
    p.add_argument("--samples", type=int, default=None,
                   help="candidate points per keypoint and class draw (default: the library's)")


def run(args: argparse.Namespace) -> int:
    from posefix_bench.errors import PosefixError

    if args.seed < 0:
        raise PosefixError(f"--seed must be >= 0, got {args.seed}")
    if args.samples is not None and args.samples < 1:
        raise PosefixError(f"--samples must be >= 1, got {args.samples}")
    _checks.input_file(args.gt, "--gt", "COCO annotation file")
    _checks.input_file(args.estimator, "--estimator", "results file")
    _checks.output_file(args.out)
    _checks.distinct(_checks.namespace_paths(args, "gt", "estimator", "out"))

    from posefix_bench.progress import tqdm_progress
    from posefix_bench.reporting.tables import text_table
    from posefix_bench.structures.checks import check_ground_truth, check_results, require_persons
    from posefix_bench.structures.coco import CocoDataset
    from posefix_bench.structures.results import load_results, save_results
    from posefix_bench.synthesis.mixes import get_mix
    from posefix_bench.synthesis.synthesize import DEFAULT_SAMPLES, synthesize_dataset

    samples = DEFAULT_SAMPLES if args.samples is None else args.samples
    gt = CocoDataset(args.gt)
    require_persons(gt, "synthesise from")
    mix = get_mix(args.mix, gt.schema)
    estimates = load_results(args.estimator, gt) if args.estimator else None
    _checks.print_warnings("synthesize", check_ground_truth(gt) + (check_results(estimates, args.estimator)
                                                                   if estimates else []))
    poses = synthesize_dataset(gt, mix, args.seed, estimates, samples=samples, progress=tqdm_progress)
    save_results(args.out, poses.to_results())
    counts, expected = poses.class_counts(), poses.expected_counts()
    total = max(sum(counts.values()), 1)
    rows = [[name, counts[name], counts[name] / total, expected[name] / total] for name in counts]
    print(text_table(["class", "keypoints", "share", "expected"], rows))
    print(f"mix {mix.describe()}; seed {args.seed}")
    print(f"wrote {len(poses)} synthetic poses to {args.out}")
    return 0
