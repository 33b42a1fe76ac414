"""The validation pass every command runs first, and the argument definitions commands share.

A command checks its arguments here before it loads a model, imports a heavy module (torch, mmengine, mmpose) or
starts its work, so a typo costs a second instead of a run: input files and folders exist, ``--out`` can be
created and written (a folder where a file is expected or the reverse, a parent that is a file, a folder that
cannot be written in), devices exist, numbers are in range. Each failure is one
:class:`~posefix_bench.errors.PosefixError` line naming the argument and the problem, e.g.
``--out runs/: is a directory, expected a file name``; the CLI prints it and exits 2. Nothing here writes anything but
a probe file it removes at once.

``--gt``, ``--results``, ``--absent-policy`` and ``--device`` are defined once, here (:func:`add_gt` etc.), so every
command takes and documents them the same way. :func:`print_warnings` is how a command shows the data warnings of
:mod:`posefix_bench.structures.checks` (one line each on stderr); :func:`load_scored_inputs` loads ``--gt`` and
``--results`` the one way the commands that score results (evaluate, diagnose, profile) do.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterable

from posefix_bench.errors import PosefixError

GT_HELP = "COCO keypoint annotation file (the ground truth: images, persons, keypoint category)"
RESULTS_HELP = "COCO keypoint results file (a JSON list of records with image_id, category_id, keypoints, score)"
ABSENT_HELP = (
    "which predicted keypoints count as not predicted: 'absent': those with confidence exactly 0 or at exactly "
    "(0, 0) (KS 0 in AP, a class of their own in a diagnosis, left as they are by the refiner); 'pycocotools': "
    "every keypoint counts as predicted, as pycocotools does (default: %(default)s)"
)
DEVICE_HELP = "cpu, cuda or cuda:N"


# -- shared argument definitions ----------------------------------------------------------------------------------
def add_gt(p, required: bool = True, default_note: str | None = None) -> None:
    """``--gt PATH``: the ground-truth annotation file."""
    note = f" (default: {default_note})" if default_note else ""
    p.add_argument("--gt", type=Path, required=required, help=GT_HELP + note)


def add_results(p, required: bool = True) -> None:
    """``--results PATH``: a COCO keypoint results file."""
    p.add_argument("--results", type=Path, required=required, help=RESULTS_HELP)


def add_absent_policy(p) -> None:
    """``--absent-policy {absent,pycocotools}``."""
    from posefix_bench.structures.results import ABSENT_POLICIES, DEFAULT_ABSENT_POLICY

    p.add_argument("--absent-policy", choices=ABSENT_POLICIES, default=DEFAULT_ABSENT_POLICY, help=ABSENT_HELP)


def add_device(p, default: str | None = "cpu", auto: bool = False) -> None:
    """``--device``: cpu, cuda, cuda:N (and ``auto`` where the command picks)."""
    choices = DEVICE_HELP + (" or auto (cuda when there is a GPU)" if auto else "")
    tail = " (default: %(default)s)" if default is not None else " (default: cpu)"
    p.add_argument("--device", default=default, help=choices + tail)


# -- numbers ------------------------------------------------------------------------------------------------------
def at_least(value, minimum, arg: str):
    """``value`` when it is >= ``minimum``; else ``--arg VALUE: must be >= MINIMUM``."""
    if value is not None and not value >= minimum:
        raise PosefixError(f"{arg} {value}: must be >= {minimum}")
    return value


def positive(value: float | None, arg: str) -> float | None:
    """A finite number > 0 (or None)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise PosefixError(f"{arg} {value}: must be a positive number")
    return value


def in_range(value: float | None, low: float, high: float, arg: str) -> float | None:
    """A number in [low, high] (or None)."""
    if value is not None and not (low <= value <= high):
        raise PosefixError(f"{arg} {value}: must be in [{low:g}, {high:g}]")
    return value


# -- input paths --------------------------------------------------------------------------------------------------
def _exists(path: Path, arg: str) -> bool:
    try:
        return path.exists()
    except OSError as e:  # e.g. a folder on the way that cannot be searched
        raise PosefixError(f"{arg} {path}: cannot be checked ({e.strerror or e})") from None


def input_file(path: Path | None, arg: str, what: str = "file") -> Path | None:
    """An existing, readable file (None passes: an optional argument not given)."""
    if path is None:
        return None
    if not _exists(path, arg):
        raise PosefixError(f"{arg} {path}: {what} not found")
    if path.is_dir():
        raise PosefixError(f"{arg} {path}: is a directory, expected a {what}")
    if not os.access(path, os.R_OK):
        raise PosefixError(f"{arg} {path}: {what} cannot be read (permission denied)")
    return path


def input_dir(path: Path | None, arg: str, what: str = "folder") -> Path | None:
    """An existing folder (None passes)."""
    if path is None:
        return None
    if not _exists(path, arg):
        raise PosefixError(f"{arg} {path}: {what} not found")
    if not path.is_dir():
        raise PosefixError(f"{arg} {path}: is a file, expected a {what}")
    return path


def input_path(path: Path, arg: str, what: str) -> Path:
    """An existing file or folder (e.g. a video or a folder of frames)."""
    if not _exists(path, arg):
        raise PosefixError(f"{arg} {path}: {what} not found")
    return path


# -- output paths -------------------------------------------------------------------------------------------------
def _probe_write(folder: Path, target: Path, arg: str) -> None:
    """Create and remove a file in ``folder``: the one test that covers permissions, read-only mounts and ACLs."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".posefix-write-check.", dir=folder)
    except OSError as e:
        where = "" if folder == target else f" in {folder}"
        raise PosefixError(f"{arg} {target}: cannot write{where} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(tmp)


def _creatable(path: Path, arg: str) -> None:
    """The nearest existing ancestor of ``path`` is a folder this process can write in."""
    probe = path.parent if str(path.parent) else Path(".")
    while not _exists(probe, arg):
        if probe.is_symlink():
            raise PosefixError(f"{arg} {path}: {probe} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise PosefixError(f"{arg} {path}: {probe} is a file, not a directory")
    _probe_write(probe, path, arg)


def output_file(path: Path | None, arg: str = "--out") -> Path | None:
    """A file the command can write at the end: not a folder, under a folder that is (or can be made) writable."""
    if path is None:
        return None
    if _exists(path, arg) and path.is_dir():
        raise PosefixError(f"{arg} {path}: is a directory, expected a file name")
    _creatable(path, arg)
    return path


def output_dir(path: Path | None, arg: str = "--out") -> Path | None:
    """A folder the command can write into: an existing writable folder, or one that can be created."""
    if path is None:
        return None
    if _exists(path, arg):
        if not path.is_dir():
            raise PosefixError(f"{arg} {path}: exists and is not a directory")
        _probe_write(path, path, arg)
        return path
    _creatable(path, arg)
    return path


def distinct(paths: dict[str, Path | None]) -> None:
    """No two of these arguments name the same file (an output would overwrite an input or another output)."""
    seen: dict[str, str] = {}
    for arg, p in paths.items():
        if p is None:
            continue
        key = os.path.realpath(p)
        if key in seen:
            raise PosefixError(f"{arg} {p}: the same file as {seen[key]}")
        seen[key] = arg


# -- devices ------------------------------------------------------------------------------------------------------
_DEVICE = re.compile(r"cpu|cuda(?::(\d+))?")


def _driver_may_have_gpu() -> bool:
    """False only when no GPU driver is installed at all (then torch cannot see a GPU either); cheap, no torch."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return os.path.exists("/dev/kfd")  # ROCm builds of torch call their GPUs "cuda" too


def device(text: str | None, arg: str = "--device", auto: bool = False) -> str | None:
    """A device torch can use: ``cpu``, ``cuda``, ``cuda:N`` (``auto`` where allowed); else a one-line error.

    ``cuda`` on a machine without a GPU is refused here, with the argument named (not later, as a checkpoint that
    "cannot be read"). torch is imported only to confirm a GPU the driver says may be there.
    """
    if text is None or (auto and text == "auto"):
        return text
    m = _DEVICE.fullmatch(text)
    if m is None:
        raise PosefixError(f"{arg} {text!r}: unknown device (expected {DEVICE_HELP}{' or auto' if auto else ''})")
    if text == "cpu":
        return text
    count = 0
    if _driver_may_have_gpu():
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise PosefixError(f"{arg} {text}: no CUDA GPU is available on this machine (use --device cpu)")
    index = int(m.group(1) or 0)
    if index >= count:
        raise PosefixError(f"{arg} {text}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return text


# -- models -------------------------------------------------------------------------------------------------------
def finite_weights(model, checkpoint: Path) -> None:
    """A loaded refiner whose weights hold NaN or inf is the checkpoint's fault: say so, naming it."""
    import torch

    bad = [name for name, t in model.state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise PosefixError(f"{checkpoint}: the refiner's weights hold NaN or inf ({len(bad)} tensors, e.g. "
                           f"{bad[0]}); the checkpoint is unusable")


# -- warnings -----------------------------------------------------------------------------------------------------
def print_warnings(command: str, warnings: Iterable) -> list:
    """Print each data warning as one line on stderr (``posefix-bench CMD: warning: ...``); returns them as a list."""
    out = list(warnings)
    for w in out:
        print(f"posefix-bench {command}: warning: {w}", file=sys.stderr)
    return out


def load_scored_inputs(args: argparse.Namespace, command: str) -> tuple:
    """``(gt, results, data warnings)`` of ``--gt`` and ``--results`` (checked files), for a command that scores the
    results against the ground truth: the ground truth must hold a person to score (else a one-line error naming
    ``command``), the results are validated against it; the warnings are not printed yet (:func:`print_warnings`)."""
    from posefix_bench.structures.checks import check_ground_truth, check_results, require_persons
    from posefix_bench.structures.coco import CocoDataset
    from posefix_bench.structures.results import load_results

    gt = CocoDataset(args.gt)
    require_persons(gt, command)
    results = load_results(args.results, gt)
    return gt, results, check_ground_truth(gt) + check_results(results, args.results)


def namespace_paths(args: argparse.Namespace, *names: str) -> dict[str, Path | None]:
    """``{"--name": args.name}`` for :func:`distinct`."""
    return {"--" + n.replace("_", "-"): getattr(args, n, None) for n in names}
