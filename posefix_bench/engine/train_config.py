"""The refiner trainer's configuration: the ``data`` / ``train`` settings, reading and checking a config, the schedule.

A refiner config is an mmengine ``Config`` file with ``_base_`` inheritance (``ablations/_base_/refiner.py`` holds the
published schedule) and three sections: ``model`` (:class:`posefix_bench.models.RefinerConfig` fields), ``data``
(:class:`DataSettings`) and ``train`` (:class:`TrainSettings`); :mod:`posefix_bench.engine.train` documents them and
runs the loop. Here: :func:`load_config` (a file plus ``--cfg-options`` overrides), :func:`parse_config` (the checked
settings; every problem a one-line :class:`~posefix_bench.errors.PosefixError`), the learning-rate schedule
(:func:`milestone_iterations`, :func:`lr_at`), the data root a ``data`` section names (:func:`data_root`) and the
rule for resuming (:func:`check_same_run`: a resumed run must have the settings that shape its result).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from posefix_bench.engine.data import AugmentConfig
from posefix_bench.errors import PosefixError, file_error

__all__ = [
    "DataSettings",
    "TrainSettings",
    "RESUME_FREE",
    "load_config",
    "parse_config",
    "lr_at",
    "milestone_iterations",
    "data_root",
    "lower_body_settings",
    "check_same_run",
]


# -- the settings --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSettings:
    """The ``data`` section of a refiner config."""

    root: str | None = None
    sandbox: Mapping | None = None  # SandboxParams fields: generate (or reuse) the sandbox when root is None
    train_split: str = "train2017"
    val_split: str = "val2017"
    mix: Any = "paper"
    lower_body: Mapping = dataclasses.field(default_factory=lambda: {"p": 0.0})
    scale_factor: float = 0.3
    rotation_factor: float = 40.0
    rotation_prob: float = 0.6
    flip: bool = True
    padding: float = 1.25
    min_keypoints: int = 1
    max_samples: int | None = None
    cache_images: bool = False
    holdout: float = 0.0  # training images kept out of training for gate calibration: fraction in [0, 1) or count
    holdout_seed: int = 0

    def augment(self) -> AugmentConfig:
        return AugmentConfig(self.scale_factor, self.rotation_factor, self.rotation_prob, self.flip, self.padding)


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` section of a refiner config (``batch_size`` is the global batch over all processes)."""

    epochs: int = 140
    max_iters: int | None = None
    batch_size: int = 32
    lr: float = 5e-4
    milestones: tuple = (90, 120)
    gamma: float = 0.1
    weight_decay: float = 0.0
    amp: bool | str = "auto"
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    num_workers: int = 2
    checkpoint_interval: int = 5000
    max_keep_ckpts: int = 2
    log_interval: int = 50


# settings that may change between a run and its resumption without changing the result
RESUME_FREE = {"train.device", "train.threads", "train.num_workers", "train.checkpoint_interval",
                "train.max_keep_ckpts", "train.log_interval", "data.cache_images", "data.root"}


def load_config(path: str | os.PathLike, options: Mapping | None = None):
    """An mmengine ``Config`` from a file, with ``--cfg-options``-style ``{"a.b": value}`` overrides merged in."""
    import logging

    from mmengine.config import Config
    from mmengine.logging import MMLogger

    p = Path(path)
    if not p.is_file():
        raise file_error(p, "config file not found")
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # mmengine logs every environment-variable substitution at INFO
    try:
        cfg = Config.fromfile(str(p))
    except PosefixError:
        raise
    except Exception as e:  # syntax errors, missing _base_ files, bad substitutions
        raise file_error(p, f"cannot be read as a config ({type(e).__name__}: {e})") from None
    finally:
        logger.setLevel(level)
    if options:
        cfg.merge_from_dict(dict(options))
    return cfg


def _section(cfg: Mapping, name: str, kind) -> Any:
    raw = dict(cfg.get(name) or {})
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PosefixError(f"config: unknown key {name}.{unknown[0]} (known: {', '.join(sorted(known))})")
    return kind(**raw)


def parse_config(cfg) -> tuple[dict, DataSettings, TrainSettings]:
    """(model dict, data settings, train settings) of a config, checked; a problem is a one-line error."""
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    for name in ("model", "data", "train"):
        if not isinstance(cfg.get(name), Mapping):
            raise PosefixError(f"config: missing section '{name}' (a dict)")
    data = _section(cfg, "data", DataSettings)
    tr = _section(cfg, "train", TrainSettings)
    tr = dataclasses.replace(tr, milestones=tuple(tr.milestones))
    checks = [
        (tr.batch_size >= 1, "train.batch_size must be >= 1"),
        (tr.max_iters is None or tr.max_iters >= 1, "train.max_iters must be >= 1 (or None)"),
        (tr.epochs >= 1, "train.epochs must be >= 1"),
        (tr.lr > 0 and math.isfinite(tr.lr), "train.lr must be positive"),
        (0 < tr.gamma <= 1, "train.gamma must be in (0, 1]"),
        (all(m >= 0 for m in tr.milestones), "train.milestones must be non-negative epochs"),
        (tr.checkpoint_interval >= 1 and tr.log_interval >= 1, "train intervals must be >= 1"),
        (tr.num_workers >= 0, "train.num_workers must be >= 0"),
        (tr.max_keep_ckpts >= 1, "train.max_keep_ckpts must be >= 1"),
        (tr.amp in (True, False, None, "auto", "fp32", "bf16", "fp16"),
         f"train.amp must be 'auto', 'fp32', 'bf16', 'fp16', true or false, got {tr.amp!r}"),
        (data.root is not None or data.sandbox is not None,
         "data.root is not set (give --cfg-options data.root=/path/to/coco)"),
        (0 <= data.scale_factor < 1, "data.scale_factor must be in [0, 1)"),
        (data.rotation_factor >= 0, "data.rotation_factor must be >= 0"),
        (data.padding > 0, "data.padding must be positive"),
        (isinstance(data.holdout, (int, float)) and data.holdout >= 0, "data.holdout must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise PosefixError(f"config: {message}")
    return dict(cfg["model"]), data, tr


def milestone_iterations(tr: TrainSettings, iters_per_epoch: int) -> list[int]:
    """Iterations at which the learning rate is multiplied by gamma.

    Milestones are epochs; with ``max_iters`` set they keep their fraction of the epoch schedule
    (90/140 and 120/140 of ``max_iters`` for the published recipe).
    """
    if tr.max_iters is None:
        return [int(m) * iters_per_epoch for m in tr.milestones]
    return [int(round(m / tr.epochs * tr.max_iters)) for m in tr.milestones]


def lr_at(iteration: int, base_lr: float, milestones: list[int], gamma: float) -> float:
    """Step schedule: ``base_lr * gamma ** (number of milestones <= iteration)``."""
    return float(base_lr * gamma ** sum(iteration >= m for m in milestones))


def data_root(data: DataSettings) -> Path:
    """The data root of a config's ``data`` section: ``root``, or the sandbox it describes (generated on first use)."""
    if data.root is not None:
        return Path(data.root)
    from posefix_bench.engine.sandbox import SandboxParams, ensure_sandbox
    from posefix_bench.structures.coco import default_cache_root

    try:
        params = SandboxParams(**dict(data.sandbox))
    except TypeError as e:
        raise PosefixError(f"config: data.sandbox: {e}") from None
    return ensure_sandbox(default_cache_root() / "sandbox", params)


def lower_body_settings(settings, kind):
    """``data.lower_body`` (a dict of ``LowerBodyAug`` fields) as a ``LowerBodyAug``; unknown keys are one-line errors."""
    known = {f.name for f in dataclasses.fields(kind)}
    raw = dict(settings or {})
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PosefixError(f"config: unknown key data.lower_body.{unknown[0]} (known: {', '.join(sorted(known))})")
    return kind(**raw)


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def check_same_run(cfg: Mapping, saved: Mapping, path: Path) -> None:
    """A resumed run must have the settings that shape its result (model, data, schedule, seed)."""
    now, then = _flatten({k: cfg.get(k, {}) for k in ("model", "data", "train")}), _flatten(
        {k: saved.get(k, {}) for k in ("model", "data", "train")})
    for key in sorted(set(now) | set(then)):
        if key not in RESUME_FREE and now.get(key) != then.get(key):
            raise file_error(path, f"was written by a different config ({key}: {then.get(key)!r} in the checkpoint, "
                                   f"{now.get(key)!r} now); resume with the same config or use another --work-dir")
