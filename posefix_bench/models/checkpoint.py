"""Refiner checkpoints: one self-describing file per model (format version, config, weights, provenance).

A checkpoint is a ``torch.save`` dict::

    {"format": "posefix-bench/refiner/v1",
     "config": RefinerConfig.to_dict(),          # backbone, head variant, input size, sigma, ...
     "state_dict": {name: tensor},               # CPU tensors
     "meta": {"trained": bool, "iterations", "seed", "dataset", "mix", ...},   # plain JSON values
     "gate": {...}}                              # optional: the calibrated per-keypoint gate (issue 17)

Training checkpoints may add keys (optimizer, scheduler, RNG states, ...); :func:`load_refiner` ignores them.
The gate is a plain JSON record (weights, threshold and how it was calibrated; its meaning is
:mod:`posefix_bench.engine.gate`'s): :func:`save_gate` writes it into a finished checkpoint, replacing any earlier
one, and :func:`load_refiner_and_gate` returns it (None for checkpoints without one, e.g. older ones).
Loading rebuilds the network from ``config`` and requires the weights to match it exactly, so a checkpoint of
another architecture or head variant is refused with a one-line :class:`PosefixError` instead of loading silently.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.models.config import RefinerConfig
from posefix_bench.models.fold import is_folded
from posefix_bench.models.refiner import Refiner, build_refiner
from posefix_bench.structures.io import atomic_write_with, to_jsonable

__all__ = ["CHECKPOINT_FORMAT", "META_DEFAULTS", "unwrap_model", "refiner_checkpoint", "save_refiner", "load_refiner",
           "load_refiner_and_gate", "save_gate"]

CHECKPOINT_FORMAT = "posefix-bench/refiner/v1"
META_DEFAULTS = {"trained": False, "iterations": None, "seed": None, "dataset": None, "mix": None}


def unwrap_model(model: nn.Module) -> Refiner:
    """The :class:`Refiner` inside a DistributedDataParallel / torch.compile wrapper (or the model itself)."""
    while not isinstance(model, Refiner):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            raise PosefixError(f"not a posefix-bench refiner: {type(model).__name__}")
        model = inner
    return model


def refiner_checkpoint(model: nn.Module, meta: Mapping[str, Any] | None = None) -> dict:
    """The checkpoint dict of a model (for callers that add their own keys before saving)."""
    refiner = unwrap_model(model)
    if is_folded(refiner):
        raise PosefixError("cannot save a BatchNorm-folded refiner (inference only): save the model it was folded from")
    full = {**META_DEFAULTS, **dict(meta or {})}
    if not isinstance(full["trained"], bool):
        raise PosefixError(f"refiner checkpoint meta: 'trained' must be true or false, got {full['trained']!r}")
    return {
        "format": CHECKPOINT_FORMAT,
        "config": refiner.config.to_dict(),
        "state_dict": {k: v.detach().to("cpu") for k, v in refiner.state_dict().items()},
        "meta": to_jsonable(full),
    }


def save_refiner(path: str | os.PathLike, model: nn.Module, meta: Mapping[str, Any] | None = None) -> Path:
    """Write a refiner checkpoint atomically (temporary file + rename).

    Args:
        path: target file (``.pth``).
        model: a :class:`Refiner` (or a DDP / compiled wrapper of one).
        meta: provenance; ``trained`` (default False: outputs will be marked untrained), ``iterations``,
            ``seed``, ``dataset``, ``mix`` and any other JSON-serialisable fields.
    """
    payload = refiner_checkpoint(model, meta)
    return atomic_write_with(path, lambda tmp: torch.save(payload, tmp))


def _read(p: Path, map_location) -> Any:
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        pass  # a training checkpoint with non-tensor state (e.g. numpy RNG states): a trusted local file
    except Exception as e:  # truncated / not a torch file
        raise file_error(p, f"cannot be read as a torch checkpoint ({type(e).__name__})") from None
    try:
        return torch.load(p, map_location=map_location, weights_only=False)
    except Exception as e:
        raise file_error(p, f"cannot be read as a torch checkpoint ({type(e).__name__})") from None


def _check_format(p: Path, ckpt: Any) -> None:
    if not isinstance(ckpt, dict):
        raise file_error(p, f"not a posefix-bench refiner checkpoint (a {type(ckpt).__name__}, not a dict)")
    fmt = ckpt.get("format")
    if fmt is None:
        hint = " (it looks like an mmengine/mmpose checkpoint)" if "state_dict" in ckpt else ""
        raise file_error(p, f"not a posefix-bench refiner checkpoint{hint}: no 'format' field")
    if fmt != CHECKPOINT_FORMAT:
        raise file_error(p, f"unsupported checkpoint format {fmt!r} (this version reads {CHECKPOINT_FORMAT!r})")
    for key in ("config", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise file_error(p, f"refiner checkpoint has no '{key}' dict")


def _check_weights(p: Path, config: RefinerConfig, own: Mapping[str, torch.Tensor], sd: Mapping) -> None:
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [k for k in own if k in sd and tuple(getattr(sd[k], "shape", ())) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {what} (e.g. {v[0]})" for what, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)) if v]
        raise file_error(
            p, f"weights do not match its config ({config.backbone}, head {config.head}): {', '.join(parts)}"
        )


def load_refiner(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    expect: Mapping[str, Any] | None = None,
) -> tuple[Refiner, dict]:
    """Rebuild a refiner from its checkpoint.

    Args:
        path: a file written by :func:`save_refiner` (or a training checkpoint with extra keys).
        map_location: device for the weights and the model.
        expect: optional config values the caller requires, e.g. ``{"head": "prior"}``.

    Returns:
        (model in eval mode, meta dict with every :data:`META_DEFAULTS` key).

    Raises:
        PosefixError: missing file; not a refiner checkpoint (e.g. an mmpose one); unknown backbone / head name;
        weights that do not match the config; a config that differs from ``expect``.
    """
    model, meta, _ = load_refiner_and_gate(path, map_location, expect)
    return model, meta


def load_refiner_and_gate(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    expect: Mapping[str, Any] | None = None,
) -> tuple[Refiner, dict, dict | None]:
    """:func:`load_refiner` plus the checkpoint's gate record (None when it has none)."""
    p = Path(path)
    if not p.is_file():
        raise file_error(p, "is a directory, not a refiner checkpoint" if p.is_dir() else "refiner checkpoint not found")
    ckpt = _read(p, map_location)
    _check_format(p, ckpt)
    try:
        config = RefinerConfig.from_dict(ckpt["config"], source="config")
        model = build_refiner(dataclasses.replace(config, pretrained=None), seed=0)
    except PosefixError as e:
        raise file_error(p, str(e)) from None
    model.config = config
    for key, value in dict(expect or {}).items():
        actual = config.to_dict().get(key, "<absent>")
        if actual != (list(value) if isinstance(value, tuple) else value):
            raise file_error(p, f"is a refiner with {key}={actual!r}, expected {value!r}")
    sd = ckpt["state_dict"]
    _check_weights(p, config, model.state_dict(), sd)
    model.load_state_dict(sd, strict=True)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    meta = {**META_DEFAULTS, **dict(ckpt.get("meta") or {})}
    gate = ckpt.get("gate")
    if gate is not None and not isinstance(gate, dict):
        raise file_error(p, f"refiner checkpoint's 'gate' is a {type(gate).__name__}, not a dict")
    return model.eval(), meta, gate


def save_gate(path: str | os.PathLike, gate: Mapping[str, Any], out: str | os.PathLike | None = None) -> Path:
    """Write a gate record into a refiner checkpoint (replacing an earlier gate), atomically.

    Args:
        path: a refiner checkpoint (final or training checkpoint; every other key is kept as it is).
        gate: the gate record (plain JSON values).
        out: where to write the result; default: ``path`` itself.
    """
    p = Path(path)
    if not p.is_file():
        raise file_error(p, "refiner checkpoint not found")
    ckpt = _read(p, "cpu")
    _check_format(p, ckpt)
    if not isinstance(gate, Mapping):
        raise PosefixError(f"gate for {p}: expected a dict, got {type(gate).__name__}")
    ckpt["gate"] = to_jsonable(dict(gate))
    return atomic_write_with(Path(out) if out is not None else p, lambda tmp: torch.save(ckpt, tmp))
