"""Refine an estimator's COCO keypoint results with a refinement method (PoseFix as a post-processor, or another).

``--method`` picks the method (``posefix-bench methods`` lists them): ``posefix`` (a trained refiner,
``--checkpoint``; ``--checkpoint`` alone means posefix, as before methods existed), ``re-estimate`` (an mmpose
estimator on each pose's box, ``--option estimator=CARD``), ``pose-prior`` (``--option checkpoint=PATH`` of a trained
prior), ``identity`` (the control), ``command`` (an external program, ``--command 'python my_refiner.py {input}
{output}'``; ``{images}`` and ``{gt}`` are filled in too), ``python`` (``--callable package.module:function``) or an
installed plug-in (its options as ``--option KEY=VALUE``). Every method's output is one-to-one with the input: each
record keeps the instance score and every other field, gains ``refined_by``, and keypoints the input did not predict
stay absent. Everything is checked before any work (the arguments, the output path, the method's own options, the
ground truth, the results and their images, the device), and nothing is written to ``--out`` unless the method
succeeds.

posefix: each input pose is cropped around its keypoints' box (enlarged by 1.2; or around its ``bbox`` with
``--box bbox``), refined in batches and mapped back to image coordinates, with the refiner's per-keypoint confidence.
``--flip`` averages each crop with its mirror image. A checkpoint with a calibrated gate (``posefix-bench
calibrate``) is applied gated: a refined keypoint replaces the input keypoint only where the gate accepts it, and
each record gets ``refine_accepted`` (1 per refined keypoint). ``--no-gate`` writes every refined keypoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from posefix_bench.commands import _checks

HELP = "refine a results file with a refinement method (a trained refiner, a program, a callable, ...)"


POSEFIX_ONLY = {"flip": False, "box": "keypoints", "batch_size": 32, "precision": "auto", "no_gate": False}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help="the refinement method (posefix-bench methods lists them; default: posefix "
                   "with --checkpoint)")
    p.add_argument("--name", help="the name the method reports under (refined_by; default: its type)")
    p.add_argument("--checkpoint", type=Path, help="posefix: refiner checkpoint (final.pth of a training run)")
    p.add_argument("--command", dest="program", help="command: the program to run, with {input} {output} (and "
                   "{images} {gt}) placeholders, e.g. 'python my_refiner.py {input} {output}'")
    p.add_argument("--callable", help="python: package.module:function taking (results, images, gt)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option (a JSON value or a string), e.g. for an installed plug-in; repeatable")
    p.add_argument("--images", type=Path, required=True, help="folder with the images")
    _checks.add_gt(p)
    _checks.add_results(p)
    p.add_argument("--out", type=Path, required=True, help="refined COCO keypoint results (JSON)")
    p.add_argument("--flip", action="store_true", help="posefix: flip test: average with the mirrored crop")
    p.add_argument("--box", choices=("keypoints", "bbox"), default="keypoints",
                   help="posefix: crop around the input keypoints' box x 1.2 (PoseFix) or the record's bbox "
                   "(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="posefix: crops per forward pass (default: %(default)s)")
    _checks.add_device(p)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="posefix: auto: the fastest precision this device runs natively, measured by a short probe; "
                   "or as set (fp16: CUDA) (default: %(default)s)")
    _checks.add_absent_policy(p)
    p.add_argument("--no-gate", action="store_true",
                   help="posefix: ignore the checkpoint's calibrated gate: take every refined keypoint")


def _options(args: argparse.Namespace) -> tuple[str, dict]:
    """The method's type and options from the arguments; an argument the method does not take is an error."""
    import json

    from posefix_bench.errors import PosefixError

    method = args.method or ("posefix" if args.checkpoint is not None else None)
    if method is None:
        raise PosefixError("--method: required (posefix-bench methods lists them), or --checkpoint for posefix")
    given = {"--checkpoint": args.checkpoint, "--command": args.program, "--callable": args.callable}
    own = {"posefix": "--checkpoint", "command": "--command", "python": "--callable"}.get(method)
    for arg, value in given.items():
        if value is not None and arg != own:
            raise PosefixError(f"{arg}: not an option of method {method!r}")
    if own is not None and given[own] is None:
        raise PosefixError(f"{own}: required with --method {method}")
    options = {"name": args.name} if args.name else {}
    if method == "posefix":
        options.update(checkpoint=args.checkpoint, device=args.device, batch_size=args.batch_size, flip=args.flip,
                       box=args.box, precision=args.precision, gate=not args.no_gate)
    else:
        for key, default in POSEFIX_ONLY.items():
            if getattr(args, key) != default:
                raise PosefixError(f"--{key.replace('_', '-')}: only for --method posefix")
    if method == "command":
        options["command"] = args.program
    if method == "python":
        options["callable"] = args.callable
    for item in args.option:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise PosefixError(f"--option {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return method, options


def run(args: argparse.Namespace) -> int:
    # the validation pass: arguments, then the method's options, then the data, then (only then) the model
    method_type, options = _options(args)
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
    from posefix_bench.methods import build_method
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.structures.checks import check_results
    from posefix_bench.structures.coco import CocoDataset
    from posefix_bench.structures.results import load_results, save_results

    method = build_method(method_type, absent_policy=args.absent_policy, **options)
    gt = CocoDataset(args.gt, image_dir=args.images)
    results = load_results(args.results, gt)
    if method.info.uses_images:
        check_images(gt, (r["image_id"] for r in results))
    _checks.print_warnings("refine", check_results(results, args.results))

    method.prepare()
    post = getattr(method, "post", None)
    if post is not None:  # posefix: the checkpoint's weights, its provenance
        _checks.finite_weights(post.model, args.checkpoint)
        if not post.trained:
            print(f"posefix-bench refine: warning: {args.checkpoint} is an UNTRAINED refiner (its meta says "
                  f"trained=false); every output record is marked \"untrained\": true", file=sys.stderr)
    for notice in method.notices:
        print(f"posefix-bench refine: note: {notice}", file=sys.stderr)
    t0 = time.perf_counter()
    refined = method.refine(results, args.images, args.gt, progress=tqdm_progress)
    seconds = time.perf_counter() - t0
    save_results(args.out, refined)
    skipped = sum("refine_skipped" in r for r in refined)
    note = f" ({skipped} passed through without a usable box)" if skipped else ""
    print(f"refined {len(refined)} poses on {len({r['image_id'] for r in refined})} images with {method.name} in "
          f"{seconds:.1f} s ({len(refined) / max(seconds, 1e-9):.1f} poses/s){note}")
    if post is not None:
        print(post.precision_record["sentence"])
        out = method.last
        if out is not None and out.accept is not None:
            accepted, refinable = int(out.accept.sum()), int(out.evidence.refinable.sum())
            print(f"gate: took {accepted} of {refinable} refined keypoints (accepted share "
                  f"{accepted / max(refinable, 1):.1%}); the others keep the input keypoint")
    print(f"wrote {args.out}")
    return 0
