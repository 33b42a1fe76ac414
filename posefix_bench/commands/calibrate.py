"""Calibrate the refinement gate of a trained refiner and store it in the checkpoint (issue 17).

The gate decides per keypoint whether the refined keypoint replaces the input one (``posefix-bench refine`` applies
it by default; ``--no-gate`` turns it off). It is fitted after training on persons the refiner did not train on,
from the training side only: by default the training images held out by the checkpoint's config
(``data.holdout``); with ``--data-root`` and ``--split`` another dataset's training split (minus any image the
refiner trained on). Calibration inputs are synthesised with several error mixes (``--mixes``) and optionally
estimator results on those images (``--results NAME=FILE``). The checkpoint is rewritten with the gate (or a copy
written to ``--out``); the gate records how it was calibrated and the COCO AP it measured on the calibration data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "calibrate a trained refiner's per-keypoint gate on held-out training data"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from posefix_bench.engine.calibrate import DEFAULT_DRAWS, DEFAULT_KEEP, DEFAULT_MIXES, DEFAULT_TOLERANCE

    p.add_argument("--checkpoint", type=Path, required=True, help="trained refiner checkpoint (final.pth)")
    p.add_argument("--out", type=Path, default=None, help="write the gated checkpoint here (default: in place)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="calibrate on this COCO-format root's --split instead of the training hold-out")
    p.add_argument("--split", default=None, help="training split under --data-root (e.g. train2017)")
    p.add_argument("--mixes", default=",".join(DEFAULT_MIXES),
                   help="comma-separated error mixes of the synthesised inputs (default: %(default)s)")
    p.add_argument("--draws", type=int, default=DEFAULT_DRAWS, help="draws per mix (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthesised inputs (default: %(default)s)")
    p.add_argument("--results", action="append", default=[], metavar="NAME=FILE",
                   help="estimator results on the calibration images, added as an input set (repeatable)")
    p.add_argument("--keep", type=float, default=DEFAULT_KEEP,
                   help="threshold rule: the largest keeping this share of the best gain (default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="AP an input set may lose at the chosen threshold ('do no harm' bound) (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="crops per forward pass (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="refiner inference precision while calibrating (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from posefix_bench.engine.calibrate import calibrate_checkpoint, calibration_data
    from posefix_bench.errors import PosefixError
    from posefix_bench.models.checkpoint import load_refiner
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.structures.results import load_results

    if args.seed < 0:
        raise PosefixError(f"--seed must be >= 0, got {args.seed}")
    if not 0 < args.keep <= 1:
        raise PosefixError(f"--keep must be in (0, 1], got {args.keep}")
    if not 0 <= args.tolerance < 1:
        raise PosefixError(f"--tolerance must be in [0, 1), got {args.tolerance}")
    if (args.data_root is None) != (args.split is None):
        raise PosefixError("--data-root and --split go together")
    mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
    if not mixes and not args.results:
        raise PosefixError("--mixes: no error mix given (and no --results)")
    _, meta = load_refiner(args.checkpoint)
    data = calibration_data(meta, args.data_root, args.split)
    results = {}
    for item in args.results:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise PosefixError(f"--results {item!r}: expected NAME=FILE")
        results[name] = load_results(Path(path), data.dataset)
    out = calibrate_checkpoint(args.checkpoint, args.out, args.data_root, args.split, mixes, args.draws, args.seed,
                               results, keep=args.keep, tolerance=args.tolerance, device=args.device,
                               batch_size=args.batch_size, precision=args.precision, progress=tqdm_progress)
    gate = out["gate"]
    cal = gate["calibration"]
    print(f"calibration data: {cal['data']['selection']}; {cal['data']['persons']} persons")
    for name, v in cal["coco_ap"].items():
        ap = v["AP"]
        print(f"  {name:24s} AP input {ap['input']:.3f}  ungated {ap['ungated']:.3f}  gated {ap['gated']:.3f}  "
              f"accepted {v['accepted_share']:.1%}")
    s = cal["summary"]
    kept = "-" if s["gain_kept"] is None else f"{s['gain_kept']:.0%}"
    print(f"gate threshold {gate['threshold']:.2f}: mean AP change ungated {s['mean_delta_AP_ungated']:+.3f}, gated "
          f"{s['mean_delta_AP_gated']:+.3f} (gain kept {kept}), accepted share {s['accepted_share']:.1%}")
    print(f"wrote {out['path']}")
    return 0
