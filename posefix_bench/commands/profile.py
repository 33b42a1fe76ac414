"""Measure an estimator's error profile: per-joint error-type frequencies conditioned as PoseFix's table.

From the diagnosis of --results on --gt (Ronchi & Perona's taxonomy, COCOeval matching at OKS 0.1), counts the
classes of every matched labelled keypoint per joint, in bins of the person's labelled keypoints V (<=5, <=10, >10)
and overlapping people O (0, 1-2, >=3). Writes PROFILE.json (counts, frequencies, absent counts and provenance; the
synthesis takes it as a mix: `posefix-bench synthesize --mix PROFILE.json`) and a plot beside it. Data warnings of
the inputs (:mod:`posefix_bench.structures.checks`) are recorded in the profile's ``meta.warnings``; a profile with no
matched keypoint is refused (as a mix it would synthesise perfect poses).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posefix_bench.commands import _checks

HELP = "measured per-joint error-type frequencies (V/O-conditioned) of a results file, usable as a synthesis mix"


def add_arguments(p: argparse.ArgumentParser) -> None:
    _checks.add_gt(p)
    _checks.add_results(p)
    p.add_argument("--out", type=Path, required=True, help="the profile JSON file to write")
    p.add_argument("--plot", type=Path, help="plot file (default: --out with the suffix .png)")
    p.add_argument("--no-plot", action="store_true", help="write the profile JSON only")
    _checks.add_absent_policy(p)


def run(args: argparse.Namespace) -> int:
    from posefix_bench.errors import file_error

    plot = None if args.no_plot else (args.plot or args.out.with_suffix(".png"))
    _checks.input_file(args.gt, "--gt", "COCO annotation file")
    _checks.input_file(args.results, "--results", "results file")
    _checks.output_file(args.out)
    _checks.output_file(plot, "--plot")
    if plot is not None and plot.resolve() == args.out.resolve():
        raise file_error(plot, "the plot would overwrite the profile (give --plot a .png name)")

    from posefix_bench.structures.checks import warning_records

    gt, results, found = _checks.load_scored_inputs(args, "profile")

    from posefix_bench.evaluation.profile import measure_profile
    from posefix_bench.reporting.mpl import save_figure
    from posefix_bench.reporting.profile_plots import profile_figure

    warnings = _checks.print_warnings("profile", found)
    profile = measure_profile(gt, results, absent_policy=args.absent_policy,
                              meta={"gt": str(args.gt), "results": str(args.results),
                                    "warnings": warning_records(warnings)})
    if int(profile.counts.sum()) == 0:
        raise file_error(args.results, "no result matches a ground-truth person (OKS >= 0.1): the profile would have "
                                       "no support (a mix from it would synthesise perfect poses)")
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
