"""Refine an estimator's COCO keypoint results with a trained refiner (PoseFix as a post-processor).

Each input pose is cropped around its keypoints' box (enlarged by 1.2; or around its ``bbox`` with ``--box bbox``),
refined in batches, mapped back to image coordinates and written one-to-one with the input, keeping the instance score
and every other field, with the refiner's per-keypoint confidence and ``refined_by``. Keypoints the input did not
predict stay absent. ``--flip`` averages each crop with its mirror image. Everything is checked before the model is
loaded (the arguments, the output path, the ground truth, the results and their images, the device) and before
anything is written (the checkpoint, including its weights being finite).

A checkpoint with a calibrated gate (``posefix-bench calibrate``) is applied gated: a refined keypoint replaces the
input keypoint only where the gate accepts it, and each record gets ``refine_accepted`` (1 per refined keypoint).
``--no-gate`` writes every refined keypoint (the results as before the gate existed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from posefix_bench.commands import _checks

HELP = "refine a results file with a trained refiner (post-processor)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help="refiner checkpoint (final.pth of a training run)")
    p.add_argument("--images", type=Path, required=True, help="folder with the images")
    _checks.add_gt(p)
    _checks.add_results(p)
    p.add_argument("--out", type=Path, required=True, help="refined COCO keypoint results (JSON)")
    p.add_argument("--flip", action="store_true", help="flip test: average with the mirrored crop")
    p.add_argument("--box", choices=("keypoints", "bbox"), default="keypoints",
                   help="crop around the input keypoints' box x 1.2 (PoseFix) or the record's bbox (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="crops per forward pass (default: %(default)s)")
    _checks.add_device(p)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="auto: the fastest precision this device runs natively, measured by a short probe; or as "
                   "set (fp16: CUDA) (default: %(default)s)")
    _checks.add_absent_policy(p)
    p.add_argument("--no-gate", action="store_true",
                   help="ignore the checkpoint's calibrated gate: take every refined keypoint")


def run(args: argparse.Namespace) -> int:
    # the validation pass: arguments, then the data, then (only then) the model
    _checks.input_file(args.checkpoint, "--checkpoint", "refiner checkpoint")
    _checks.input_dir(args.images, "--images", "image folder")
    _checks.input_file(args.gt, "--gt", "COCO annotation file")
    _checks.input_file(args.results, "--results", "results file")
    _checks.output_file(args.out)
    _checks.distinct(_checks.namespace_paths(args, "results", "gt", "checkpoint", "out"))
    _checks.at_least(args.batch_size, 1, "--batch-size")
    _checks.device(args.device)

    import time

    from posefix_bench.engine.refine import check_images
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.structures.checks import check_results
    from posefix_bench.structures.coco import CocoDataset
    from posefix_bench.structures.results import load_results, save_results

    gt = CocoDataset(args.gt, image_dir=args.images)
    results = load_results(args.results, gt)
    check_images(gt, (r["image_id"] for r in results))
    _checks.print_warnings("refine", check_results(results, args.results))

    from posefix_bench.engine.refine import RefinePostProcessor

    post = RefinePostProcessor(args.checkpoint, device=args.device, batch_size=args.batch_size, flip=args.flip,
                               box=args.box, absent_policy=args.absent_policy, precision=args.precision,
                               gate=not args.no_gate)
    _checks.finite_weights(post.model, args.checkpoint)
    if not post.trained:
        print(f"posefix-bench refine: warning: {args.checkpoint} is an UNTRAINED refiner (its meta says "
              f"trained=false); every output record is marked \"untrained\": true", file=sys.stderr)
    for notice in post.notices:
        print(f"posefix-bench refine: note: {notice}", file=sys.stderr)
    t0 = time.perf_counter()
    out = post.refine_detailed(gt, results, progress=tqdm_progress)
    refined = out.records
    seconds = time.perf_counter() - t0
    _checks.finite_outputs(refined, args.checkpoint)
    save_results(args.out, refined)
    skipped = sum("refine_skipped" in r for r in refined)
    note = f" ({skipped} passed through without a usable box)" if skipped else ""
    print(f"refined {len(refined)} poses on {len({r['image_id'] for r in refined})} images in {seconds:.1f} s "
          f"({len(refined) / max(seconds, 1e-9):.1f} poses/s){note}")
    print(post.precision_record["sentence"])
    if out.accept is not None:
        accepted, refinable = int(out.accept.sum()), int(out.evidence.refinable.sum())
        print(f"gate: took {accepted} of {refinable} refined keypoints (accepted share "
              f"{accepted / max(refinable, 1):.1%}); the others keep the input keypoint")
    print(f"wrote {args.out}")
    return 0
