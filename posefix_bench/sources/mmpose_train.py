"""Train a small mmpose estimator offline with mmpose's own training, so real mmpose models are upstream sources.

No pretrained pose weights can be downloaded here, yet the suite needs estimators whose errors are those of real
networks (PoseFix, Moon et al. CVPR 2019, refines real estimators' errors; Ronchi & Perona, ICCV 2017, Sec. 3
describe what those errors are). So the sandbox cards (``estimators/sandbox/``: small inputs, shallow backbones,
a ~90 s schedule on 2 CPU cores) are trained from scratch on a COCO-format root with mmengine's ``Runner`` from the
card's own config, exactly as ``tools/train.py`` of mmpose would, with these run-time settings:

- data: ``ROOT/annotations/person_keypoints_<split>.json`` and ``ROOT/<split>/`` (split ``train``, else
  ``train2017``), one data process; no validation loop (the suite evaluates the result itself);
- seed: ``randomness=dict(seed=seed, deterministic=True)``; with one process on CPU the weights are a function of
  the seed, and the checkpoint written at the end holds only the weights and plain metadata (no timestamps), so the
  same seed gives the same bytes;
- the caller's ``overrides`` (mmengine ``cfg_options``, e.g. ``{"train_cfg.max_iters": 5}``) come last.

The process state the Runner changes (RNG states, the multiprocessing start method, OpenCV's thread count, torch's
deterministic-algorithm flag, mmengine's loggers) is restored afterwards, and its console logging is silenced;
mmengine's own log files stay under ``work_dir/runner/``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.progress import no_progress
from posefix_bench.sources.cards import EstimatorCard, discover_cards, load_card
from posefix_bench.structures.coco import CocoDataset, coco_split_paths
from posefix_bench.structures.io import atomic_write_bytes, atomic_write_json
from posefix_bench.structures.schema import COCO17

__all__ = ["CHECKPOINT_FORMAT", "resolve_card", "resolve_split", "train_mmpose_estimator", "train_mmpose_ladder"]

CHECKPOINT_FORMAT = "posefix-bench/mmpose-checkpoint/v1"
_run_counter = itertools.count()


def resolve_card(card: EstimatorCard | str | os.PathLike) -> EstimatorCard:
    """A card object, a card file path, or a card name (looked up in the estimators folder)."""
    if isinstance(card, EstimatorCard):
        return card
    if Path(card).suffix == ".py":
        return load_card(card)
    cards = discover_cards()
    if str(card) not in cards:
        raise PosefixError(f"unknown estimator card {str(card)!r} (known: {', '.join(cards)})")
    return cards[str(card)]


def resolve_split(coco_root: Path, split: str | None, candidates: tuple[str, ...]) -> str:
    """``split`` if given, else the first candidate whose annotation file exists; checked to exist with images."""
    names = (split,) if split else candidates
    for name in names:
        ann, images = coco_split_paths(coco_root, name)
        if ann.is_file():
            if not images.is_dir():
                raise file_error(images, f"image folder of split {name!r} not found")
            return name
    wanted = " or ".join(str(coco_split_paths(coco_root, n)[0]) for n in names)
    raise file_error(coco_root, f"no annotation file for training (looked for {wanted})")


def _check_dataset(ann: Path) -> None:
    gt = CocoDataset(ann)
    if gt.schema.keypoints != COCO17.keypoints:
        raise file_error(ann, f"keypoint layout {gt.schema.name} is not COCO-17, which the mmpose cards predict")
    if next(gt.persons(min_keypoints=1), None) is None:
        raise file_error(ann, "no person with labelled keypoints to train on")


def _train_config(card: EstimatorCard, coco_root: Path, split: str, run_dir: Path, seed: int,
                  overrides: Mapping[str, Any] | None):
    cfg = copy.deepcopy(card.config)
    cfg.work_dir = str(run_dir)
    cfg.experiment_name = f"{card.name}-seed{seed}-{os.getpid()}-{next(_run_counter)}"
    if cfg.get("visualizer"):  # a global mmengine instance: one per run, or a second run writes into the first's
        cfg.visualizer.name = cfg.experiment_name
    cfg.launcher = "none"
    cfg.log_level = "ERROR"
    cfg.randomness = dict(seed=int(seed), deterministic=True)
    cfg.load_from, cfg.resume = None, False
    cfg.model.backbone.init_cfg = None  # never fetch pretrained weights (unavailable offline)
    ds = cfg.train_dataloader.dataset
    ds.data_root = str(coco_root)
    ds.ann_file = f"annotations/person_keypoints_{split}.json"
    ds.data_prefix = dict(img=f"{split}/")
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    for key in ("val_dataloader", "val_cfg", "val_evaluator", "test_dataloader", "test_cfg", "test_evaluator"):
        cfg[key] = None
    if not any(str(k).startswith("default_hooks.checkpoint") for k in (overrides or {})):
        cfg.default_hooks.checkpoint = None  # the final weights are written below, without timestamps
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=10)
    cfg.env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0))
    if overrides:
        cfg.merge_from_dict(dict(overrides))
    return cfg


@contextlib.contextmanager
def _restore_process_state():
    """Undo the global changes mmengine's Runner makes (RNGs, mp start method, OpenCV threads, determinism)."""
    import multiprocessing as mp
    import random

    import cv2
    import numpy as np
    import torch

    state = (random.getstate(), np.random.get_state(), torch.get_rng_state(), mp.get_start_method(allow_none=True),
             cv2.getNumThreads(), torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    try:
        yield
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
        if state[3] is not None:
            mp.set_start_method(state[3], force=True)
        cv2.setNumThreads(state[4])
        torch.use_deterministic_algorithms(state[5])
        torch.set_num_threads(state[6])


def _training_hook(progress, total: int, desc: str, save_at: Mapping[int, Path], meta: dict):
    """Advances ``progress`` once per iteration, collects the losses, and writes the weights after each iteration
    named in ``save_at`` (``{iteration: path}``, iterations counted from 1) with the wall time since the start."""
    from mmengine.hooks import Hook

    class TrainingHook(Hook):
        priority = "VERY_LOW"

        def __init__(self):
            self._it = iter(progress(range(total), total=total, desc=desc))
            self.losses: list[float] = []
            self.saved: dict[int, float] = {}  # iteration -> seconds since the start of training
            self._start = time.perf_counter()

        def before_train(self, runner):
            self._start = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if outputs and "loss" in outputs:
                self.losses.append(float(outputs["loss"].detach()))
            done = runner.iter + 1  # mmengine counts the finished iteration after this hook
            if done in save_at:
                self.saved[done] = time.perf_counter() - self._start
                _save_checkpoint(save_at[done], runner.model, {**meta, "iteration": done})
            next(self._it, None)

        def after_train(self, runner):
            for _ in self._it:
                pass

    return TrainingHook()


def _save_checkpoint(path: Path, model, meta: dict) -> None:
    """Weights and plain metadata; serialised in memory first, because ``torch.save`` names the archive's
    inner folder after the file it writes (a random temporary name would change the bytes)."""
    import io

    import torch

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"state_dict": state, "meta": meta}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _ladder_name(card_name: str, iteration: int) -> str:
    return f"{card_name}-iter{iteration}.pth"


def _check_iterations(card: EstimatorCard, iterations: Sequence[int], max_iters: int) -> list[int]:
    its = sorted({int(i) for i in iterations})
    if not its or len(its) != len(list(iterations)) or its[0] < 1:
        raise PosefixError(f"{card.name}: checkpoint iterations must be distinct and >= 1, got {list(iterations)}")
    if its[-1] > max_iters:
        raise PosefixError(f"{card.name}: checkpoint iteration {its[-1]} is past the end of the schedule "
                           f"(max_iters {max_iters})")
    return its


def _train(card: EstimatorCard | str | os.PathLike, coco_root, work_dir, overrides, train_split, seed, progress,
           iterations: Sequence[int] | None, final_name: bool) -> tuple[dict[int, Path], dict]:
    """One mmpose training; weights written after each of ``iterations`` (default: the last); training stops at
    the last of them (the learning-rate schedule is the card's, unchanged)."""
    card = resolve_card(card)
    root = Path(coco_root)
    if not root.is_dir():
        raise file_error(root, "COCO root not found")
    split = resolve_split(root, train_split, ("train", "train2017"))
    _check_dataset(coco_split_paths(root, split)[0])
    out_dir = Path(work_dir)
    cfg = _train_config(card, root.resolve(), split, out_dir / "runner", seed, overrides)
    max_iters = int(cfg.train_cfg.get("max_iters", 0))
    if cfg.train_cfg.get("by_epoch", True) or max_iters < 1:
        raise file_error(card.path, "a trainable card needs an iteration-based schedule (train_cfg by_epoch=False, "
                                    "max_iters >= 1)")
    its = _check_iterations(card, iterations if iterations is not None else [max_iters], max_iters)
    cfg.train_cfg.max_iters = its[-1]
    from mmengine.runner import Runner

    from posefix_bench.sources.mmpose_source import quiet_mmengine

    meta = {"format": CHECKPOINT_FORMAT, "card": card.name, "mmpose_config": card.mmpose_config,
            "input_size": list(card.input_size), "coco_root": str(root), "train_split": split, "seed": int(seed),
            "max_iters": max_iters, "overrides": json.loads(json.dumps(dict(overrides or {}), default=str))}
    names = {i: (f"{card.name}.pth" if final_name else _ladder_name(card.name, i)) for i in its}
    save_at = {i: out_dir / names[i] for i in its}
    start = time.perf_counter()
    # pycocotools prints while mmpose's dataset loads its annotations: keep stdout clean
    with _restore_process_state(), quiet_mmengine(), contextlib.redirect_stdout(io.StringIO()):
        runner = Runner.from_cfg(cfg)
        hook = _training_hook(progress, its[-1], f"train {card.name}", save_at, meta)
        runner.register_hook(hook)
        runner.train()
    wall = time.perf_counter() - start
    batch = int(cfg.train_dataloader.batch_size)
    log = {**meta, "wall_s": wall, "batch_size": batch, "samples_per_s": its[-1] * batch / wall,
           "checkpoints": [{"iteration": i, "checkpoint": names[i], "seconds": hook.saved[i]} for i in its],
           "losses": hook.losses}
    atomic_write_json(out_dir / "train_log.json", log)
    return save_at, log


def train_mmpose_estimator(
    card: EstimatorCard | str | os.PathLike,
    coco_root: str | os.PathLike,
    work_dir: str | os.PathLike,
    overrides: Mapping[str, Any] | None = None,
    train_split: str | None = None,
    seed: int = 0,
    progress=no_progress,
) -> Path:
    """Train ``card``'s model on ``coco_root`` with mmpose's training; return the checkpoint path.

    Args:
        card: an :class:`EstimatorCard`, a card file, or a card name (``sandbox-rtmpose-t-64x48``).
        coco_root: a COCO-format root (the sandbox, or coco-mini for a smoke test).
        work_dir: output folder: ``<card name>.pth`` (weights + plain metadata, loadable as the card's
            ``checkpoint``), ``train_log.json`` (losses, wall time, samples/s) and mmengine's logs under ``runner/``.
        overrides: mmengine ``cfg_options`` applied last (e.g. ``{"train_cfg.max_iters": 5}``).
        train_split: split name; default ``train``, else ``train2017``.
        seed: the run's seed (initialisation, sampling order, augmentation).
        progress: progress callback, advanced once per training iteration.
    """
    saved, _ = _train(card, coco_root, work_dir, overrides, train_split, seed, progress, None, final_name=True)
    return next(iter(saved.values()))


def train_mmpose_ladder(
    card: EstimatorCard | str | os.PathLike,
    coco_root: str | os.PathLike,
    work_dir: str | os.PathLike,
    iterations: Sequence[int] | None = None,
    overrides: Mapping[str, Any] | None = None,
    train_split: str | None = None,
    seed: int = 0,
    progress=no_progress,
) -> dict[int, Path]:
    """One training of ``card`` with its weights saved at several iterations: estimators of one family at several
    strengths (an input-strength ladder), each loadable with ``get_source(card.name, checkpoint=path)``.

    Args:
        card, coco_root, train_split, seed, progress: as :func:`train_mmpose_estimator`.
        work_dir: output folder: ``<card name>-iter<N>.pth`` per iteration and ``train_log.json`` (per checkpoint
            its iteration and the training seconds it took to get there; losses; samples/s).
        iterations: where to save (counted from 1, distinct, at most the schedule's ``max_iters``); default the
            card's ``card.ladder`` entry, else the last iteration only. Training stops after the last of them; the
            learning-rate schedule stays the card's (a checkpoint before the end is taken mid-schedule).
        overrides: mmengine ``cfg_options`` applied last.

    Returns ``{iteration: checkpoint path}`` in increasing iteration order.
    """
    card = resolve_card(card)
    if iterations is None:
        iterations = card.ladder or None
    saved, _ = _train(card, coco_root, work_dir, overrides, train_split, seed, progress, iterations,
                      final_name=False)
    return saved
