"""Precision by measurement: which of fp32 / bf16 / fp16 a device runs a refiner step fastest, natively.

Why: bf16 autocast made a ResNet-18 64x48 batch-32 training step 1.5x faster on a CPU with bf16 matrix units and
33x slower (33.1 s against 1.0 s) on an AVX2 CPU, where bf16 is emulated (issue 21). No fixed choice is right on
both, so ``precision='auto'`` (the default of ``train.amp``, ``refine``, ``throughput`` and the bench) decides on
the actual device:

1. Evidence of native support (:func:`native_support`). CPU: the ``avx512_bf16`` / ``amx_bf16`` flags of
   ``/proc/cpuinfo`` (``bf16`` in the ``Features`` line on aarch64) and torch's own CPUID probe
   (``torch.cpu.get_capabilities``); fp16 is not a CPU candidate. CUDA: the compute capability (bf16 from 8.0,
   Ampere; fp16 from 5.3) and ``torch.cuda.is_bf16_supported(including_emulation=False)``.
2. A short probe (:func:`probe`; timing protocol of :func:`measure`: one untimed warm-up call per precision, then up
   to ``repeats`` timed calls, median, within ``budget_s`` seconds; a precision whose warm-up call alone exceeds the
   budget is not called again, that call is its upper-bound time, flagged ``warmup_only``) times a representative
   step of the actual network config: a training step (forward under autocast, loss, backward, Adam step) or an
   inference forward of the BatchNorm-folded network, at the caller's batch capped at :data:`PROBE_BATCH` on the
   CPU (:data:`CUDA_PROBE_BATCH` on CUDA, where small batches are launch-bound). fp32 and every precision not
   flagged as emulated are timed so; a precision the flags call emulated is only checked for its slow-down: one
   inference forward at batch 1 against fp32, with half the budget (a training step's optimizer and Python overhead,
   the same in every precision, would dilute the ratio; a full emulated step at 33x is what must be avoided).
   Probe time measured on a 2-core AVX-512 Xeon without bf16, 1 thread, shared machine at load average ~8: 5.0 s
   for the quick profile's ResNet-18 64x48 training step, 2.5 s for its inference forward (6.0 s / 3.5 s with
   oneDNN and ATen capped to AVX2, where the batch-1 check measured bf16 6.8x slower); once per network, device,
   batch and thread count in a process, once per machine with ``cache_dir``.
3. The decision (:func:`decide`, a pure function of the timings and the flags): a precision without native support
   (flag false, or no flag and measured >= :data:`EMULATED_RATIO` x slower than fp32) is ``emulated`` and never
   chosen; among fp32 and the native ones the fastest wins, where a reduced precision must be at least
   :data:`MIN_GAIN` x faster than fp32 (it costs accuracy, and the choice must not flip on timing noise).

An explicit ``fp32`` / ``bf16`` / ``fp16`` always wins (:func:`resolve_precision`). The environment variable
``POSEFIX_PRECISION`` (:data:`PRECISION_ENV`: ``fp32`` / ``bf16`` / ``fp16`` / ``auto``) says what ``auto`` means in
this process and every process it starts (:func:`effective`): ``POSEFIX_PRECISION=fp32`` gives fp32 numbers on any
machine, e.g. to reproduce reports made on a CPU without native bf16 on one with it (issue 25). Its record says
``decided_by: POSEFIX_PRECISION``; an explicit setting (``train.amp``, ``--precision``) still wins over it. Probe
results are cached per process (:func:`clear_probe_cache`) and, with ``cache_dir``, on disk per machine, so every
process of a bench (and every re-run on the same machine) makes the same choice and cache keys stay stable.

The record (a plain dict, JSON-able): ``precision`` (the choice), ``requested``, ``decided_by`` (``probe`` or
``explicit``; a resumed training adds ``kept_from``), ``kind`` (``train`` / ``infer``), ``device``, ``ms_per_step``
{precision: ms at the probe batch}, ``ratio`` {precision: time / fp32 time}, ``status`` {precision: reference |
native | emulated | unsupported | unmeasured}, ``notes`` {precision: phrase}, ``native`` {precision: true | false | null}, ``evidence`` (flags and
CPU capability), ``probe`` (batch, threads, seconds, repeats, warm-up times, the batch-1 ``emulation_check``,
network) and ``sentence``, e.g. "precision: fp32 (bf16 measured 33x slower on this CPU: emulated, no
avx512_bf16/amx_bf16)".
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Mapping

from posefix_bench.errors import PosefixError

__all__ = [
    "PRECISIONS", "CHOICES", "PROBE_BATCH", "MIN_GAIN", "EMULATED_RATIO", "BUDGET_S",
    "autocast", "dtype_of", "check_precision", "amp_to_precision", "native_support", "candidates", "decide",
    "measure", "train_step_fn", "infer_step_fn", "probe", "explicit_record", "resolve_precision",
    "clear_probe_cache", "speed_text", "torch_threads", "synchronize", "PRECISION_ENV", "precision_override",
    "effective",
]  # fmt: skip

PRECISIONS = ("fp32", "bf16", "fp16")
CHOICES = ("auto", *PRECISIONS)
PROBE_BATCH = 8  # the CPU probe's largest batch: big enough for a representative kernel mix, small enough to stay short
CUDA_PROBE_BATCH = 64  # on CUDA small batches are launch-bound and would hide what reduced precision gains
MIN_GAIN = 1.10  # a reduced precision must be at least this much faster than fp32 to be chosen
EMULATED_RATIO = 2.0  # without a flag either way, this much slower than fp32 counts as emulated
BUDGET_S = 2.0  # seconds of timed calls per precision (after the warm-up call)
PRECISION_ENV = "POSEFIX_PRECISION"  # what ``auto`` means in this process (module docstring)
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86; aarch64 reports "bf16" in its Features line

_PROBES: dict[str, dict] = {}
_SUPPORT: dict[str, dict] = {}


# -- small helpers ------------------------------------------------------------------------------------------------
def dtype_of(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@contextlib.contextmanager
def autocast(device, precision: str):
    """``torch.autocast`` to ``precision`` on ``device`` (nothing for fp32)."""
    import torch

    if precision == "fp32":
        yield
    else:
        with torch.autocast(torch.device(device).type, dtype=dtype_of(precision)):
            yield


def _device_type(device) -> str:
    import torch

    return torch.device(device).type


def check_precision(value, device="cpu", what: str = "precision") -> str:
    """``value`` as one of :data:`CHOICES`; an unknown name or fp16 off CUDA is a one-line error naming ``what``."""
    if value not in CHOICES:
        raise PosefixError(f"{what} must be one of {', '.join(CHOICES)}, got {value!r}")
    if value == "fp16" and _device_type(device) != "cuda":
        raise PosefixError(f"{what}='fp16' needs CUDA (use 'bf16' or 'auto' on the CPU)")
    return str(value)


def precision_override(device="cpu") -> str | None:
    """The precision ``$POSEFIX_PRECISION`` puts in place of ``auto`` (None: unset, empty or ``auto``); a bad value
    is a one-line error naming the variable."""
    value = os.environ.get(PRECISION_ENV, "").strip()
    if not value or value == "auto":
        return None
    return check_precision(value, device, f"environment variable {PRECISION_ENV}")


def effective(requested: str, device="cpu") -> str:
    """``requested`` with ``auto`` replaced by :func:`precision_override` where that is set."""
    return (precision_override(device) or "auto") if requested == "auto" else requested


def amp_to_precision(amp, device="cpu", what: str = "config: train.amp") -> str:
    """A ``train.amp`` setting as a precision name: ``'auto'`` / ``True`` -> ``'auto'``, ``False`` / ``None`` ->
    ``'fp32'``, a precision name as it is."""
    if amp is True:
        amp = "auto"
    elif amp is False or amp is None:
        amp = "fp32"
    if not isinstance(amp, str):
        raise PosefixError(f"{what} must be 'auto', 'fp32', 'bf16', 'fp16', true or false, got {amp!r}")
    return check_precision(amp, device, what)


# -- evidence -----------------------------------------------------------------------------------------------------
def _cpuinfo_flags() -> set[str] | None:
    """Flags of the first CPU in /proc/cpuinfo (``flags`` on x86, ``Features`` on aarch64); None without the file."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        return None
    return set()


def _torch_cpu_caps() -> dict | None:
    """torch's own CPU feature probe (cpuinfo, CPUID: sees through a hidden /proc/cpuinfo), its bf16-related keys."""
    import torch

    keys = ("avx512_bf16", "amx_bf16", "amx_tile", "bf16", "sve_bf16")
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        with contextlib.suppress(Exception):
            caps = dict(get())
            return {k: bool(caps[k]) for k in keys if k in caps}
    old = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_tile": "_is_amx_tile_supported"}  # torch < 2.10
    caps = {k: bool(getattr(torch.cpu, fn)()) for k, fn in old.items() if hasattr(torch.cpu, fn)}
    return caps or None


def native_support(device="cpu") -> dict:
    """Hardware evidence for each precision on ``device`` (read once per device and process).

    Returns ``{"native": {precision: True | False | None}, "evidence": {...}}``; None: no evidence either way
    (e.g. no /proc/cpuinfo and no torch probe), in which case the measurement alone decides.
    """
    import torch

    dev = torch.device(device)
    if str(dev) not in _SUPPORT:
        _SUPPORT[str(dev)] = _native_support(torch, dev)
    return copy.deepcopy(_SUPPORT[str(dev)])


def _native_support(torch, dev) -> dict:
    if dev.type == "cuda":
        cc = torch.cuda.get_device_capability(dev)
        try:
            bf16_api = bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # older torch: no including_emulation argument
            bf16_api = bool(torch.cuda.is_bf16_supported())
        evidence = {"compute_capability": f"{cc[0]}.{cc[1]}", "cuda_is_bf16_supported": bf16_api,
                    "device_name": torch.cuda.get_device_name(dev)}
        return {"native": {"fp32": True, "bf16": bool(cc >= (8, 0) and bf16_api), "fp16": bool(cc >= (5, 3))},
                "evidence": evidence}
    flags = _cpuinfo_flags()
    caps = _torch_cpu_caps()
    machine = platform.machine().lower()
    wanted = {"bf16", "sve_bf16"} if machine in ("aarch64", "arm64") else set(_CPU_BF16_FLAGS)
    found = sorted(f for f in (flags or ()) if f in _CPU_BF16_FLAGS or f.startswith("amx") or f == "bf16")
    if flags is None and caps is None:
        bf16 = None
    else:
        bf16 = bool(wanted & set(found)) or any((caps or {}).get(k) for k in wanted)
    evidence = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "machine": machine,
                "cpuinfo_flags": found if flags is not None else None, "torch_cpu_caps": caps}
    return {"native": {"fp32": True, "bf16": bf16, "fp16": False}, "evidence": evidence}


def candidates(device="cpu") -> tuple[str, ...]:
    """Precisions worth probing on ``device``: fp32 and bf16; fp16 too on CUDA."""
    return PRECISIONS if _device_type(device) == "cuda" else ("fp32", "bf16")


# -- the decision (pure) ------------------------------------------------------------------------------------------
def _times(r: float) -> str:
    return f"{r:.0f}x" if r >= 10 else f"{r:.3g}x"


def speed_text(ratio: float) -> str:
    """'33x slower' / '1.5x faster' from a time ratio (ms / fp32 ms)."""
    return f"{_times(ratio)} slower" if ratio >= 1 else f"{_times(1 / ratio)} faster"


def _no_flags(device_type: str, evidence: Mapping | None) -> str:
    if device_type == "cuda":
        cc = (evidence or {}).get("compute_capability")
        return f"compute capability {cc}" if cc else "no native support"
    arm = (evidence or {}).get("machine") in ("aarch64", "arm64")
    return "no bf16 in the CPU features" if arm else "no avx512_bf16/amx_bf16"


def decide(ms: Mapping[str, float | None], native: Mapping[str, bool | None], device_type: str = "cpu",
           evidence: Mapping | None = None, min_gain: float = MIN_GAIN, emulated_ratio: float = EMULATED_RATIO) -> dict:
    """The precision to use, from measured times and native-support flags (no torch, no clock: testable).

    Args:
        ms: milliseconds per step by precision; fp32 is required, a missing/None entry was not measured.
        native: by precision, True (hardware support), False (none: emulated), None (no evidence).
        device_type: ``cpu`` or ``cuda`` (only for the wording).
        evidence: :func:`native_support`'s evidence (only for the wording).

    Returns:
        ``{"precision", "ratio", "status", "notes", "sentence"}`` (see the module docstring; ``notes``: a phrase per
        precision not chosen).
    """
    if not ms.get("fp32") or ms["fp32"] <= 0:
        raise PosefixError("precision decision: the fp32 reference time is missing")
    ref = float(ms["fp32"])
    where = "this GPU" if device_type == "cuda" else "this CPU"
    ratio = {p: float(t) / ref for p, t in ms.items() if p != "fp32" and t}
    status = {"fp32": "reference"}
    for p in PRECISIONS[1:]:
        if p not in ratio:
            status[p] = "unmeasured" if p in ms else "unsupported"
        elif native.get(p) is False or (native.get(p) is None and ratio[p] >= emulated_ratio):
            status[p] = "emulated"
        else:
            status[p] = "native"
    fast = sorted((ratio[p], p) for p in ratio if status[p] == "native" and ratio[p] * min_gain <= 1.0)
    choice = fast[0][1] if fast else "fp32"
    notes: dict[str, str] = {}
    for p in sorted(ratio, key=lambda q: ratio[q]):
        if p == choice:
            continue
        if status[p] == "emulated":
            why = _no_flags(device_type, evidence) if native.get(p) is False else "no native-support evidence"
            notes[p] = f"{p} measured {speed_text(ratio[p])} on {where}: emulated, {why}"
        elif choice == "fp32" and ratio[p] < 1:
            notes[p] = f"{p} native but measured only {speed_text(ratio[p])}, {_times(min_gain)} needed"
        else:
            notes[p] = f"{p} measured {speed_text(ratio[p])}"
    if choice != "fp32":
        head = f"{choice} measured {speed_text(ratio[choice])} than fp32 on {where}, native"
        sentence = f"precision: {choice} ({'; '.join([head, *notes.values()])})"
    else:
        sentence = f"precision: fp32 ({'; '.join(notes.values())})" if notes else "precision: fp32 (nothing else measured)"
    return {"precision": choice, "ratio": ratio, "status": status, "notes": notes, "sentence": sentence}


# -- measurement --------------------------------------------------------------------------------------------------
def synchronize(device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU. Every timing in the suite goes through it."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure(step: Callable[[str], object], precisions, device="cpu", repeats: int = 3, budget_s: float = BUDGET_S,
            clock: Callable[[], float] = time.perf_counter) -> dict:
    """Time ``step(precision)`` per precision: one warm-up call, then up to ``repeats`` timed calls (median) while
    their total stays within ``budget_s``; a warm-up call longer than ``budget_s`` is the only call (its time is the
    estimate, ``warmup_only``). Returns ``{precision: {"ms", "first_ms", "repeats", "warmup_only"}}``."""
    out = {}
    for p in precisions:
        t0 = clock()
        step(p)
        synchronize(device)
        first = clock() - t0
        times: list[float] = []
        while first <= budget_s and len(times) < repeats and (not times or sum(times) + times[-1] <= budget_s):
            t0 = clock()
            step(p)
            synchronize(device)
            times.append(clock() - t0)
        out[p] = {"ms": 1e3 * (statistics.median(times) if times else first), "first_ms": 1e3 * first,
                  "repeats": len(times), "warmup_only": not times}
    return out


def _inputs(cfg, batch: int, device, seed: int, channels_last: bool = False):
    import torch

    w, h = cfg.input_size
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, 3, h, w), generator=g, dtype=torch.uint8)
    pose = torch.rand(batch, cfg.num_keypoints, 2, generator=g) * torch.tensor([w - 1.0, h - 1.0])
    valid = torch.rand(batch, cfg.num_keypoints, generator=g) > 0.1
    images = images.to(device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, pose.to(device), valid.to(device)


def train_step_fn(model_cfg, device="cpu", batch: int = PROBE_BATCH, seed: int = 0) -> Callable[[str], None]:
    """One training step of a fresh refiner built from ``model_cfg`` (as :class:`~posefix_bench.engine.train.Trainer`
    runs it: forward under autocast, fp32 loss, backward, Adam step), for :func:`measure`."""
    import torch

    from posefix_bench.models import RefinerConfig, build_refiner

    cfg = dataclasses.replace(RefinerConfig.from_dict(model_cfg), pretrained=None)  # speed does not need weights
    model = build_refiner(cfg, seed=seed).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    images, pose, valid = _inputs(cfg, batch, device, seed)
    target = (pose + 1.0).clamp(max=min(cfg.input_size) - 1.0)

    def step(precision: str) -> None:
        opt.zero_grad(set_to_none=True)
        x = model.preprocess(images)
        with autocast(device, precision):
            out = model(x, pose, valid)
        model.loss(out, target, valid)["loss"].backward()
        opt.step()

    return step


def infer_step_fn(net, device="cpu", batch: int = PROBE_BATCH, channels_last: bool = False,
                  seed: int = 0) -> Callable[[str], None]:
    """One inference forward of ``net`` (a :class:`~posefix_bench.models.Refiner`, e.g. BatchNorm-folded), for
    :func:`measure`."""
    import torch

    images, pose, valid = _inputs(net.config, batch, device, seed, channels_last)

    def step(precision: str) -> None:
        with torch.inference_mode(), autocast(device, precision):
            net(net.preprocess(images), pose, valid)

    return step


# -- probe, records, resolution -----------------------------------------------------------------------------------
def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def clear_probe_cache() -> None:
    """Forget this process's probe results (tests)."""
    _PROBES.clear()


def _network(kind: str, model_cfg, net, device):
    from posefix_bench.models import RefinerConfig, build_refiner, fold_batchnorm, is_folded

    if net is not None:
        return net.config.to_dict(), is_folded(net), net
    cfg = dataclasses.replace(RefinerConfig.from_dict(model_cfg), pretrained=None)  # speed does not need weights
    if kind == "train":
        return cfg.to_dict(), False, None
    model = build_refiner(cfg, seed=0).eval().to(device)
    with contextlib.suppress(PosefixError):  # a backbone without a folding rule runs as it is
        model = fold_batchnorm(model)
    return cfg.to_dict(), is_folded(model), model


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's CPU thread count set to ``n`` (unchanged when None) inside the block, restored after."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process agreement, each process probes
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def probe(kind: str, model_cfg=None, device="cpu", batch: int = PROBE_BATCH, threads: int | None = None, net=None,
          channels_last: bool = False, repeats: int = 3, budget_s: float = BUDGET_S, cache_dir=None) -> dict:
    """Measure and decide (the record of the module docstring, ``decided_by: probe``), cached per process.

    Args:
        kind: ``train`` (a training step of a fresh network from ``model_cfg``) or ``infer`` (a forward of ``net``,
            or of the BatchNorm-folded network of ``model_cfg``).
        batch: the probe batch: the caller's, capped at :data:`PROBE_BATCH` on the CPU and at
            :data:`CUDA_PROBE_BATCH` on CUDA.
        threads: torch threads during the probe (default: the current setting), part of the cache key.
        cache_dir: also keep the record on disk here (per machine, torch version, network, batch, threads): every
            process and later run on the machine reuses it, so the choice (and the cache keys built on it) is stable.
    """
    import torch

    from posefix_bench.structures.io import atomic_write_json, read_json

    if kind not in ("train", "infer"):
        raise PosefixError(f"precision probe: kind must be 'train' or 'infer', got {kind!r}")
    dev = torch.device(device)
    batch = max(1, min(int(batch), CUDA_PROBE_BATCH if dev.type == "cuda" else PROBE_BATCH))
    support = native_support(dev)
    network, folded, model = _network(kind, model_cfg, net, dev)
    with torch_threads(threads) as n_threads:
        key = {"kind": kind, "device": str(dev), "network": network, "folded": folded, "batch": batch,
               "threads": n_threads, "channels_last": bool(channels_last), "repeats": repeats, "budget_s": budget_s,
               "torch": torch.__version__, "node": platform.node(), "evidence": support["evidence"]}
        digest = _digest(key)
        if digest in _PROBES:
            return dict(_PROBES[digest])
        path = Path(cache_dir) / f"{kind}-{digest}.json" if cache_dir is not None else None
        with _file_lock(path.with_suffix(".lock")) if path is not None else contextlib.nullcontext():
            if path is not None and path.is_file():
                record = dict(read_json(path, "precision probe record"), reused_from=str(path))
            else:
                record = _run_probe(kind, key, model_cfg, model, dev, support, channels_last)
                if path is not None:
                    atomic_write_json(path, record)
    _PROBES[digest] = record
    return dict(record)


def _run_probe(kind, key, model_cfg, model, dev, support, channels_last) -> dict:
    """Main measurement and emulation check (module docstring, step 2); the record."""
    t0 = time.perf_counter()
    reps, budget, native = key["repeats"], key["budget_s"], support["native"]
    main = [p for p in candidates(dev) if native.get(p) is not False]
    emulated = [p for p in candidates(dev) if native.get(p) is False]
    if kind == "train":
        step = train_step_fn(model_cfg, dev, key["batch"])
    else:
        step = infer_step_fn(model, dev, key["batch"], channels_last)
    timed = measure(step, main, dev, reps, budget)
    check = {}
    if emulated:  # flagged emulated: one forward at batch 1 against fp32, half the budget, for the slow-down only
        if model is None:
            from posefix_bench.models import build_refiner

            model = build_refiner(dict(key["network"]), seed=0).eval().to(dev)
        check = measure(infer_step_fn(model, dev, 1, channels_last), ("fp32", *emulated), dev, reps, budget / 2)
    ref = timed["fp32"]["ms"]
    equivalent = {p: t["ms"] for p, t in timed.items()}
    equivalent.update({p: ref * check[p]["ms"] / check["fp32"]["ms"] for p in emulated})
    choice = decide(equivalent, native, dev.type, support["evidence"])
    every = {**{f"{p}@check": t for p, t in check.items()}, **timed}
    return {
        "precision": choice["precision"], "requested": "auto", "decided_by": "probe", "kind": kind,
        "device": str(dev), "ms_per_step": {p: t["ms"] for p, t in timed.items()}, "ratio": choice["ratio"],
        "status": choice["status"], "notes": choice["notes"], "native": native, "evidence": support["evidence"],
        "probe": {"batch": key["batch"], "threads": key["threads"], "seconds": time.perf_counter() - t0,
                  "emulation_check": {"step": "forward", "batch": 1,
                                      "ms_per_step": {p: t["ms"] for p, t in check.items()}} if check else None,
                  "repeats": {p: t["repeats"] for p, t in every.items()},
                  "warmup_only": sorted(p for p, t in every.items() if t["warmup_only"]),
                  "first_ms": {p: t["first_ms"] for p, t in every.items()},
                  "network": key["network"], "bn_folded": key["folded"], "channels_last": key["channels_last"]},
        "sentence": choice["sentence"],
    }


def explicit_record(precision: str, device="cpu", kind: str = "train", decided_by: str = "explicit") -> dict:
    """The record of a precision that was set, not probed (no timings; native flags and a warning if emulated)."""
    import torch

    dev = torch.device(device)
    precision = check_precision(precision, dev)
    support = native_support(dev)
    status = {"fp32": "reference"}
    for p in PRECISIONS[1:]:
        flag = support["native"].get(p)
        status[p] = "unsupported" if p not in candidates(dev) else {True: "native", False: "emulated"}.get(flag, "unknown")
    note = {"explicit": "set explicitly", PRECISION_ENV: f"set by {PRECISION_ENV}={precision}"}.get(
        decided_by, f"from the {decided_by}")
    if status.get(precision) == "emulated":
        where = "this GPU" if dev.type == "cuda" else "this CPU"
        note += f"; emulated on {where}: {_no_flags(dev.type, support['evidence'])}"
    return {"precision": precision, "requested": precision, "decided_by": decided_by, "kind": kind,
            "device": str(dev), "ms_per_step": {}, "ratio": {}, "status": status, "native": support["native"],
            "evidence": support["evidence"], "probe": None, "sentence": f"precision: {precision} ({note})"}


def resolve_precision(requested, device="cpu", kind: str = "train", model_cfg=None, *, net=None,
                      batch: int = PROBE_BATCH, threads: int | None = None, channels_last: bool = False,
                      cache_dir=None, what: str = "precision") -> dict:
    """The precision record for a requested ``auto`` / ``fp32`` / ``bf16`` / ``fp16``: explicit names win, ``auto``
    takes ``$POSEFIX_PRECISION`` where it is set (recorded as ``decided_by: POSEFIX_PRECISION``, ``requested:
    auto``), else runs (or reuses) the :func:`probe`. Bad names are one-line errors naming ``what``."""
    requested = check_precision(requested, device, what)
    if requested != "auto":
        return explicit_record(requested, device, kind)
    override = precision_override(device)
    if override is not None:
        return dict(explicit_record(override, device, kind, decided_by=PRECISION_ENV), requested="auto")
    if model_cfg is None and net is None:
        raise PosefixError(f"{what}='auto' needs the network (model config) to probe")
    return probe(kind, model_cfg, device, batch=batch, threads=threads, net=net, channels_last=channels_last,
                 cache_dir=os.fspath(cache_dir) if cache_dir is not None else None)
