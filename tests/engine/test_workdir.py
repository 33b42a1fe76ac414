"""Training work-dir guards (engine/workdir.py): one training per work dir, and resuming from the newest intact
checkpoint when ``latest.pth`` is damaged, saying so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from posefix_bench import cli
from posefix_bench.engine.workdir import (
    LOCK_NAME,
    check_work_dir,
    checkpoint_problem,
    find_resume_checkpoint,
    lock_work_dir,
)
from posefix_bench.errors import PosefixError

REPO = Path(__file__).resolve().parents[2]
MINI = REPO / "ablations" / "coco-mini" / "r18_64x48_paper_lb-off_skip_train-cocomini.py"


def _zip(path: Path, payload: bytes = b"x" * 4096) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
    return path


def _truncate(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:  # in place: a hard-linked iter_<n>.pth is truncated with it
        f.truncate(size // 2)


def test_lock_is_exclusive_reentrant_and_leaves_nothing(tmp_path):
    wd = tmp_path / "run"
    with lock_work_dir(wd):
        assert (wd / LOCK_NAME).read_text().strip() == str(os.getpid())
        with lock_work_dir(wd):  # the command and the engine both take it: re-entrant in one process
            pass
        assert (wd / LOCK_NAME).exists()
        code = ("import sys; from posefix_bench.engine.workdir import lock_work_dir\n"
                "with lock_work_dir(sys.argv[1]): pass")
        other = subprocess.run([sys.executable, "-c", code, str(wd)], capture_output=True, text=True, timeout=60)
        assert other.returncode != 0
        assert f"{wd}: another training (pid {os.getpid()}) is running in this work dir" in other.stderr
    assert not wd.exists()  # the lock created the folder and nothing else was written: removed again
    wd.mkdir()
    (wd / "keep.txt").write_text("x")
    with lock_work_dir(wd):
        pass
    assert sorted(p.name for p in wd.iterdir()) == ["keep.txt"]


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    wd = tmp_path / "run"
    code = ("import sys, time; from posefix_bench.engine.workdir import lock_work_dir\n"
            "with lock_work_dir(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(wd)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(PosefixError, match=f"another training \\(pid {holder.pid}\\)"):
            with lock_work_dir(wd):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with lock_work_dir(wd):  # the kernel released the dead process's lock
        assert (wd / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_second_training_into_a_locked_work_dir_fails_at_once(tmp_path):
    wd = tmp_path / "run"
    with lock_work_dir(wd):
        proc = subprocess.run([sys.executable, "-m", "posefix_bench.cli", "train", "--config", str(MINI),
                               "--work-dir", str(wd)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.count("\n") == 1 and "another training" in proc.stderr and "Traceback" not in proc.stderr


def test_existing_run_without_resume_is_refused(tmp_path):
    wd = tmp_path / "run"
    check_work_dir(wd, resume=False)  # nothing there yet
    _zip(wd / "checkpoints" / "latest.pth")
    with pytest.raises(PosefixError, match="already holds a training run"):
        check_work_dir(wd, resume=False)
    check_work_dir(wd, resume=True)


def test_resume_point_skips_damaged_checkpoints(tmp_path):
    d = tmp_path / "checkpoints"
    assert find_resume_checkpoint(d).path is None  # no folder: from scratch
    for n in (3, 6, 12):
        _zip(d / f"iter_{n}.pth", payload=bytes([n]) * 4096)
    os.link(d / "iter_12.pth", d / "latest.pth")  # as the trainer links it
    point = find_resume_checkpoint(d)
    assert point.path == d / "latest.pth" and point.skipped == () and point.warnings() == []

    _truncate(d / "latest.pth")  # truncates iter_12.pth too (the same file)
    point = find_resume_checkpoint(d)
    assert point.path == d / "iter_6.pth"
    assert [p.name for p, _ in point.skipped] == ["latest.pth", "iter_12.pth"]
    assert point.warnings()[0] == (f"{d / 'latest.pth'}: truncated or not a torch checkpoint (no complete zip "
                                   "archive); resuming from iter_6.pth instead")

    data = bytearray((d / "iter_6.pth").read_bytes())  # a flipped byte inside the stored member: CRC mismatch
    data[data.index(bytes([6]) * 16) + 5] ^= 0xFF
    (d / "iter_6.pth").write_bytes(bytes(data))
    assert checkpoint_problem(d / "iter_6.pth") == "corrupt (bad checksum in archive/data.pkl)"
    assert find_resume_checkpoint(d).path == d / "iter_3.pth"

    _truncate(d / "iter_3.pth")
    with pytest.raises(PosefixError, match="no intact checkpoint to resume from"):
        find_resume_checkpoint(d)


@pytest.mark.slow
def test_resume_with_a_truncated_latest_falls_back_to_the_newest_intact_checkpoint(tmp_path, capsys):
    wd = tmp_path / "run"
    tiny = ["data.max_samples=8", "data.cache_images=True", "train.batch_size=4", "train.checkpoint_interval=2",
            "train.log_interval=1", "train.threads=1", "train.num_workers=0", "model.deconv_channels=32"]
    argv = ["train", "--config", str(MINI), "--work-dir", str(wd), "--cfg-options", *tiny, "train.max_iters=4"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    ckpts = wd / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["iter_2.pth", "iter_4.pth", "latest.pth"]
    _truncate(ckpts / "latest.pth")
    with pytest.raises(Exception):  # the damage is real: torch cannot read it
        import torch

        torch.load(ckpts / "latest.pth", weights_only=False)

    assert cli.main(["train", "--resume", *argv[1:]]) == 0
    cap = capsys.readouterr()
    assert "trained 2 iterations (resumed at iteration 2)" in cap.out
    warnings = [line for line in cap.err.splitlines() if "warning" in line]
    assert warnings == [
        f"posefix-bench train: warning: {ckpts / 'latest.pth'}: truncated or not a torch checkpoint (no complete "
        "zip archive); resuming from iter_2.pth instead",
        f"posefix-bench train: warning: {ckpts / 'iter_4.pth'}: truncated or not a torch checkpoint (no complete "
        "zip archive); resuming from iter_2.pth instead",
    ]
    log = [json.loads(x)["iter"] for x in (wd / "train_log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4]  # cut back to the checkpoint, then continued
    assert checkpoint_problem(ckpts / "latest.pth") is None and not (wd / LOCK_NAME).exists()
