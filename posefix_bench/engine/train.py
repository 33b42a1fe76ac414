"""Refiner training: the published PoseFix schedule in a loop that resumes exactly and scales out with torchrun.

Recipe (PoseFix, Moon et al., CVPR 2019, Sec. 5.1): Adam, learning rate 5e-4 divided by 10 at epochs 90 and 120 of 140,
batch 32, inputs synthesised from the ground truth (:mod:`posefix_bench.engine.data`). The loop is this module's own
(not mmengine's Runner) because it must resume *bitwise*: every sample is a pure function of (seed, epoch, index), the
batch of iteration ``it`` a pure function of (seed, it) (:class:`~posefix_bench.engine.data.IterationSampler`), the
learning rate a pure function of ``it`` (:func:`lr_at`), and a checkpoint holds the model, the Adam state, the AMP
scaler, the iteration and the RNG states. Killing the process (even SIGKILL, mid-epoch) and resuming from the last
checkpoint therefore gives the same weights as an uninterrupted run with the same seed (on CPU, with the same thread
count; tested in ``tests/engine/test_train_resume.py``).

Configs are mmengine ``Config`` files with ``_base_`` inheritance (``ablations/_base_/refiner.py`` is the published
schedule). Three sections:

- ``model``: :class:`posefix_bench.models.RefinerConfig` fields (the keypoint count and schema come from the data).
- ``data``: ``root``, ``train_split``, ``val_split``, ``mix``, ``lower_body=dict(p, factor, cutout)``,
  ``scale_factor``, ``rotation_factor``, ``rotation_prob``, ``flip``, ``padding``, ``min_keypoints``, ``max_samples``,
  ``cache_images``, ``holdout`` and ``holdout_seed`` (training images left out for gate calibration,
  :func:`~posefix_bench.engine.data.holdout_image_ids`) (see :class:`DataSettings`).
- ``train``: ``epochs``, ``max_iters``, ``batch_size`` (global), ``lr``, ``milestones`` (epochs), ``gamma``,
  ``weight_decay``, ``amp``, ``seed``, ``device``, ``threads``, ``num_workers``, ``checkpoint_interval``,
  ``max_keep_ckpts``, ``log_interval`` (see :class:`TrainSettings`).

Work dir layout: ``config.py`` (the resolved config), ``checkpoints/iter_<n>.pth`` and ``checkpoints/latest.pth``
(training checkpoints: the model checkpoint format of :func:`posefix_bench.models.save_refiner` plus optimizer,
scaler, iteration, epoch, RNG states, the precision record and the training config (``train_config``), so
:func:`~posefix_bench.models.load_refiner` reads them directly), ``final.pth`` (the trained model, what the bench and
``refine`` consume; its meta names the ``precision``), ``train_summary.json`` (the summary record of :func:`train`),
``train_log.jsonl`` (one line per log interval: iteration, epoch, lr, mean losses, samples/s) and ``tensorboard/``
(the same scalars). Under torchrun only rank 0 writes.

Precision (``train.amp``): ``'auto'`` (default) probes this device once (:mod:`posefix_bench.engine.precision`: fp32
against bf16, and fp16 on CUDA, on this network) and trains in the fastest precision the device runs natively; a
resumed run keeps the precision it started with. ``'fp32'`` / ``'bf16'`` / ``'fp16'`` (CUDA, with loss scaling) are
used as set; ``True`` means ``'auto'``, ``False`` ``'fp32'``.

Fault injection for the resume test: with ``POSEFIX_TRAIN_KILL_AFTER=N`` in the environment, the process sends itself
SIGKILL right after the first checkpoint at an iteration >= N is on disk.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


from posefix_bench.engine.data import (
    AugmentConfig,
    IterationSampler,
    RefinerTrainSet,
    collate_samples,
    holdout_image_ids,
)
from posefix_bench.engine.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    init_distributed,
    local_cpu_share,
    shutdown_distributed,
)
from posefix_bench.engine.workdir import find_resume_checkpoint, lock_work_dir
from posefix_bench.engine.precision import amp_to_precision, dtype_of, resolve_precision
from posefix_bench.errors import PosefixError, file_error
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import CocoDataset, coco_split_paths
from posefix_bench.structures.io import atomic_write_json, atomic_write_text, atomic_write_with

__all__ = [
    "DataSettings",
    "TrainSettings",
    "load_config",
    "parse_config",
    "lr_at",
    "milestone_iterations",
    "Trainer",
    "train",
    "resolve_train_precision",
    "KILL_ENV",
    "data_root",
]

KILL_ENV = "POSEFIX_TRAIN_KILL_AFTER"
LOSS_KEYS = ("loss", "loss_heatmap", "loss_coord")


# -- configuration -------------------------------------------------------------------------------------------------
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
_RESUME_FREE = {"train.device", "train.threads", "train.num_workers", "train.checkpoint_interval",
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


# -- the trainer ---------------------------------------------------------------------------------------------------
class Trainer:
    """One training process (all of the job when not launched by torchrun).

    Built from a config, it validates everything (data, model, resume checkpoint) before it writes anything.
    :meth:`run` trains to the end and returns the summary record; :meth:`batch` and :meth:`forward_backward` are
    the pieces the loop uses (the distributed-gradient test calls them directly).
    """

    def __init__(self, cfg, work_dir: str | os.PathLike, dist_info: DistInfo | None = None):
        import torch

        from posefix_bench.models import build_refiner
        from posefix_bench.synthesis.lowerbody import LowerBodyAug
        from posefix_bench.synthesis.mixes import get_mix

        self.cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
        self.model_cfg, self.data_cfg, self.tr = parse_config(self.cfg)
        self.work_dir = Path(work_dir)
        self.dist = dist_info or DistInfo()
        self.device = self._pick_device(torch)
        torch.set_num_threads(int(self.tr.threads or local_cpu_share(self.dist)))

        self.dataset = self._open_dataset()
        self.holdout = holdout_image_ids(self.dataset.image_ids, self.data_cfg.holdout, self.data_cfg.holdout_seed)
        self.mix = get_mix(self.data_cfg.mix, self.dataset.schema)
        lower_body = _lower_body(self.data_cfg.lower_body, LowerBodyAug)
        self.trainset = RefinerTrainSet(
            self.dataset, self._input_size(), self.mix, seed=self.tr.seed, augment=self.data_cfg.augment(),
            lower_body=lower_body if lower_body.p > 0 else None,
            min_keypoints=self.data_cfg.min_keypoints, max_samples=self.data_cfg.max_samples,
            cache_images=self.data_cfg.cache_images, exclude_images=frozenset(self.holdout),
        )
        probe = IterationSampler(len(self.trainset), self.tr.batch_size, self.tr.seed, 0, 0,
                                 self.dist.rank, self.dist.world_size)
        self.iters_per_epoch = probe.iters_per_epoch
        self.max_iters = int(self.tr.max_iters or self.tr.epochs * self.iters_per_epoch)
        self.milestones = milestone_iterations(self.tr, self.iters_per_epoch)

        torch.manual_seed(self.tr.seed)
        self.refiner_cfg = dict(self.model_cfg, num_keypoints=self.dataset.schema.num_keypoints,
                                schema=self.dataset.schema.name)
        self.model = build_refiner(self.refiner_cfg, seed=self.tr.seed).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.tr.lr, weight_decay=self.tr.weight_decay)
        self.precision = self._resolve_precision()
        self.amp_dtype = None if self.precision["precision"] == "fp32" else dtype_of(self.precision["precision"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.ddp_model = self._wrap_ddp(torch)
        self.iteration = 0
        self.log_lines: list[dict] = []

    # -- setup helpers -----------------------------------------------------------------------------------------
    def _pick_device(self, torch):
        want = self.tr.device
        if want is None:
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if str(want).startswith("cuda"):
            if not torch.cuda.is_available():
                raise PosefixError(f"config: train.device={want!r} but CUDA is not available")
            return torch.device("cuda", self.dist.local_rank) if self.dist.distributed else torch.device(want)
        if want != "cpu":
            raise PosefixError(f"config: train.device must be 'cpu', 'cuda' or None, got {want!r}")
        return torch.device("cpu")

    def _resolve_precision(self) -> dict:
        """The precision record: an explicit ``train.amp`` as set; ``'auto'`` the precision of the run's latest
        checkpoint (a resumed run keeps its precision) or else the probe's choice, rank 0's for every process."""
        import torch

        requested = amp_to_precision(self.tr.amp, self.device)
        latest = find_resume_checkpoint(self.checkpoint_dir).path if requested == "auto" else None
        if latest is not None:
            saved = torch.load(latest, map_location="cpu", weights_only=True).get("precision")
            if isinstance(saved, dict) and saved.get("precision") in ("fp32", "bf16", "fp16"):
                return dict(saved, kept_from=str(latest))
        record = None
        if requested != "auto" or self.dist.is_main:
            record = resolve_precision(requested, self.device, "train", self.refiner_cfg,
                                       batch=self.tr.batch_size // self.dist.world_size, what="config: train.amp")
        if requested == "auto" and self.dist.distributed:
            box = [record]
            torch.distributed.broadcast_object_list(box, src=0)
            record = box[0]
        return record

    def _open_dataset(self) -> CocoDataset:
        root = data_root(self.data_cfg)
        if not root.is_dir():
            raise file_error(root, "data root not found (data.root)")
        ann, images = coco_split_paths(root, self.data_cfg.train_split)
        if not ann.is_file():
            raise file_error(ann, f"annotation file of split {self.data_cfg.train_split!r} not found")
        if not images.is_dir():
            raise file_error(images, f"image folder of split {self.data_cfg.train_split!r} not found")
        return CocoDataset(ann, images)

    def _input_size(self) -> tuple[int, int]:
        size = self.model_cfg.get("input_size")
        if not isinstance(size, (list, tuple)) or len(size) != 2 or min(int(s) for s in size) < 8:
            raise PosefixError(f"config: model.input_size must be (W, H) in pixels, got {size!r}")
        return int(size[0]), int(size[1])

    def _wrap_ddp(self, torch):
        if not self.dist.distributed:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)

    # -- one step ----------------------------------------------------------------------------------------------
    def batch(self, iteration: int) -> dict:
        """This process's batch of one iteration (built in this process, no data-loader workers)."""
        sampler = IterationSampler(len(self.trainset), self.tr.batch_size, self.tr.seed, iteration, iteration + 1,
                                   self.dist.rank, self.dist.world_size)
        return collate_samples([self.trainset[key] for key in sampler.batch(iteration)])

    def forward_backward(self, batch: dict) -> dict:
        """Loss of one batch and its gradients (accumulated into ``.grad``; DDP averages them over processes)."""
        import torch

        dev = self.device
        nb = dev.type == "cuda"
        images = self.model.preprocess(batch["image"].to(dev, non_blocking=nb))
        pose = batch["pose"].to(dev, non_blocking=nb)
        pose_valid = batch["pose_valid"].to(dev, non_blocking=nb)
        target = batch["target"].to(dev, non_blocking=nb)
        target_valid = batch["target_valid"].to(dev, non_blocking=nb)
        with torch.autocast(dev.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            out = self.ddp_model(images, pose, pose_valid)
        losses = self.model.loss(out, target, target_valid)
        self.scaler.scale(losses["loss"]).backward()
        return {k: float(losses[k].detach()) for k in LOSS_KEYS}

    def train_step(self, batch: dict, iteration: int) -> dict:
        lr = lr_at(iteration, self.tr.lr, self.milestones, self.tr.gamma)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.forward_backward(batch)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return dict(losses, lr=lr)

    # -- checkpoints -------------------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.work_dir / "checkpoints"

    def meta(self, trained: bool = True) -> dict:
        return {
            "trained": bool(trained and self.iteration > 0),
            "iterations": int(self.iteration),
            "seed": int(self.tr.seed),
            "dataset": str(self.dataset.path),
            "mix": getattr(self.mix, "name", str(self.data_cfg.mix)),
            "run": self.work_dir.name,
            "batch_size": int(self.tr.batch_size),
            "world_size": int(self.dist.world_size),
            "precision": self.precision["precision"],
            "holdout": {"images": len(self.holdout), "seed": int(self.data_cfg.holdout_seed)},
        }

    def training_state(self) -> dict:
        import torch

        state = {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": int(self.iteration),
            "epoch": int(self.iteration // self.iters_per_epoch),
            "train_config": self.cfg,
            "precision": self.precision,
            "rng": {"torch": torch.get_rng_state()},  # the data use explicit generators, never a global one
        }
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def save_checkpoint(self) -> Path:
        """``checkpoints/iter_<n>.pth`` (model checkpoint + training state) and ``latest.pth``, both atomic."""
        import torch

        from posefix_bench.models import refiner_checkpoint

        path = self.checkpoint_dir / f"iter_{self.iteration}.pth"
        payload = dict(refiner_checkpoint(self.model, self.meta()), **self.training_state())
        atomic_write_with(path, lambda tmp: torch.save(payload, tmp))
        _link_atomically(path, self.checkpoint_dir / "latest.pth")
        kept = sorted(self.checkpoint_dir.glob("iter_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
        for old in kept[: -self.tr.max_keep_ckpts]:
            old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self, path: Path) -> None:
        """Restore model, optimizer, scaler, iteration and RNG states from a training checkpoint."""
        import torch

        from posefix_bench.models import load_refiner

        model, _ = load_refiner(path, map_location="cpu")  # format and architecture checks, one-line errors
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("optimizer", "iteration", "train_config"):
            if key not in ckpt:
                raise file_error(path, f"not a training checkpoint (no {key!r}; a final model cannot be resumed)")
        _check_same_run(self.cfg, ckpt["train_config"], path)
        self.model.load_state_dict(model.state_dict())
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.iteration = int(ckpt["iteration"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "cuda" in ckpt["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])

    def save_final(self, summary: dict) -> Path:
        from posefix_bench.models import save_refiner

        meta = dict(self.meta(), final_loss=summary.get("final_loss"), train_config=self.cfg,
                    precision_record=self.precision)
        path = self.work_dir / "final.pth"
        save_refiner(path, self.model, meta)
        return path

    # -- the loop ----------------------------------------------------------------------------------------------
    def resume(self) -> bool:
        """Load ``latest.pth``, or the newest intact ``iter_*.pth`` when it is damaged (:mod:`.workdir`; the skipped
        files are in the summary's ``resume_warnings``); False (start from scratch) when there is no checkpoint."""
        point = find_resume_checkpoint(self.checkpoint_dir)
        self.resume_warnings = point.warnings()
        if point.path is not None:
            self.load_checkpoint(point.path)
        return point.path is not None

    def _loader(self):
        from torch.utils.data import DataLoader

        sampler = IterationSampler(len(self.trainset), self.tr.batch_size, self.tr.seed, self.iteration,
                                   self.max_iters, self.dist.rank, self.dist.world_size)
        return DataLoader(self.trainset, batch_sampler=sampler, collate_fn=collate_samples,
                          num_workers=self.tr.num_workers, pin_memory=self.device.type == "cuda",
                          worker_init_fn=_worker_init if self.tr.num_workers else None)

    def run(self, resume: bool = False, progress: Progress = no_progress) -> dict:
        """Train from scratch (or from ``latest.pth`` with ``resume``) to ``max_iters``; the summary record."""
        if not resume and (self.checkpoint_dir / "latest.pth").exists():
            raise file_error(self.work_dir, "already holds a training run (resume it with --resume, or choose "
                                            "another --work-dir)")
        resumed_from = self.iteration if resume and self.resume() else None
        logger = _RunLogger(self, purge=resumed_from or 0) if self.dist.is_main else None
        start, t0 = self.iteration, time.perf_counter()
        window = _Window(time.perf_counter())
        kill_after = _kill_after()
        for batch in progress(self._loader(), total=self.max_iters - start, desc="train"):
            losses = self.train_step(batch, self.iteration)
            self.iteration += 1
            window.add(losses)
            if self.iteration % self.tr.log_interval == 0 or self.iteration == self.max_iters:
                record = window.flush(self, time.perf_counter())
                if logger:
                    logger.write(record)
            if self.iteration % self.tr.checkpoint_interval == 0 or self.iteration == self.max_iters:
                if self.dist.is_main:
                    self.save_checkpoint()
                barrier(self.dist)
                if kill_after is not None and self.iteration >= kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)
        seconds = time.perf_counter() - t0
        done = self.iteration - start
        summary = {
            "final_loss": self.log_lines[-1]["loss"] if self.log_lines else None,
            "iterations": int(self.iteration),
            "trained_iterations": int(done),
            "resumed_from": resumed_from,
            "seconds": seconds,
            "samples_per_s": done * self.tr.batch_size / seconds if seconds > 0 and done else None,
            "world_size": self.dist.world_size,
            "work_dir": str(self.work_dir),
            "checkpoint": str(self.work_dir / "final.pth"),
            "resume_warnings": getattr(self, "resume_warnings", []),
            "precision": self.precision["precision"],
            "precision_record": self.precision,
        }
        if self.dist.is_main:
            self.save_final(summary)
            atomic_write_json(self.work_dir / "train_summary.json", summary)
            logger.close()
        barrier(self.dist)
        return summary


# -- logging -------------------------------------------------------------------------------------------------------
class _Window:
    """Loss sums since the last log line."""

    def __init__(self, t: float):
        self.t, self.n, self.sums = t, 0, dict.fromkeys(LOSS_KEYS, 0.0)
        self.lr = 0.0

    def add(self, losses: dict) -> None:
        self.n += 1
        self.lr = losses["lr"]
        for k in LOSS_KEYS:
            self.sums[k] += losses[k]

    def flush(self, trainer: Trainer, now: float) -> dict:
        means = all_reduce_mean([self.sums[k] / max(self.n, 1) for k in LOSS_KEYS], trainer.dist).tolist()
        dt = max(now - self.t, 1e-9)
        record = {
            "iter": trainer.iteration,
            "epoch": trainer.iteration / trainer.iters_per_epoch,
            "lr": self.lr,
            **dict(zip(LOSS_KEYS, means)),
            "samples_per_s": self.n * trainer.tr.batch_size / dt,
            "seconds": dt,
        }
        trainer.log_lines.append(record)
        self.__init__(now)
        return record


class _RunLogger:
    """``train_log.jsonl`` and TensorBoard scalars (rank 0). On resume the log is cut back to the checkpoint."""

    def __init__(self, trainer: Trainer, purge: int):
        from torch.utils.tensorboard import SummaryWriter

        wd = trainer.work_dir
        wd.mkdir(parents=True, exist_ok=True)
        self.path = wd / "train_log.jsonl"
        kept = []
        if purge and self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["iter"] <= purge]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        trainer.log_lines = [json.loads(line) for line in kept]  # a resumed run reports its last logged loss
        import mmengine

        atomic_write_text(wd / "config.py", mmengine.Config(trainer.cfg).pretty_text)
        self.tb = SummaryWriter(str(wd / "tensorboard"), purge_step=purge or None)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        for key in (*LOSS_KEYS, "lr", "samples_per_s"):
            self.tb.add_scalar(f"train/{key}", record[key], record["iter"])

    def close(self) -> None:
        self.tb.close()


# -- helpers -------------------------------------------------------------------------------------------------------
def _worker_init(_worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)


def _lower_body(settings, kind):
    """``data.lower_body`` (a dict of ``LowerBodyAug`` fields) as a ``LowerBodyAug``; unknown keys are one-line errors."""
    known = {f.name for f in dataclasses.fields(kind)}
    raw = dict(settings or {})
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PosefixError(f"config: unknown key data.lower_body.{unknown[0]} (known: {', '.join(sorted(known))})")
    return kind(**raw)


def _kill_after() -> int | None:
    value = os.environ.get(KILL_ENV)
    return int(value) if value else None


def _link_atomically(src: Path, dst: Path) -> None:
    """``dst`` becomes the same file as ``src`` (a hard link, a copy where links fail), replaced atomically."""
    import shutil

    def write(tmp: str) -> None:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)

    atomic_write_with(dst, write)


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def _check_same_run(cfg: Mapping, saved: Mapping, path: Path) -> None:
    """A resumed run must have the settings that shape its result (model, data, schedule, seed)."""
    now, then = _flatten({k: cfg.get(k, {}) for k in ("model", "data", "train")}), _flatten(
        {k: saved.get(k, {}) for k in ("model", "data", "train")})
    for key in sorted(set(now) | set(then)):
        if key not in _RESUME_FREE and now.get(key) != then.get(key):
            raise file_error(path, f"was written by a different config ({key}: {then.get(key)!r} in the checkpoint, "
                                   f"{now.get(key)!r} now); resume with the same config or use another --work-dir")


def train(cfg, work_dir: str | os.PathLike, resume: bool = False, progress: Progress = no_progress) -> dict:
    """Train a refiner as the config says (one process, or one of torchrun's); returns the summary record.

    The record: ``final_loss`` (mean loss of the last log interval), ``iterations``, ``trained_iterations`` (in this
    call), ``resumed_from``, ``seconds``, ``samples_per_s`` (global batch x iterations / seconds, data loading
    included), ``world_size``, ``work_dir``, ``checkpoint`` (``final.pth``), ``precision`` (the precision trained in)
    and ``precision_record`` (:mod:`posefix_bench.engine.precision`: the probe's timings and sentence). Rank 0 also
    writes it to ``<work_dir>/train_summary.json``.
    """
    _, _, tr = parse_config(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg)
    import torch.distributed as dist

    owns_group = not dist.is_initialized()
    info = init_distributed(tr.device)
    try:
        with lock_work_dir(work_dir, enabled=info.is_main):  # one training per work dir (engine/workdir.py)
            return Trainer(cfg, work_dir, info).run(resume=resume, progress=progress if info.is_main else no_progress)
    finally:
        if owns_group:
            shutdown_distributed(info)


def resolve_train_precision(cfg, schema=None, cache_dir=None) -> dict:
    """The precision record a training of ``cfg`` would use, without building the trainer (for callers that key
    their work by it, e.g. the bench: put ``record["precision"]`` into ``train.amp`` and the key).

    ``train.amp='auto'`` probes this config's network (with ``schema``'s keypoints, a
    :class:`~posefix_bench.structures.schema.KeypointSchema`, as the trainer takes them from its data) on its device
    and thread count (``cache_dir``: keep the record on disk so every process agrees,
    :func:`posefix_bench.engine.precision.probe`); an explicit value is returned as set.
    """
    import torch

    model, _, tr = parse_config(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg)
    device = tr.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if schema is not None:
        model = dict(model, num_keypoints=schema.num_keypoints, schema=schema.name)
    return resolve_precision(amp_to_precision(tr.amp, device), device, "train", model, batch=tr.batch_size,
                             threads=tr.threads, cache_dir=cache_dir, what="config: train.amp")
