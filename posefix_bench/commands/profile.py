"""Measure an estimator's error profile: per-joint error-type frequencies conditioned as PoseFix's table.

From the diagnosis of --results on --gt (Ronchi & Perona's taxonomy, COCOeval matching at OKS 0.1), counts the
classes of every matched labelled keypoint per joint, in bins of the person's labelled keypoints V (<=5, <=10, >10)
and overlapping people O (0, 1-2, >=3). Writes PROFILE.json (counts, frequencies, absent counts and provenance; the
synthesis takes it as a mix: `posefix-bench synthesize --mix PROFILE.json`) and a plot beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posefix_bench.structures.results import ABSENT_POLICIES, DEFAULT_ABSENT_POLICY

HELP = "measured per-joint error-type frequencies (V/O-conditioned) of a results file, usable as a synthesis mix"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", type=Path, required=True, help="COCO keypoint annotation file")
    p.add_argument("--results", type=Path, required=True, help="COCO keypoint results file (the estimator's)")
    p.add_argument("--out", type=Path, required=True, help="the profile JSON file to write")
    p.add_argument("--plot", type=Path, help="plot file (default: --out with the suffix .png)")
    p.add_argument("--no-plot", action="store_true", help="write the profile JSON only")
    p.add_argument(
        "--absent-policy", choices=ABSENT_POLICIES, default=DEFAULT_ABSENT_POLICY,
        help="'absent': keypoints with zero confidence or at exactly (0, 0) are counted apart as absent; "
        "'pycocotools': every keypoint counts as predicted (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from posefix_bench.errors import file_error
    from posefix_bench.evaluation.profile import measure_profile
    from posefix_bench.reporting.diagnosis_plots import profile_figure, save_figure
    from posefix_bench.structures.coco import CocoDataset
    from posefix_bench.structures.results import load_results

    plot = None if args.no_plot else (args.plot or args.out.with_suffix(".png"))
    for path in (args.out, plot):
        if path is not None and path.is_dir():
            raise file_error(path, "is a directory, expected a file name")
    if plot is not None and plot.resolve() == args.out.resolve():
        raise file_error(plot, "the plot would overwrite the profile (give --plot a .png name)")
    gt = CocoDataset(args.gt)
    results = load_results(args.results, gt)
    profile = measure_profile(gt, results, absent_policy=args.absent_policy,
                              meta={"gt": str(args.gt), "results": str(args.results)})
    fig = None if plot is None else profile_figure(profile)  # rendered before anything is written
    profile.save(args.out)
    print(profile_summary(profile))
    print(f"wrote {args.out}")
    if fig is not None:
        print(f"wrote {save_figure(fig, plot)}")
    return 0


def profile_summary(profile) -> str:
    """Keypoints and class frequencies per (V, O) cell, pooled over joints."""
    from posefix_bench.codecs.taxonomy import ERROR_TYPES, O_BINS, V_BINS
    from posefix_bench.reporting.tables import text_table

    rows = []
    for vi, v in enumerate(V_BINS):
        for oi, o in enumerate(O_BINS):
            c = profile.counts[vi, oi].sum(axis=0)
            n = int(c.sum())
            rows.append([v, o, n, int(profile.absent[vi, oi].sum())] + [float(x / n) if n else None for x in c])
    return text_table(["V", "O", "keypoints", "absent"] + list(ERROR_TYPES), rows)
