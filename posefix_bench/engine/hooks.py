"""The refiner training loop's side jobs as hooks (detectron2-style): checkpoints and the run log.

:class:`~posefix_bench.engine.train.Trainer` keeps a list of hooks and calls each, in list order:

- ``before_train(trainer)`` once, after a resume (``trainer.resumed_from``) and before the first step;
- ``after_step(trainer)`` after every optimizer step (``trainer.iteration`` already counts it, ``trainer.step_losses``
  holds its losses and learning rate);
- ``after_train(trainer)`` once, after ``final.pth`` and ``train_summary.json`` are written (``trainer.summary``).

The defaults (:func:`default_hooks`): :class:`LogHook` (``train_log.jsonl``, TensorBoard, the losses the summary
reports) then :class:`CheckpointHook` (``checkpoints/iter_<n>.pth`` and ``latest.pth``, at most
``train.max_keep_ckpts`` kept). Every process calls every hook (both hooks hold collective operations: the loss
all-reduce, the barrier after a checkpoint); only rank 0 writes. A hook must not change what a step computes (model,
optimizer, RNG states): a run is bitwise the same with any extra hooks (``train(..., hooks=[...])``, run after the
defaults; the resume test adds one that kills the process after a checkpoint).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from posefix_bench.engine.distributed import all_reduce_mean, barrier
from posefix_bench.structures.io import atomic_write_text, atomic_write_with

__all__ = ["HookBase", "LogHook", "CheckpointHook", "default_hooks", "LOSS_KEYS"]

LOSS_KEYS = ("loss", "loss_heatmap", "loss_coord")


class HookBase:
    """A training hook: override any of the three calls (each gets the trainer); the base does nothing."""

    def before_train(self, trainer) -> None:
        pass

    def after_step(self, trainer) -> None:
        pass

    def after_train(self, trainer) -> None:
        pass


def default_hooks() -> list[HookBase]:
    """A fresh set of the trainer's own hooks: the log, then checkpoints."""
    return [LogHook(), CheckpointHook()]


def _due(trainer, interval: int) -> bool:
    return trainer.iteration % interval == 0 or trainer.iteration == trainer.max_iters


# -- checkpoints ---------------------------------------------------------------------------------------------------
class CheckpointHook(HookBase):
    """Every ``train.checkpoint_interval`` iterations and at the last one: ``checkpoints/iter_<n>.pth`` (the model
    checkpoint plus :meth:`Trainer.training_state`) and ``latest.pth``, both atomic, then the oldest beyond
    ``train.max_keep_ckpts`` removed (rank 0); every process waits for it (a barrier)."""

    def after_step(self, trainer) -> None:
        if _due(trainer, trainer.tr.checkpoint_interval):
            if trainer.dist.is_main:
                self.save(trainer)
            barrier(trainer.dist)

    @staticmethod
    def save(trainer) -> Path:
        import torch

        from posefix_bench.models import refiner_checkpoint

        ckpt_dir = trainer.checkpoint_dir
        path = ckpt_dir / f"iter_{trainer.iteration}.pth"
        payload = dict(refiner_checkpoint(trainer.model, trainer.meta()), **trainer.training_state())
        atomic_write_with(path, lambda tmp: torch.save(payload, tmp))
        _link_atomically(path, ckpt_dir / "latest.pth")
        kept = sorted(ckpt_dir.glob("iter_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
        for old in kept[: -trainer.tr.max_keep_ckpts]:
            old.unlink(missing_ok=True)
        return path


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


# -- the run log ---------------------------------------------------------------------------------------------------
class LogHook(HookBase):
    """Every ``train.log_interval`` iterations and at the last one: the losses averaged over the interval and over
    processes, appended to ``trainer.log_lines`` (the summary's ``final_loss``) and, on rank 0, to
    ``train_log.jsonl`` and TensorBoard (:class:`_RunLogger`)."""

    def before_train(self, trainer) -> None:
        self.writer = _RunLogger(trainer, purge=trainer.resumed_from or 0) if trainer.dist.is_main else None
        self.window = _Window(time.perf_counter())

    def after_step(self, trainer) -> None:
        self.window.add(trainer.step_losses)
        if _due(trainer, trainer.tr.log_interval):
            record = self.window.flush(trainer, time.perf_counter())
            if self.writer:
                self.writer.write(record)

    def after_train(self, trainer) -> None:
        if self.writer:
            self.writer.close()


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

    def flush(self, trainer, now: float) -> dict:
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
    """``config.py``, ``train_log.jsonl`` and TensorBoard scalars (rank 0). On resume the log is cut back to the
    checkpoint."""

    def __init__(self, trainer, purge: int):
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
