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

The loop's side jobs are hooks (:mod:`posefix_bench.engine.hooks`: the run log, then checkpoints); callers add their
own with ``train(..., hooks=[...])`` (the resume test adds one that kills the process after a checkpoint). The
settings, config reading and checks, the schedule and the resume rule live in :mod:`posefix_bench.engine.train_config`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

from posefix_bench.engine.data import IterationSampler, RefinerTrainSet, collate_samples, holdout_image_ids
from posefix_bench.engine.distributed import (
    DistInfo,
    barrier,
    init_distributed,
    local_cpu_share,
    shutdown_distributed,
)
from posefix_bench.engine.hooks import LOSS_KEYS, HookBase, default_hooks
from posefix_bench.engine.precision import amp_to_precision, dtype_of, precision_override, resolve_precision
from posefix_bench.engine.train_config import (
    DataSettings,
    TrainSettings,
    check_same_run,
    data_root,
    load_config,
    lower_body_settings,
    lr_at,
    milestone_iterations,
    parse_config,
)
from posefix_bench.engine.workdir import check_work_dir, find_resume_checkpoint, lock_work_dir
from posefix_bench.errors import PosefixError, file_error
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import CocoDataset, coco_split_paths
from posefix_bench.structures.io import atomic_write_json

__all__ = [
    "DataSettings",  # the settings and config functions live in engine/train_config.py; re-exported for callers
    "TrainSettings",
    "load_config",
    "parse_config",
    "lr_at",
    "milestone_iterations",
    "data_root",
    "HookBase",
    "Trainer",
    "train",
    "build_trainset",
    "resolve_train_precision",
]


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

        self.cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
        self.model_cfg, self.data_cfg, self.tr = parse_config(self.cfg)
        self.work_dir = Path(work_dir)
        self.dist = dist_info or DistInfo()
        self.device = self._pick_device(torch)
        torch.set_num_threads(int(self.tr.threads or local_cpu_share(self.dist)))

        self.dataset, self.holdout, self.trainset = build_trainset(self.model_cfg, self.data_cfg, self.tr)
        self.mix = self.trainset.mix
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
        self.log_lines: list[dict] = []  # the log records (LogHook); the summary's final_loss is the last one's
        self.resumed_from: int | None = None
        self.step_losses: dict = {}
        self.hooks: list[HookBase] = default_hooks()

    def register_hooks(self, hooks: Iterable[HookBase]) -> None:
        """Append hooks; they run after the ones already there (the defaults: log, checkpoints)."""
        self.hooks.extend(hooks)

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
        checkpoint (a resumed run keeps its precision) or else ``$POSEFIX_PRECISION`` or the probe's choice: rank 0
        decides and broadcasts its record, so every process of a torchrun job trains in the same precision."""
        import torch

        requested = amp_to_precision(self.tr.amp, self.device)
        keep = requested == "auto" and precision_override(self.device) is None  # $POSEFIX_PRECISION: as explicit
        latest = find_resume_checkpoint(self.checkpoint_dir).path if keep else None
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

    def load_checkpoint(self, path: Path) -> None:
        """Restore model, optimizer, scaler, iteration and RNG states from a training checkpoint."""
        import torch

        from posefix_bench.models import load_refiner

        model, _ = load_refiner(path, map_location="cpu")  # format and architecture checks, one-line errors
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("optimizer", "iteration", "train_config"):
            if key not in ckpt:
                raise file_error(path, f"not a training checkpoint (no {key!r}; a final model cannot be resumed)")
        check_same_run(self.cfg, ckpt["train_config"], path)
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
        check_work_dir(self.work_dir, resume)
        self.resumed_from = self.iteration if resume and self.resume() else None
        for hook in self.hooks:
            hook.before_train(self)
        start, t0 = self.iteration, time.perf_counter()
        for batch in progress(self._loader(), total=self.max_iters - start, desc="train"):
            self.step_losses = self.train_step(batch, self.iteration)
            self.iteration += 1
            for hook in self.hooks:
                hook.after_step(self)
        seconds = time.perf_counter() - t0
        done = self.iteration - start
        summary = {
            "final_loss": self.log_lines[-1]["loss"] if self.log_lines else None,
            "iterations": int(self.iteration),
            "trained_iterations": int(done),
            "resumed_from": self.resumed_from,
            "seconds": seconds,
            "samples_per_s": done * self.tr.batch_size / seconds if seconds > 0 and done else None,
            "world_size": self.dist.world_size,
            "work_dir": str(self.work_dir),
            "checkpoint": str(self.work_dir / "final.pth"),
            "resume_warnings": getattr(self, "resume_warnings", []),
            "precision": self.precision["precision"],
            "precision_record": self.precision,
        }
        self.summary = summary
        if self.dist.is_main:
            self.save_final(summary)
            atomic_write_json(self.work_dir / "train_summary.json", summary)
        for hook in self.hooks:
            hook.after_train(self)
        barrier(self.dist)
        return summary


# -- helpers -------------------------------------------------------------------------------------------------------
def _open_dataset(data_cfg) -> CocoDataset:
    root = data_root(data_cfg)
    if not root.is_dir():
        raise file_error(root, "data root not found (data.root)")
    ann, images = coco_split_paths(root, data_cfg.train_split)
    if not ann.is_file():
        raise file_error(ann, f"annotation file of split {data_cfg.train_split!r} not found")
    if not images.is_dir():
        raise file_error(images, f"image folder of split {data_cfg.train_split!r} not found")
    return CocoDataset(ann, images)


def _input_size(model_cfg) -> tuple[int, int]:
    size = model_cfg.get("input_size")
    if not isinstance(size, (list, tuple)) or len(size) != 2 or min(int(s) for s in size) < 8:
        raise PosefixError(f"config: model.input_size must be (W, H) in pixels, got {size!r}")
    return int(size[0]), int(size[1])


def build_trainset(model_cfg, data_cfg, tr) -> tuple[CocoDataset, list, RefinerTrainSet]:
    """(training split, its calibration hold-out image ids, the training samples) of a parsed config
    (:func:`~posefix_bench.engine.train_config.parse_config`): the refiner's inputs, which the image-free pose
    prior (:mod:`posefix_bench.methods.pose_prior`) trains on too."""
    from posefix_bench.synthesis.lowerbody import LowerBodyAug
    from posefix_bench.synthesis.mixes import get_mix

    dataset = _open_dataset(data_cfg)
    holdout = holdout_image_ids(dataset.image_ids, data_cfg.holdout, data_cfg.holdout_seed)
    lower_body = lower_body_settings(data_cfg.lower_body, LowerBodyAug)
    trainset = RefinerTrainSet(
        dataset, _input_size(model_cfg), get_mix(data_cfg.mix, dataset.schema), seed=tr.seed,
        augment=data_cfg.augment(), lower_body=lower_body if lower_body.p > 0 else None,
        min_keypoints=data_cfg.min_keypoints, max_samples=data_cfg.max_samples,
        cache_images=data_cfg.cache_images, exclude_images=frozenset(holdout),
    )
    return dataset, holdout, trainset


def _worker_init(_worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)


def train(cfg, work_dir: str | os.PathLike, resume: bool = False, progress: Progress = no_progress,
          hooks: Iterable[HookBase] = ()) -> dict:
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
            trainer = Trainer(cfg, work_dir, info)
            trainer.register_hooks(hooks)
            return trainer.run(resume=resume, progress=progress if info.is_main else no_progress)
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
