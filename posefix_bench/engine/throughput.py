"""Throughput harness: refiner samples/s, FLOP/s against the machine's own measured peak, rendering, latency.

Issue 7: the re-implementation ran at 27-30 samples/s (ResNet-50, 384x288, batch 16, RTX 2070 SUPER), bound by turning
input coordinates into heatmaps on the CPU, per sample. This module makes speed a measured, explained number:

- Timing: warm-up calls, device synchronisation around every timed call, ``torch.inference_mode``, the median of
  repeats (at least ``repeats`` and at least ``min_time_s`` seconds of calls).
- Refiner rows: samples/s per backbone, input size, batch, precision (fp32; bf16 via autocast on CPU/CUDA; fp16 on
  CUDA; ``auto``, the default: fp32 plus every reduced precision the precision probe of
  :mod:`posefix_bench.engine.precision` measured as native here, the others listed as ``emulated`` with the probe's
  measured slow-down instead of a samples/s figure; a row of an explicitly requested emulated precision is timed and
  flagged ``emulated``), memory format (channels_last or contiguous) and optionally ``torch.compile``; FLOPs per sample counted with
  ``torch.utils.flop_counter`` (2 per multiply-add), achieved FLOP/s, and the roofline fraction: achieved FLOP/s over
  the matrix-multiply peak of the same device and dtype, measured in the same run (max over matrix sizes of the
  median GFLOP/s of ``a @ b``), sampled again right before every timed forward pass; each row divides by the best
  rate seen, so a peak sample slowed by other processes on shared cores cannot inflate the fraction. Data preparation (JPEG decode, affine crop, heatmap rendering) is timed separately.
- Rendering: the vectorised on-device renderer (:func:`posefix_bench.codecs.heatmap.render_heatmaps`) against the
  per-person, per-keypoint numpy loop (:func:`~posefix_bench.codecs.heatmap.render_heatmaps_loop`) on the same
  inputs, with the memory fill bandwidth as the bound a renderer that writes B*K*H*W floats cannot beat.
- End-to-end latency per frame for the video case (:mod:`posefix_bench.engine.latency`).

Everything returns plain records; the ``throughput`` command prints and writes them.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from posefix_bench.codecs.heatmap import render_heatmaps, render_heatmaps_loop
from posefix_bench.engine.latency import data_prep_benchmark, e2e_latency
from posefix_bench.engine.precision import (PRECISIONS, autocast, dtype_of, effective, native_support, probe,
                                            synchronize)
from posefix_bench.engine.environment import environment, load_average
from posefix_bench.errors import PosefixError
from posefix_bench.models import RefinerConfig, build_refiner, fold_batchnorm, is_folded
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.schema import COCO17

__all__ = [
    "PRECISIONS",
    "PeakProbe",
    "ThroughputSpec",
    "time_call",
    "matmul_peak",
    "fill_bandwidth",
    "render_benchmark",
    "refiner_gflop",
    "refiner_row",
    "data_prep_benchmark",
    "e2e_latency",
    "run_throughput",
    "result_filename",
    "split_by_precision",
]



@dataclass
class ThroughputSpec:
    """What to measure. Sizes are (W, H) like :class:`RefinerConfig.input_size`.

    ``fold_bn``: time the model with BatchNorm folded into its convolutions (inference deployment,
    :func:`posefix_bench.models.fold_batchnorm`), as is (False), or both.
    ``peak_sizes``: matrix sizes of the peak measurement (default 512..2048 on CPU, 2048..8192 on CUDA);
    ``paired_peak``: sample the peak again right before every timed forward pass (:class:`PeakProbe`); a row's
    roofline fraction uses the best rate seen (initial or sampled), so contention never inflates it.

    ``reference_backbone`` at ``render_size`` and ``render_batch`` in fp32 is the refiner step the rendering time is
    compared with (``render_share_of_refiner_step``).
    """

    device: str = "cpu"
    backbones: tuple[str, ...] = ("resnet18", "resnet50")
    input_sizes: tuple[tuple[int, int], ...] = ((192, 256), (288, 384))
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    precisions: tuple[str, ...] = ("auto",)
    channels_last: tuple[bool, ...] = (True,)
    fold_bn: tuple[bool, ...] = (True,)
    compile: bool = False
    head: str = "posefix"
    threads: int | None = None
    warmup: int = 2
    repeats: int = 3
    min_time_s: float = 0.5
    render_batch: int = 16
    render_size: tuple[int, int] = (288, 384)
    reference_backbone: str = "resnet50"
    peak_sizes: tuple[int, ...] | None = None
    paired_peak: bool = True
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise PosefixError(f"throughput: device {self.device!r} requested but CUDA is not available here")
        if dev.type not in ("cpu", "cuda"):
            raise PosefixError(f"throughput: unsupported device {self.device!r} (cpu or cuda[:N])")
        for p in self.precisions:
            if p not in ("auto", *PRECISIONS):
                raise PosefixError(f"throughput: unknown precision {p!r} (known: auto, {', '.join(PRECISIONS)})")
            if p == "fp16" and dev.type != "cuda":
                raise PosefixError("throughput: fp16 is measured on CUDA only (use bf16 on the CPU)")
        if not self.channels_last or not self.fold_bn:
            raise PosefixError("throughput: choose at least one memory format and one BatchNorm mode")
        if not self.batch_sizes or min(self.batch_sizes) < 1 or self.render_batch < 1:
            raise PosefixError("throughput: batch sizes must be >= 1")
        if self.peak_sizes is not None and (not self.peak_sizes or min(self.peak_sizes) < 1):
            raise PosefixError("throughput: peak matrix sizes must be >= 1")
        if self.warmup < 0 or self.repeats < 1:
            raise PosefixError("throughput: warmup must be >= 0 and repeats >= 1")
        for size in tuple(self.input_sizes) + (tuple(self.render_size),):
            RefinerConfig(input_size=size)  # one-line error for a size the refiner cannot take
        for b in tuple(self.backbones) + (self.reference_backbone,):
            RefinerConfig(backbone=b, head=self.head, input_size=self.input_sizes[0])


# -- environment and timing -----------------------------------------------------------------------------------
def time_call(fn: Callable[[], object], device, warmup: int = 2, repeats: int = 3, min_time_s: float = 0.0,
              max_repeats: int = 100, before: Callable[[], object] | None = None) -> dict:
    """Median wall time of ``fn()`` with synchronisation; ``warmup`` untimed calls first.

    Runs at least ``repeats`` timed calls and keeps going (up to ``max_repeats``) until ``min_time_s`` has passed.
    ``before`` (untimed) runs right before every timed call (e.g. a :class:`PeakProbe` sampling the peak).
    Returns ``{"median_ms", "min_ms", "max_ms", "repeats", "times_ms"}``.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_time_s and len(times) < max_repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3,
            "repeats": len(times), "times_ms": [t * 1e3 for t in times]}


# -- machine bounds -------------------------------------------------------------------------------------------
def _square_operands(n: int, device: torch.device, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(n)
    return tuple(torch.randn(n, n, generator=gen).to(device, dtype_of(precision)) for _ in range(2))


def matmul_peak(device, precision: str = "fp32", sizes: tuple[int, ...] | None = None, repeats: int = 5) -> dict:
    """Measured matrix-multiply peak: max over ``sizes`` of the median GFLOP/s of an n x n x n product (2 n**3 FLOP)."""
    dev = torch.device(device)
    sizes = sizes or ((2048, 4096, 8192) if dev.type == "cuda" else (512, 1024, 2048))
    per_size = {}
    with torch.inference_mode():
        for n in sizes:
            a, b = _square_operands(n, dev, precision)
            t = time_call(lambda: a @ b, dev, warmup=2, repeats=repeats)
            per_size[str(n)] = 2.0 * n**3 / (t["median_ms"] / 1e3) / 1e9
    best = max(per_size, key=per_size.get)
    return {"precision": precision, "gflops_by_size": per_size, "peak_gflops": per_size[best], "best_size": int(best)}


class PeakProbe:
    """Samples the matmul GFLOP/s at the peak's best size (median of 3 products) each time it is called.

    Called right before every timed forward pass, it keeps the peak measurement side by side with the timings on a
    machine whose cores other processes share; ``initial`` is the run's first peak measurement.
    """

    def __init__(self, device, precision: str, size: int, initial: float):
        self.initial = float(initial)
        self.device = torch.device(device)
        self.size = int(size)
        self.a, self.b = _square_operands(self.size, self.device, precision)
        self.samples: list[float] = []

    def __call__(self) -> float:
        with torch.inference_mode():
            t = time_call(lambda: self.a @ self.b, self.device, warmup=1, repeats=3)
        self.samples.append(2.0 * self.size**3 / (t["median_ms"] / 1e3) / 1e9)
        return self.samples[-1]


def fill_bandwidth(device, megabytes: int = 256, repeats: int = 5) -> dict:
    """Write bandwidth (GB/s) of filling a preallocated buffer: the bound for any renderer that writes its output."""
    dev = torch.device(device)
    buf = torch.empty(megabytes * 2**20 // 4, dtype=torch.float32, device=dev)
    buf.zero_()
    t = time_call(lambda: buf.fill_(1.0), dev, warmup=1, repeats=repeats)
    return {"megabytes": megabytes, "fill_gbps": buf.numel() * 4 / (t["median_ms"] / 1e3) / 1e9}


# -- rendering ------------------------------------------------------------------------------------------------
def _random_pose(batch: int, k: int, size: tuple[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, 2) keypoints uniform in a (W, H) crop and (B, K) validity with 10% unset joints."""
    rng = np.random.default_rng(seed)
    w, h = size
    pose = rng.uniform([0, 0], [w - 1, h - 1], size=(batch, k, 2)).astype(np.float32)
    valid = rng.random((batch, k)) > 0.1
    return torch.from_numpy(pose), torch.from_numpy(valid)


def render_benchmark(device, batch: int = 16, num_keypoints: int = COCO17.num_keypoints,
                     size: tuple[int, int] = (288, 384), sigma: float | None = None, repeats: int = 3,
                     seed: int = 0) -> dict:
    """Vectorised on-device rendering vs the per-keypoint numpy loop, same inputs, same run. ``size`` is (W, H)."""
    dev = torch.device(device)
    w, h = size
    sigma = RefinerConfig(input_size=size).sigma if sigma is None else float(sigma)
    pose, valid = _random_pose(batch, num_keypoints, size, seed)
    pose_d, valid_d = pose.to(dev), valid.to(dev)
    buf = torch.empty(batch, num_keypoints, h, w, device=dev)
    buf.zero_()
    with torch.inference_mode():
        vec = time_call(lambda: render_heatmaps(pose_d, valid_d, (h, w), sigma), dev, 2, repeats, 0.3)
        pre = time_call(lambda: render_heatmaps(pose_d, valid_d, (h, w), sigma, out=buf), dev, 2, repeats, 0.3)
        loop = time_call(lambda: render_heatmaps_loop(pose, valid, (h, w), sigma), "cpu", 1, max(1, repeats // 2))
        diff = float(np.abs(render_heatmaps(pose_d, valid_d, (h, w), sigma).cpu().numpy()
                            - render_heatmaps_loop(pose, valid, (h, w), sigma)).max())
    out_bytes = batch * num_keypoints * h * w * 4
    return {
        "batch": batch, "num_keypoints": num_keypoints, "input_size": [w, h], "sigma": sigma, "device": str(dev),
        "render_vectorized_ms": vec["median_ms"],
        "render_vectorized_prealloc_ms": pre["median_ms"],
        "render_loop_ms": loop["median_ms"],
        "render_speedup": loop["median_ms"] / vec["median_ms"],
        "render_speedup_prealloc": loop["median_ms"] / pre["median_ms"],
        "max_abs_diff": diff,
        "output_megabytes": out_bytes / 2**20,
        "render_write_gbps": out_bytes / (pre["median_ms"] / 1e3) / 1e9,
    }


# -- the refiner ----------------------------------------------------------------------------------------------
def refiner_gflop(config: RefinerConfig) -> float:
    """GFLOP per sample of one forward pass (torch.utils.flop_counter, 2 FLOP per multiply-add), counted on CPU."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_refiner(config, seed=0).eval()
    w, h = config.input_size
    pose, valid = _random_pose(1, config.num_keypoints, config.input_size, 0)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, h, w), pose, valid)
    return counter.get_total_flops() / 1e9


def _prepared(model, device, batch: int, channels_last: bool, seed: int):
    cfg = model.config
    w, h = cfg.input_size
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, h, w, generator=gen).to(device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    pose, valid = _random_pose(batch, cfg.num_keypoints, cfg.input_size, seed)
    return images, pose.to(device), valid.to(device)


def refiner_row(model, batch: int, precision: str, channels_last: bool, device, gflop: float,
                peak: float | PeakProbe, warmup: int = 2, repeats: int = 3, min_time_s: float = 0.5, compiled=None,
                seed: int = 0) -> dict:
    """Samples/s of ``model`` (already on ``device``, in the right memory format) for one batch and precision.

    ``peak``: the matmul peak (GFLOP/s) or a :class:`PeakProbe` sampled before every timed call. The roofline
    fraction divides the achieved GFLOP/s by the best matmul rate seen (the run's initial peak and the row's
    samples): an unlucky low peak sample on a shared machine can only lower the fraction, never inflate it.
    ``compiled``: an optional
    ``torch.compile`` of the model to time instead. The row also times rendering the batch's input heatmaps alone
    (the data-preparation part the model does on device).
    """
    dev = torch.device(device)
    cfg = model.config
    w, h = cfg.input_size
    images, pose, valid = _prepared(model, dev, batch, channels_last, seed)
    run = compiled if compiled is not None else model
    probe = peak if isinstance(peak, PeakProbe) else None
    with torch.inference_mode():
        def step():
            with autocast(dev, precision):
                return run(images, pose, valid)

        fwd = time_call(step, dev, warmup, repeats, min_time_s, before=probe)
        rend = time_call(lambda: render_heatmaps(pose, valid, (h, w), cfg.sigma), dev, 1, repeats, 0.1)
    sps = batch / (fwd["median_ms"] / 1e3)
    samples = probe.samples[-fwd["repeats"]:] if probe is not None else []
    peak_gflops = max([probe.initial if probe is not None else float(peak)] + samples)
    fraction = gflop * sps / peak_gflops
    return {
        "backbone": cfg.backbone, "head": cfg.head, "input_size": [w, h], "batch": batch, "precision": precision,
        "memory_format": "channels_last" if channels_last else "contiguous", "bn_folded": is_folded(model),
        "compiled": compiled is not None, "emulated": native_support(dev)["native"].get(precision) is False,
        "forward_ms": fwd["median_ms"], "forward_min_ms": fwd["min_ms"], "repeats": fwd["repeats"],
        "render_ms": rend["median_ms"], "samples_per_s": sps, "gflop_per_sample": gflop,
        "achieved_gflops": gflop * sps, "peak_gflops": peak_gflops, "peak_paired": probe is not None,
        "peak_samples_gflops": samples,
        "roofline_fraction": fraction,
    }


def _peak_for_row(spec: ThroughputSpec, precision: str, peaks: dict) -> float | PeakProbe:
    """A :class:`PeakProbe` at the run's best size (``paired_peak``), else the run's initial peak measurement."""
    if not spec.paired_peak:
        return peaks[precision]["peak_gflops"]
    return PeakProbe(spec.device, precision, peaks[precision]["best_size"], peaks[precision]["peak_gflops"])


def _model_rows(config: RefinerConfig, spec: ThroughputSpec, precisions, peaks: dict, gflop: float,
                progress: Progress) -> list:
    dev = torch.device(spec.device)
    plain = build_refiner(config, seed=spec.seed).eval().to(dev)
    variants = {False: plain, True: fold_batchnorm(plain) if True in spec.fold_bn else None}
    rows = []
    combos = [(f, cl, p, b) for f in spec.fold_bn for cl in spec.channels_last for p in precisions
              for b in spec.batch_sizes]
    for fold, cl, precision, batch in progress(combos, total=len(combos), desc=f"{config.backbone} {config.input_size}"):
        model = variants[fold].to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        compiled = torch.compile(model, dynamic=False) if spec.compile else None
        peak = _peak_for_row(spec, precision, peaks)
        rows.append(refiner_row(model, batch, precision, cl, dev, gflop, peak,
                                spec.warmup, spec.repeats, spec.min_time_s, compiled, spec.seed))
    return rows


# -- the whole report ---------------------------------------------------------------------------------------------
def _nest(rows: list[dict], key: str) -> dict:
    """{backbone: {"HxW": {"precision/format": {batch: rows[key]}}}} (sizes as H x W, as the paper names them)."""
    out: dict = {}
    for r in rows:
        size = f"{r['input_size'][1]}x{r['input_size'][0]}"
        fmt = (f"{r['precision']}/{r['memory_format']}" + ("/bn_folded" if r["bn_folded"] else "")
               + ("/compiled" if r["compiled"] else ""))
        out.setdefault(r["backbone"], {}).setdefault(size, {}).setdefault(fmt, {})[str(r["batch"])] = r[key]
    return out


def _reference_step(spec: ThroughputSpec, rows: list[dict], peaks: dict, gflops: dict) -> dict:
    """The fp32 row of the reference backbone at the render size and batch (measured now if the sweep lacks it)."""
    size = list(spec.render_size)
    for r in rows:
        if (r["backbone"], r["input_size"], r["batch"], r["precision"], r["compiled"], r["bn_folded"]) == (
                spec.reference_backbone, size, spec.render_batch, "fp32", False, spec.fold_bn[0]):
            return r
    cfg = RefinerConfig(backbone=spec.reference_backbone, head=spec.head, input_size=tuple(spec.render_size))
    key = (cfg.backbone, tuple(cfg.input_size))
    gflops.setdefault(key, refiner_gflop(cfg))
    peak = peaks.get("fp32") or matmul_peak(spec.device, "fp32", spec.peak_sizes)
    peaks.setdefault("fp32", peak)
    model = build_refiner(cfg, seed=spec.seed).eval().to(torch.device(spec.device))
    model = fold_batchnorm(model) if spec.fold_bn[0] else model
    cl = spec.channels_last[0]
    model = model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
    return refiner_row(model, spec.render_batch, "fp32", cl, spec.device, gflops[key],
                       _peak_for_row(spec, "fp32", peaks),
                       min(spec.warmup, 1), spec.repeats, 0.0, None, spec.seed)


def run_throughput(spec: ThroughputSpec, dataset=None, e2e: Callable[[], dict] | None = None,
                   progress: Progress = no_progress) -> dict:
    """Measure everything ``spec`` asks for and return the report (plain JSON-able record).

    Args:
        spec: the sweep.
        dataset: real images for the data-preparation timings (skipped when None).
        e2e: optional callable returning :func:`e2e_latency`'s record (built by the caller, who owns the source).
    """
    from posefix_bench.engine.fps import plan_precisions  # fps builds on this module's primitives

    spec.validate()
    dev = torch.device(spec.device)
    old_threads, old_bench = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if spec.threads:
        torch.set_num_threads(int(spec.threads))
    torch.backends.cudnn.benchmark = True
    try:
        env = environment(spec.device)
        wanted = tuple(dict.fromkeys(effective(p, dev) for p in spec.precisions))  # $POSEFIX_PRECISION
        record = _precision_probe(spec) if "auto" in wanted else None
        timed, emulated = plan_precisions(wanted, dev, record)
        peaks = {p: matmul_peak(dev, p, spec.peak_sizes) for p in timed}
        bandwidth = fill_bandwidth(dev)
        render = render_benchmark(dev, spec.render_batch, COCO17.num_keypoints, tuple(spec.render_size),
                                  repeats=spec.repeats, seed=spec.seed)
        rows, gflops = [], {}
        for backbone in spec.backbones:
            for size in spec.input_sizes:
                cfg = RefinerConfig(backbone=backbone, head=spec.head, input_size=tuple(size))
                gflops[(backbone, tuple(size))] = refiner_gflop(cfg)
                rows += _model_rows(cfg, spec, timed, peaks, gflops[(backbone, tuple(size))], progress)
        reference = _reference_step(spec, rows, peaks, gflops)
        prep = [data_prep_benchmark(dataset, tuple(s)) for s in spec.input_sizes] if dataset is not None else []
        e2e_record = e2e() if e2e is not None else None
    finally:
        torch.set_num_threads(old_threads)
        torch.backends.cudnn.benchmark = old_bench
    env["load_average_1min_end"] = load_average()
    report = _report(spec, env, peaks, bandwidth, render, rows, gflops, reference, prep, e2e_record)
    report.update(precisions=timed, emulated=emulated, precision_probe=record)
    return report


def _precision_probe(spec: ThroughputSpec) -> dict:
    """The inference probe of the sweep's first network in its first variant (the ``auto`` decision's evidence)."""
    cfg = RefinerConfig(backbone=spec.backbones[0], head=spec.head, input_size=tuple(spec.input_sizes[0]))
    net = build_refiner(cfg, seed=spec.seed).eval().to(torch.device(spec.device))
    net = fold_batchnorm(net) if spec.fold_bn[0] else net
    cl = spec.channels_last[0]
    net = net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
    return probe("infer", device=spec.device, batch=max(spec.batch_sizes), net=net, channels_last=cl)


def _report(spec, env, peaks, bandwidth, render, rows, gflops, reference, prep, e2e_record) -> dict:
    gflop_nested: dict = {}
    for (backbone, (w, h)), g in gflops.items():
        gflop_nested.setdefault(backbone, {})[f"{h}x{w}"] = g
    return {
        "format": "posefix-bench/throughput/v1",
        "environment": env,
        "settings": {k: v for k, v in asdict(spec).items() if k != "extra"} | dict(spec.extra),
        "device": env["device_name"], "torch": env["torch"], "cuda": env["cuda"],
        "render_vectorized_ms": render["render_vectorized_ms"],
        "render_loop_ms": render["render_loop_ms"],
        "render_speedup": render["render_speedup"],
        # rendering the step's own heatmaps, timed right after the step (side by side), over the step's forward
        "render_share_of_refiner_step": reference["render_ms"] / reference["forward_ms"],
        "render_share_basis": {k: reference[k] for k in ("backbone", "input_size", "batch", "precision",
                                                          "memory_format", "bn_folded", "forward_ms", "render_ms")},
        "refiner_samples_per_s": _nest(rows, "samples_per_s"),
        "gflop_per_sample": gflop_nested,
        "roofline_fraction": _nest(rows, "roofline_fraction"),
        "matmul_peak": peaks,
        "memory_bandwidth": bandwidth,
        "render": render,
        "refiner": rows,
        "reference_step": reference,
        "data_prep": prep,
        "e2e": e2e_record,
    }


def result_filename(report: dict, precision: str) -> str:
    """``<device>-<precision>.json`` (timm's results/ style), e.g. ``cpu-amd-epyc-2t-fp32.json``."""
    return f"{report['environment']['device_slug']}-{precision}.json"


def split_by_precision(report: dict) -> dict[str, dict]:
    """One report per precision (its refiner rows and peak; the shared sections repeated); an emulated precision
    that was not timed gets one too, with no rows and its ``emulated`` note."""
    out = {}
    for p in report.get("precisions", report["settings"]["precisions"]):
        rows = [r for r in report["refiner"] if r["precision"] == p]
        part = dict(report)
        part.update(refiner=rows, refiner_samples_per_s=_nest(rows, "samples_per_s"),
                    roofline_fraction=_nest(rows, "roofline_fraction"), matmul_peak={p: report["matmul_peak"][p]},
                    precision=p, emulated=[])
        out[p] = part
    for e in report.get("emulated", []):
        out[e["precision"]] = dict(report, refiner=[], refiner_samples_per_s={}, roofline_fraction={}, matmul_peak={},
                                   precision=e["precision"], emulated=[e])
    return out
