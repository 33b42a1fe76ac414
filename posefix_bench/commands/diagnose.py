"""Error diagnosis of a keypoint results file (Ronchi & Perona, ICCV 2017), optionally before/after refinement.

Matches the results to the ground truth as COCOeval does (at OKS 0.1), classifies every matched labelled keypoint
as good / jitter / inversion / swap / miss (or absent: not predicted) under coco-analyze's rules (the "taxonomy"
of the record and the printout; with --absent-policy pycocotools the counts are coco-analyze's), breaks the counts
down per keypoint, body-part group, visibility flag, estimator-confidence bin and person size, and measures the AP
after correcting each error type. With --refined (the refiner's output, one-to-one with --results), the same for
the refined results plus the transition table (what refinement fixed and what it broke) and AP before/after.

Writes DIR/diagnosis.json first (with the inputs' data warnings under ``warnings``,
:mod:`posefix_bench.structures.checks`), then the plots error_types.svg, ap_impact.svg, keypoint_errors.svg and
confidence_bins.svg (SVG written as text, no matplotlib: :mod:`posefix_bench.reporting.svg`, issue 18; --no-plots:
the numbers only). The AP evaluations use --evaluator (see ``posefix-bench evaluate``); the record names the
backend that computed each AP.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from posefix_bench.commands import _checks
from posefix_bench.commands.evaluate import EVALUATOR_HELP
from posefix_bench.evaluation.coco_eval import DEFAULT_EVALUATOR, EVALUATORS

HELP = "which keypoint errors results make (jitter/inversion/swap/miss) and what a refiner fixed or broke"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from posefix_bench.evaluation.diagnosis import DEFAULT_CONF_BINS

    _checks.add_gt(p)
    _checks.add_results(p)
    p.add_argument("--refined", type=Path, help="refined results, one-to-one with --results in the same order")
    p.add_argument("--out", type=Path, required=True, help="output folder (diagnosis.json and SVG plots)")
    _checks.add_absent_policy(p)
    p.add_argument("--conf-bins", default=",".join(f"{e:g}" for e in DEFAULT_CONF_BINS),
                   help="comma-separated keypoint-confidence bin edges; the last bin is open-ended "
                   "(default: %(default)s)")
    p.add_argument("--no-ap-impact", action="store_true", help="skip the AP-impact evaluations (faster)")
    p.add_argument("--no-plots", action="store_true", help="write diagnosis.json only")
    p.add_argument("--evaluator", choices=EVALUATORS, default=DEFAULT_EVALUATOR, help=EVALUATOR_HELP)


def parse_conf_bins(text: str) -> tuple[float, ...]:
    from posefix_bench.errors import PosefixError
    from posefix_bench.evaluation.diagnosis import check_conf_bins

    try:
        edges = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PosefixError(f"--conf-bins {text!r}: not a comma-separated list of numbers") from None
    return check_conf_bins(edges)


def run(args: argparse.Namespace) -> int:
    edges = parse_conf_bins(args.conf_bins)
    _checks.input_file(args.gt, "--gt", "COCO annotation file")
    _checks.input_file(args.results, "--results", "results file")
    _checks.input_file(args.refined, "--refined", "results file")
    _checks.output_dir(args.out)

    from posefix_bench.structures.checks import check_results, warning_records
    from posefix_bench.structures.results import load_results

    gt, results, found = _checks.load_scored_inputs(args, "diagnose")
    refined = None if args.refined is None else load_results(args.refined, gt)

    from posefix_bench.evaluation.diagnosis import check_pairing, diagnose
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.structures.io import atomic_write_json

    if refined is not None:
        check_pairing(results, refined, source=str(args.refined))
        found += check_results(refined, args.refined)
    warnings = _checks.print_warnings("diagnose", found)
    timings: dict = {}
    diag = diagnose(gt, results, refined, absent_policy=args.absent_policy, conf_bins=edges,
                    ap_impact=not args.no_ap_impact, timings=timings, progress=tqdm_progress,
                    evaluator=args.evaluator)
    diag["inputs"] = {"gt": str(args.gt), "results": str(args.results),
                      "refined": None if args.refined is None else str(args.refined)}
    diag["warnings"] = warning_records(warnings)
    # the numbers first (atomically), then the plots: a plotting failure or an interrupt leaves a complete record
    path = atomic_write_json(args.out / "diagnosis.json", diag)
    print(summary_text(diag, timings))
    if warnings:
        print(f"{len(warnings)} data warning(s) above (recorded in diagnosis.json): these numbers are skewed by them")
    print(f"wrote {path}", flush=True)
    if not args.no_plots:
        from posefix_bench.reporting.diagnosis_plots import write_diagnosis_plots

        t0 = time.perf_counter()
        for path in write_diagnosis_plots(diag, args.out):
            print(f"wrote {path}")
        print(f"time: plots {time.perf_counter() - t0:.2f} s")
    return 0


def summary_text(diag: dict, timings: dict) -> str:
    """The command's printed summary: class counts (input and refined), AP, AP impact, fixed/broken, timings."""
    from posefix_bench.reporting.tables import text_table

    runs = [("input", diag)] + ([("refined", diag["refined"])] if "refined" in diag else [])
    headers = ["class"] + [h for name, rec in runs for h in (name + (" (untrained)" if rec["untrained"] else ""), "%")]
    rows = [[c] + [v for _, rec in runs for v in (rec["counts"][c], rec["fractions"][c])] for c in diag["classes"]]
    rows.append(["AP"] + [v for _, rec in runs for v in (rec["ap"]["AP"], None)])
    lines = [text_table(headers, rows), f"taxonomy: {diag['taxonomy']}, absent policy: {diag['absent_policy']}"]
    for name, rec in runs:
        lines.append(f"{name}: {rec['matched_detections']} of {rec['num_results']} detections matched "
                     f"(OKS >= {diag['oks_thr']:g}), {rec['keypoints']} keypoints, "
                     f"{rec['matched_persons']} of {rec['gt_persons']} persons found")
        if rec["ap_impact"]:
            lines.append(f"{name} AP impact: " + ", ".join(
                f"{k} {v['delta_AP']:+.3f}" for k, v in rec["ap_impact"].items() if v["delta_AP"] is not None))
    if "transitions" in diag:
        t = diag["transitions"]
        lines.append(f"refinement: fixed {t['fixed_total']}, broke {t['broken']['broken']} of {t['keypoints']} "
                     f"keypoints ({t['excluded']['detections']} detections excluded: their match changed)")
    fallback = diag.get("evaluator_fallback")
    lines.append(f"AP computed by {diag['evaluator']}" + (f" (auto fell back: {fallback})" if fallback else ""))
    lines.append("time: " + ", ".join(f"{k[:-2]} {v:.2f} s" for k, v in timings.items()))
    return "\n".join(lines)
