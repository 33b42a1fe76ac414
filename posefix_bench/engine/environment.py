"""The one environment record: what machine, device and library versions a measurement comes from.

Every timed number of this suite (bench, throughput, scale) is quoted with it, because these machines differ from
day to day (AVX-512 with or without native bf16, AVX2 only; shared cores). It joins mmengine's ``collect_env``
(Python, GCC, PyTorch, TorchVision, OpenCV, MMEngine, CUDA and GPU names: the fields mmpose and mmengine print in
their logs) with what the speed of this suite depends on: the CPU model and its torch capability, the native bf16
evidence (:func:`posefix_bench.engine.precision.native_support`), ``$POSEFIX_PRECISION``, the torch threads, the
load average when the record was taken, and the versions of numpy, mmcv, mmpose and this package. ``device_slug``
names result files.
"""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata

__all__ = ["environment", "cpu_name", "load_average"]

_COLLECT_ENV_KEYS = {"GCC": "gcc", "TorchVision": "torchvision", "OpenCV": "opencv", "MMEngine": "mmengine",
                     "CUDA available": "cuda_available"}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average: other processes on the cores make every timed number slower (shared machines)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(device: str = "cpu") -> dict:
    """The environment record of ``device`` (``cpu``, ``cuda``, ``cuda:N``) in this process."""
    import torch
    from mmengine.utils.dl_utils import collect_env

    from posefix_bench.engine.precision import PRECISION_ENV, native_support

    dev = torch.device(device)
    collected = collect_env()
    env = {
        "device": str(dev),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        **{ours: collected.get(theirs) for theirs, ours in _COLLECT_ENV_KEYS.items()},
        "gpus": {k: v for k, v in collected.items() if k.startswith("GPU ")},
        "numpy": _version("numpy"), "mmcv": _version("mmcv"), "mmpose": _version("mmpose"),
        "posefix_bench": _version("posefix-bench"),
        "cpu": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native": native_support(dev),
        "threads": torch.get_num_threads(),
        # what ``auto`` precision means here when set (engine.precision.PRECISION_ENV): part of every timed number
        "precision_override": os.environ.get(PRECISION_ENV) or None,
        "load_average_1min": load_average(),
        # PyTorch's CPU allocator puts buffers >= 2 MB on transparent huge pages when this is set at process
        # start: fewer page faults on the large activations and heatmap batches (must be set before torch allocates)
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
    }
    if dev.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(dev)
        env["device_slug"] = _slug(env["device_name"])
    else:
        env["device_name"] = f"{env['cpu']} ({env['threads']} threads)"
        env["device_slug"] = f"cpu-{_slug(env['cpu'])}-{env['threads']}t"
    return env
