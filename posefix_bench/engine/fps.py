"""The bench's speed records: refiner inference FPS per network and the machine's matmul peak, precision-aware.

:func:`plan_precisions` decides what a speed table times (also for the ``throughput`` command's sweep). Both records
follow the throughput harness's protocol (:mod:`posefix_bench.engine.throughput`: warm-up, synchronisation,
median of repeats, the matmul peak measured in the same run) and the precision rule of issue 21
(:mod:`posefix_bench.engine.precision`): bf16 (fp16) figures appear only where the device runs them natively, as
measured by the precision probe and its hardware evidence; an emulated precision is listed with its measured
slow-down and the reason, never with a samples/s or GFLOP/s figure that would read as a capability.
"""

from __future__ import annotations

import torch

from posefix_bench.engine.precision import PRECISIONS, candidates, effective, native_support, probe, torch_threads
from posefix_bench.engine.environment import environment
from posefix_bench.engine.throughput import (
    PeakProbe,
    matmul_peak,
    refiner_gflop,
    refiner_row,
)
from posefix_bench.errors import PosefixError
from posefix_bench.models import RefinerConfig, build_refiner, fold_batchnorm

__all__ = ["plan_precisions", "refiner_fps", "machine_peaks"]


def plan_precisions(requested, device, probe_record: dict | None = None) -> tuple[list[str], list[dict]]:
    """(precisions to time, emulated entries not to time) for requested names and/or ``auto``.

    Explicit names are timed (a row of one the device lacks native support for is flagged ``emulated``). ``auto``
    adds fp32 and every candidate whose status in ``probe_record`` (:func:`posefix_bench.engine.precision.probe`)
    is ``native``; every other candidate becomes ``{"precision", "status", "ratio_vs_fp32", "note"}``: a measured
    slow-down and the reason, instead of a misleading samples/s figure.
    """
    requested = (requested,) if isinstance(requested, str) else tuple(requested)
    timed = {p for p in requested if p != "auto"}
    emulated = []
    if "auto" in requested:
        if probe_record is None:
            raise PosefixError("precision 'auto' needs the precision probe's record")
        net, check = probe_record["probe"]["network"], probe_record["probe"].get("emulation_check")
        for p in candidates(device):
            status = probe_record["status"].get(p)
            if p == "fp32" or status == "native":
                timed.add(p)
            elif p not in timed:
                how = (f"{check['step']}, batch {check['batch']}" if check and p in check["ms_per_step"] else
                       f"{probe_record['kind']} step, batch {probe_record['probe']['batch']}")
                why = probe_record.get("notes", {}).get(p, f"{p} {status}")
                emulated.append({"precision": p, "status": status, "ratio_vs_fp32": probe_record["ratio"].get(p),
                                 "note": f"{p} not timed: {why} (precision probe: {net['backbone']} "
                                         f"{net['input_size'][1]}x{net['input_size'][0]} {how})"})
    return [p for p in PRECISIONS if p in timed], emulated


def refiner_fps(model_cfg: dict, num_keypoints: int, device: str = "cpu", batches=(1, 32), precisions="auto",
                threads: int = 2, cache_dir=None) -> dict:
    """The bench's FPS step: inference samples/s of a refiner network (random weights: speed does not depend on
    them; BatchNorm folded, channels_last) per batch and precision, with the matmul peak of each precision measured
    in the same run. ``precisions``: names and/or ``auto`` (:func:`plan_precisions`; the probe record is
    ``precision_probe``, kept on disk under ``cache_dir`` when given). Emulated precisions are listed in
    ``emulated`` (with ``notes``), never as rows.
    """
    with torch_threads(threads):
        cfg = RefinerConfig.from_dict({**model_cfg, "num_keypoints": num_keypoints})
        gflop = refiner_gflop(cfg)
        model = fold_batchnorm(build_refiner(cfg, seed=0).eval().to(device).to(memory_format=torch.channels_last))
        wanted = (precisions,) if isinstance(precisions, str) else tuple(precisions)
        wanted = tuple(dict.fromkeys(effective(p, device) for p in wanted))  # auto as $POSEFIX_PRECISION says
        record = probe("infer", device=device, batch=max(batches), net=model, channels_last=True,
                       cache_dir=cache_dir) if "auto" in wanted else None
        timed, emulated = plan_precisions(wanted, device, record)
        rows = []
        for precision in timed:
            mp = matmul_peak(device, precision)
            peak = PeakProbe(device, precision, mp["best_size"], mp["peak_gflops"])
            for b in batches:
                rows.append(refiner_row(model, b, precision, True, device, gflop, peak))
        return {"gflop_per_sample": gflop, "threads": threads, "device": device, "rows": rows,
                "emulated": emulated, "notes": [e["note"] for e in emulated], "precision_probe": record}


def machine_peaks(device: str = "cpu", threads: int | None = None, sizes: tuple[int, ...] | None = None) -> dict:
    """The machine's matrix-multiply peak per candidate precision, with its native-support evidence (bench start).

    A precision without native support is measured at n = 256 only (``emulated_gflops``; ``peak_gflops`` None):
    emulated rates are far below any peak, and a full-size emulated product can take minutes.
    """
    with torch_threads(threads) as n:
        support = native_support(device)
        peaks = {}
        for p in candidates(device):
            if support["native"].get(p) is False:
                small = matmul_peak(device, p, sizes=(256,), repeats=3)
                peaks[p] = dict(small, peak_gflops=None, emulated=True, emulated_gflops=small["peak_gflops"])
            else:
                peaks[p] = dict(matmul_peak(device, p, sizes), emulated=False)
    env = environment(device)
    text = ", ".join(f"{p} {v['peak_gflops']:.0f} GFLOP/s" if v["peak_gflops"] else
                     f"{p} emulated ({v['emulated_gflops']:.1f} GFLOP/s at n=256)" for p, v in peaks.items())
    where = env["device_name"] if str(device).startswith("cuda") else \
        f"{env['cpu']} ({env['cpu_capability']}, {n} thread{'s' if n != 1 else ''})"
    return {"device": str(device), "threads": n, "peaks": peaks, "native": support["native"],
            "evidence": support["evidence"], "sentence": f"matmul peak: {text} on {where}"}
