"""Run an upstream source on a COCO dataset and write its keypoint results (COCO results JSON).

Top-down sources (mmpose estimators, mediapipe) run on person boxes: the ground-truth boxes (``--boxes gt``,
default) or a COCO detection-results file (``--boxes DETS.json``, all boxes of the person category with score
>= ``--box-thr``, as mmpose's COCO protocol). Everything is checked before the model runs and the results file is
written atomically at the end, so a bad input leaves nothing behind. The measured images/s and persons/s of the
estimation itself (model loading excluded) are printed at the end. A model run with random weights
(``--untrained``) marks every result ``"untrained": true`` and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posefix_bench.commands import _checks

TOP_DOWN_KINDS = ("mmpose", "mediapipe")
HELP = "run an upstream source (mmpose estimator, mediapipe, results file, synthesis) -> COCO results file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="source name (see `posefix-bench sources`)")
    _checks.add_gt(p)
    p.add_argument("--images", type=Path, help="image folder (default: the COCO-root folder of the --gt split)")
    p.add_argument("--boxes", default="gt", help="'gt' (ground-truth person boxes) or a COCO detection JSON")
    p.add_argument("--box-thr", type=float, default=0.0, help="drop detection boxes below this score (default 0)")
    p.add_argument("--out", type=Path, required=True, help="results JSON to write")
    g = p.add_argument_group("mmpose sources")
    g.add_argument("--checkpoint", help="weights: local path or URL (default: the card's published checkpoint)")
    g.add_argument("--untrained", action="store_true", help="run with random weights (outputs marked untrained)")
    _checks.add_device(g, default=None)
    g.add_argument("--batch-size", type=int, help="person crops per forward pass (default 16)")
    g.add_argument("--flip-test", action="store_true", help="add mmpose's flip test (default: the plain estimator)")
    g.add_argument("--decode", choices=("standard", "dark"),
                   help="heatmap decoding: standard (argmax + quarter offset, default) or dark (DARK, heatmap heads)")
    g = p.add_argument_group("results-file and synthetic sources")
    _checks.add_results(g, required=False)
    g.add_argument("--mix", help="synthetic: error mix (name, error-profile JSON)")
    g.add_argument("--seed", type=int, help="synthetic: synthesis seed; mmpose --untrained: initialisation seed")


def _options(args: argparse.Namespace) -> dict:
    given = {
        "checkpoint": args.checkpoint, "device": args.device, "batch_size": args.batch_size,
        "untrained": True if args.untrained else None, "path": args.results, "mix": args.mix, "seed": args.seed,
        "flip_test": True if args.flip_test else None, "decode": args.decode,
    }
    return {k: v for k, v in given.items() if v is not None}


def _validate(args: argparse.Namespace) -> None:
    """The cheap checks, before any source is built."""
    import math

    from posefix_bench.errors import PosefixError

    _checks.input_file(args.gt, "--gt", "COCO annotation file")
    _checks.input_dir(args.images, "--images", "image folder")
    if args.boxes != "gt":
        _checks.input_file(Path(args.boxes), "--boxes", "detection file")
    if not (math.isfinite(args.box_thr) and args.box_thr >= 0):
        raise PosefixError(f"--box-thr {args.box_thr}: must be a finite number >= 0")
    _checks.output_file(args.out)
    _checks.input_file(args.results, "--results", "results file")
    if args.checkpoint is not None and "://" not in args.checkpoint:
        _checks.input_file(Path(args.checkpoint), "--checkpoint", "checkpoint")
    _checks.distinct({"--gt": args.gt, "--results": args.results, "--out": args.out,
                      "--boxes": None if args.boxes == "gt" else Path(args.boxes)})
    _checks.at_least(args.batch_size, 1, "--batch-size")
    _checks.at_least(args.seed, 0, "--seed")
    _checks.device(args.device)


def run(args: argparse.Namespace) -> int:
    _validate(args)

    import time

    from posefix_bench.errors import file_error
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.sources import get_source, load_boxes
    from posefix_bench.structures.coco import CocoDataset
    from posefix_bench.structures.results import save_results

    gt = CocoDataset(args.gt, image_dir=args.images)
    boxes = load_boxes(args.boxes, gt, score_thr=args.box_thr)
    start = time.perf_counter()
    source = get_source(args.source, **_options(args))
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    results = source.predict(gt, boxes, progress=tqdm_progress)
    elapsed = time.perf_counter() - start
    if not results:
        raise file_error(args.out, f"{source.name} found no pose in {boxes.num_boxes} boxes: nothing to write")
    save_results(args.out, results)
    info = source.info
    if not info.trained:
        print(f"UNTRAINED: {info.name} ran with random weights; every result is marked \"untrained\": true")
    if info.kind in TOP_DOWN_KINDS:  # runs on the boxes
        n_images = sum(1 for i in boxes.image_ids if len(boxes.for_image(i)))
        n_persons = boxes.num_boxes
        method = info.extra.get("method")
        post = f" with {method} post-processing" if method and method != "plain" else ""
        print(f"{info.name}{post}: {len(results)} poses from {n_persons} boxes ({boxes.origin}) on {n_images} images")
    else:  # makes its own persons
        n_images, n_persons = len({r["image_id"] for r in results}), len(results)
        print(f"{info.name}: {n_persons} poses on {n_images} images (boxes not used)")
    print(f"speed: {n_images / elapsed:.2f} images/s, {n_persons / elapsed:.2f} persons/s "
          f"({elapsed:.1f} s estimating, {load_s:.1f} s loading the source)")
    print(f"wrote {args.out}")
    return 0
