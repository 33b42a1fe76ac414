"""Refiner speed as measured numbers: samples/s, FLOP/s against this machine's measured matmul peak, rendering, latency.

Sweeps backbones x input sizes (H x W, as the paper names them) x batch sizes x precisions x memory formats, times
each forward pass (warm-up, synchronisation, inference mode, median of repeats), counts FLOPs per sample and reports
the achieved fraction of the matrix-multiply peak measured in the same run; benchmarks the vectorised heatmap
renderer against the per-keypoint loop on the same inputs; times data preparation (decode, crop) on real images and,
unless --no-e2e, the per-frame latency boxes -> estimator -> refiner on the --gt images.

Precision ``auto`` (default): fp32 plus each reduced precision (bf16; fp16 on CUDA) that a short probe measured as
native on this device; an emulated one is listed with its measured slow-down instead of a samples/s figure. Explicit
--precisions are timed as asked (an emulated one is flagged in the table).

Prints a table. --json FILE writes the whole report; --out DIR writes one file per precision named after the device
and precision (e.g. DIR/cpu-amd-epyc-2t-fp32.json). Without a --e2e-checkpoint the refiner of the latency run has
random weights: its timing is real, its poses are not (the report says so).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posefix_bench.commands import _checks

HELP = "refiner throughput, FLOP/s vs measured peak, heatmap-rendering speed-up and per-frame latency"


def add_arguments(p: argparse.ArgumentParser) -> None:
    _checks.add_device(p, default="auto", auto=True)
    p.add_argument("--backbones", help="comma-separated refiner backbones (default: resnet18,resnet50)")
    p.add_argument("--sizes", default="256x192,384x288", help="input sizes H x W (default: %(default)s)")
    p.add_argument("--batches", help="batch sizes (default: 1,8,32 on CPU; 1,2,4,8,16,32,64 on CUDA)")
    p.add_argument("--precisions", default="auto", help="auto, fp32, bf16, fp16 (CUDA); auto: fp32 and the reduced "
                   "precisions measured native on this device, emulated ones listed untimed (default: %(default)s)")
    p.add_argument("--memory-format", choices=("channels_last", "contiguous", "both"), default="channels_last",
                   help="activation layout (default: %(default)s)")
    p.add_argument("--fold-bn", choices=("on", "off", "both"), default="on",
                   help="BatchNorm folded into the convolutions for inference (default: %(default)s)")
    p.add_argument("--compile", action="store_true", help="also torch.compile the model (slow to start)")
    p.add_argument("--head", default="posefix", help="head variant (default: %(default)s)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads for the run, >= 1 (default: torch's)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per measurement (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="minimum timed calls (median reported) (default: %(default)s)")
    p.add_argument("--min-time", type=float, default=0.5, help="minimum seconds of timed calls per row")
    p.add_argument("--render-batch", type=int, default=16, help="batch of the rendering benchmark (default: 16)")
    p.add_argument("--render-size", default="384x288", help="H x W of the rendering benchmark (default: %(default)s)")
    p.add_argument("--reference-backbone", default="resnet50",
                   help="backbone of the refiner step the rendering share is taken of (default: %(default)s)")
    p.add_argument("--peak-sizes", help="matrix sizes of the matmul-peak measurement (default: 512,1024,2048 on CPU, "
                   "2048,4096,8192 on CUDA)")
    p.add_argument("--no-paired-peak", action="store_true",
                   help="use only the initial matmul-peak measurement (default: sample it before every timed call)")
    _checks.add_gt(p, required=False, default_note="coco-mini val2017; its images are timed for data preparation "
                   "and latency")
    p.add_argument("--no-e2e", action="store_true", help="skip the per-frame latency")
    p.add_argument("--estimator", default="mediapipe", help="upstream source of the latency run (default: %(default)s)")
    p.add_argument("--boxes", default="gt", help="person boxes for the latency run: gt or a detection JSON")
    p.add_argument("--e2e-frames", type=int, default=8, help="timed frames (default: %(default)s)")
    p.add_argument("--e2e-checkpoint", type=Path, help="refiner checkpoint of the latency run (default: untrained)")
    p.add_argument("--e2e-backbone", default="resnet50", help="untrained latency refiner backbone (default: %(default)s)")
    p.add_argument("--e2e-size", default="256x192", help="untrained latency refiner input H x W (default: %(default)s)")
    p.add_argument("--json", type=Path, help="write the whole report to this file")
    p.add_argument("--out", type=Path, help="write DIR/<device>-<precision>.json per precision")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and inputs (default: %(default)s)")


def _csv(text: str, what: str, cast=str) -> tuple:
    from posefix_bench.errors import PosefixError

    try:
        items = tuple(cast(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise PosefixError(f"--{what} {text!r}: not a comma-separated list") from None
    if not items:
        raise PosefixError(f"--{what}: empty list")
    return items


def _size(text: str) -> tuple[int, int]:
    """'384x288' (H x W) -> (W, H)."""
    from posefix_bench.errors import PosefixError

    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise PosefixError(f"input size {text!r}: expected H x W such as 256x192")
    return int(parts[1]), int(parts[0])


def _spec(args: argparse.Namespace):
    import torch

    from posefix_bench.engine.throughput import ThroughputSpec

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    cuda = device.startswith("cuda")
    formats = {"channels_last": (True,), "contiguous": (False,), "both": (True, False)}[args.memory_format]
    spec = ThroughputSpec(
        device=device,
        backbones=_csv(args.backbones or "resnet18,resnet50", "backbones"),
        input_sizes=tuple(_size(s) for s in _csv(args.sizes, "sizes")),
        batch_sizes=_csv(args.batches or ("1,2,4,8,16,32,64" if cuda else "1,8,32"), "batches", int),
        precisions=_csv(args.precisions, "precisions"),
        channels_last=formats, fold_bn={"on": (True,), "off": (False,), "both": (True, False)}[args.fold_bn],
        compile=args.compile, head=args.head, threads=args.threads,
        warmup=args.warmup, repeats=args.repeats, min_time_s=args.min_time, render_batch=args.render_batch,
        render_size=_size(args.render_size), reference_backbone=args.reference_backbone, seed=args.seed,
        peak_sizes=_csv(args.peak_sizes, "peak-sizes", int) if args.peak_sizes else None,
        paired_peak=not args.no_paired_peak,
    )
    spec.validate()
    return spec


def _validate(args: argparse.Namespace) -> None:
    """The cheap checks, before torch is imported or anything is measured."""
    import math

    from posefix_bench.errors import PosefixError

    _checks.device(args.device, auto=True)
    _checks.at_least(args.threads, 1, "--threads")
    _checks.at_least(args.warmup, 0, "--warmup")
    _checks.at_least(args.repeats, 1, "--repeats")
    if not (math.isfinite(args.min_time) and args.min_time >= 0):
        raise PosefixError(f"--min-time {args.min_time}: must be a finite number of seconds >= 0")
    _checks.at_least(args.render_batch, 1, "--render-batch")
    _checks.at_least(args.e2e_frames, 1, "--e2e-frames")
    for text in (*_csv(args.sizes, "sizes"), args.render_size, args.e2e_size):
        _size(text)
    for what in ("batches", "peak-sizes"):
        text = getattr(args, what.replace("-", "_"))
        for v in _csv(text, what, int) if text is not None else ():
            _checks.at_least(v, 1, f"--{what}")
    _checks.input_file(args.gt, "--gt", "COCO annotation file")
    if not args.no_e2e:
        if args.boxes != "gt":
            _checks.input_file(Path(args.boxes), "--boxes", "detection file")
        _checks.input_file(args.e2e_checkpoint, "--e2e-checkpoint", "refiner checkpoint")
    _checks.output_file(args.json, "--json")
    _checks.output_dir(args.out)


def _e2e_runner(args: argparse.Namespace, spec, dataset):
    """Build the source, boxes and refiner now (bad input fails before any measurement); measure later.

    The refiner is prepared as the sweep's first variant (BatchNorm folded, channels_last) for inference.
    """
    import torch

    from posefix_bench.engine.refine import RefinePostProcessor
    from posefix_bench.engine.throughput import e2e_latency
    from posefix_bench.errors import PosefixError
    from posefix_bench.models import build_refiner, fold_batchnorm, load_refiner
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.sources import get_source, load_boxes

    if args.e2e_frames < 1:
        raise PosefixError("--e2e-frames must be >= 1")
    source = get_source(args.estimator)
    boxes = load_boxes(args.boxes, dataset)
    if args.e2e_checkpoint is not None:
        model, meta = load_refiner(args.e2e_checkpoint)
        name = str(args.e2e_checkpoint)
    else:
        cfg = dict(backbone=args.e2e_backbone, head=spec.head, input_size=_size(args.e2e_size))
        model, meta, name = build_refiner(cfg, seed=spec.seed).eval(), {"trained": False}, "untrained-refiner"
    model = fold_batchnorm(model) if spec.fold_bn[0] else model
    model = model.to(memory_format=torch.channels_last if spec.channels_last[0] else torch.contiguous_format)
    precision = "auto" if "auto" in spec.precisions else spec.precisions[0]
    post = RefinePostProcessor(model, device=spec.device, meta=meta, name=name, precision=precision)
    return lambda: e2e_latency(dataset, source, post, args.e2e_frames, boxes, progress=tqdm_progress)


def _print_report(report: dict) -> None:
    from posefix_bench.reporting.tables import text_table

    rows = [[r["backbone"], f"{r['input_size'][1]}x{r['input_size'][0]}", r["batch"],
             r["precision"] + (" (emulated)" if r.get("emulated") else ""),
             r["memory_format"] + ("+bnfold" if r["bn_folded"] else "") + ("+compile" if r["compiled"] else ""),
             round(r["samples_per_s"], 2),
             round(r["forward_ms"], 1), round(r["render_ms"], 2), round(r["gflop_per_sample"], 2),
             round(r["achieved_gflops"], 1), round(100 * r["roofline_fraction"], 1)] for r in report["refiner"]]
    print(f"device: {report['device']}  torch {report['torch']}  CUDA {report['cuda']}  "
          f"(load average {report['environment']['load_average_1min']:.2f} at start)")
    print(text_table(["backbone", "HxW", "batch", "precision", "format", "samples/s", "ms/batch", "render ms",
                      "GFLOP/sample", "GFLOP/s", "% peak"], rows, digits=2))
    for e in report.get("emulated", []):
        print(e["note"])
    if report.get("precision_probe"):
        print(f"precision probe ({report['precision_probe']['probe']['seconds']:.1f} s): "
              f"{report['precision_probe']['sentence']}")
    peaks = ", ".join(f"{p} {v['peak_gflops']:.1f} GFLOP/s" for p, v in report["matmul_peak"].items())
    print(f"matmul peak (measured now): {peaks}; fill bandwidth {report['memory_bandwidth']['fill_gbps']:.1f} GB/s")
    r = report["render"]
    print(f"rendering {r['batch']}x{r['num_keypoints']}x{r['input_size'][1]}x{r['input_size'][0]}: vectorised "
          f"{r['render_vectorized_ms']:.2f} ms ({r['render_vectorized_prealloc_ms']:.2f} ms into a reused buffer), "
          f"loop {r['render_loop_ms']:.1f} ms: {r['render_speedup']:.1f}x ({r['render_speedup_prealloc']:.1f}x); "
          f"rendering a step's heatmaps is {100 * report['render_share_of_refiner_step']:.2f}% of a "
          f"{report['render_share_basis']['backbone']} batch-{report['render_share_basis']['batch']} fp32 forward")
    for d in report["data_prep"]:
        print(f"data preparation {d['input_size'][1]}x{d['input_size'][0]}: decode {d['decode_ms_per_sample']:.1f} ms, "
              f"crop {d['crop_ms_per_sample']:.2f} ms per sample (1 CPU thread)")
    e = report["e2e"]
    if e:
        tag = "" if e["refiner_trained"] else " (untrained refiner weights: timing only)"
        print(f"per frame ({e['frames']} frames, {e['poses_per_frame']:.1f} poses): {e['estimator']} "
              f"{e['estimator_ms']:.1f} ms + refiner {e['refiner_ms']:.1f} ms = {e['total_ms']:.1f} ms "
              f"({e['fps_end_to_end']:.1f} fps; refiner only {e['fps_refiner_only'] or 0:.1f} fps, "
              f"{e['refiner_precision']}){tag}")


def run(args: argparse.Namespace) -> int:
    _validate(args)

    from posefix_bench.engine.throughput import result_filename, run_throughput, split_by_precision
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.structures.coco import CocoDataset, coco_split_paths, default_coco_mini_root
    from posefix_bench.structures.io import atomic_write_json

    spec = _spec(args)
    dataset = CocoDataset(args.gt or coco_split_paths(default_coco_mini_root(), "val2017")[0])
    e2e = None if args.no_e2e else _e2e_runner(args, spec, dataset)
    report = run_throughput(spec, dataset=dataset, e2e=e2e, progress=tqdm_progress)
    _print_report(report)
    if args.json is not None:
        print(f"wrote {atomic_write_json(args.json, report)}")
    if args.out is not None:
        for precision, part in split_by_precision(report).items():
            print(f"wrote {atomic_write_json(args.out / result_filename(report, precision), part)}")
    return 0
