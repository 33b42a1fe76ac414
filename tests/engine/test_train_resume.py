"""Exact resume: a training process killed with SIGKILL mid-epoch and resumed ends with the same weights, bit for bit,
as an uninterrupted run with the same seed (the acceptance test of issue 5's engine). The kill comes from a hook the
test adds (``train_until_killed.py``); the library has no fault injection of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
KILLER = Path(__file__).with_name("train_until_killed.py")
CONFIG = REPO / "ablations" / "coco-mini" / "r18_64x48_paper_lb-off_skip_train-cocomini.py"
# 16 persons, batch 4 -> 4 iterations per epoch; 10 iterations cross two epoch boundaries; checkpoints every 3
TINY = [
    "data.max_samples=16", "data.cache_images=True", "train.batch_size=4", "train.max_iters=10",
    "train.checkpoint_interval=3", "train.log_interval=2", "train.threads=1", "model.deconv_channels=64",
    "train.amp=fp32",  # bit for bit: one precision for both runs, whatever each process's probe would pick (issue 25)
]


def _train(work_dir: Path, *extra: str, resume: bool = False, kill_after: int | None = None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if kill_after is not None:  # the train command's work, plus a hook that SIGKILLs after a checkpoint
        cmd = [sys.executable, str(KILLER), str(CONFIG), str(work_dir), str(kill_after), *TINY, *extra]
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    cmd = [sys.executable, "-m", "posefix_bench.cli", "train", "--config", str(CONFIG), "--work-dir", str(work_dir),
           "--cfg-options", *TINY, *extra]
    if resume:
        cmd.insert(cmd.index("--cfg-options"), "--resume")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_bitwise_identical_weights(tmp_path):
    full = _train(tmp_path / "full", "train.num_workers=0")
    assert full.returncode == 0, full.stderr

    # killed right after the checkpoint of iteration 6 (epoch 1, step 2 of 4: mid-epoch), with a data-loader worker
    killed = _train(tmp_path / "killed", "train.num_workers=1", kill_after=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ckpts = tmp_path / "killed" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["iter_3.pth", "iter_6.pth", "latest.pth"]
    assert not (tmp_path / "killed" / "final.pth").exists()
    at_kill = _weights(ckpts / "iter_6.pth")

    resumed = _train(tmp_path / "killed", "train.num_workers=0", resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at iteration 6" in resumed.stdout

    a, b = _weights(tmp_path / "full" / "final.pth"), _weights(tmp_path / "killed" / "final.pth")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    # the resumed iterations really moved the weights (the comparison is not between two untouched copies)
    assert any(not torch.equal(a[k], at_kill[k]) for k in a if a[k].is_floating_point())

    # the resumed log is the uninterrupted one (same losses at the same iterations), cut at the checkpoint
    log_full = (tmp_path / "full" / "train_log.jsonl").read_text().splitlines()
    log_resumed = (tmp_path / "killed" / "train_log.jsonl").read_text().splitlines()
    import json

    losses = lambda lines: [(json.loads(x)["iter"], json.loads(x)["loss"]) for x in lines]  # noqa: E731
    assert losses(log_full) == losses(log_resumed)
