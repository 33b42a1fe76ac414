"""A training work dir's guards: one training at a time, fail-fast reuse checks, resuming from an intact checkpoint.

- :func:`lock_work_dir`: an exclusive ``flock`` on ``WORK_DIR/.train.lock`` held while a training runs. A second
  training into the same folder fails at once with one line naming the holder's pid (instead of both running and
  every log line appearing twice). The kernel drops the lock when its process dies, even by SIGKILL, so a killed
  run never leaves a stale lock. Re-entrant within a process (the command and :func:`~posefix_bench.engine.train.train`
  both take it).
- :func:`check_work_dir`: without ``--resume``, a folder that already holds a training run is refused before any
  model or data is built (the same rule :meth:`~posefix_bench.engine.train.Trainer.run` enforces, a second earlier).
- :func:`find_resume_checkpoint`: ``checkpoints/latest.pth``, or, when that is truncated or corrupt, the newest
  ``checkpoints/iter_<n>.pth`` that is intact, with a warning naming what was skipped. torch checkpoints are zip
  archives (``torch.save``'s default format), so intactness is the archive's central directory plus every member's
  CRC, checked without torch.

Library code: errors are one-line :class:`~posefix_bench.errors.PosefixError`s; warnings are returned, not printed.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from posefix_bench.errors import file_error

__all__ = ["LOCK_NAME", "WorkDirLock", "lock_work_dir", "check_work_dir", "checkpoint_problem", "ResumePoint",
           "find_resume_checkpoint"]

LOCK_NAME = ".train.lock"
_HELD: dict[str, list] = {}  # realpath of a lock file -> [fd, depth, created_dir] while this process holds it


class WorkDirLock:
    """Context manager holding the training lock of one work dir (see the module docstring).

    Args:
        work_dir: the training's output folder (created if missing; removed again on release if the lock created
            it and nothing else was written there).
        enabled: False gives a no-op (the non-main processes of a torchrun job).
    """

    def __init__(self, work_dir: str | os.PathLike, enabled: bool = True):
        self.work_dir, self.enabled = Path(work_dir), enabled
        self.path = self.work_dir / LOCK_NAME
        self._key: str | None = None

    def __enter__(self) -> "WorkDirLock":
        if not self.enabled:
            return self
        import fcntl

        created = not self.work_dir.exists()
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise file_error(self.work_dir, f"cannot create the work dir ({e.strerror or e})") from None
        key = os.path.realpath(self.path)
        if key in _HELD:
            _HELD[key][1] += 1
            self._key = key
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise file_error(self.path, f"cannot create the training lock ({e.strerror or e})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (pid {holder})" if holder else ""
                raise file_error(self.work_dir, f"another training{who} is running in this work dir; wait for it "
                                                "to end or choose another --work-dir") from None
            try:  # the holder before us may have removed the file after we opened it: lock the current file
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = [fd, 1, created]
        self._key = key
        return self

    def __exit__(self, *exc) -> None:
        if self._key is None:
            return
        entry = _HELD[self._key]
        entry[1] -= 1
        if entry[1] == 0:
            fd, _, created = _HELD.pop(self._key)
            self.path.unlink(missing_ok=True)  # before the unlock: nobody can lock a file that is gone
            os.close(fd)
            if created:
                try:
                    self.work_dir.rmdir()  # only if the failed start left it empty
                except OSError:
                    pass
        self._key = None


def lock_work_dir(work_dir: str | os.PathLike, enabled: bool = True) -> WorkDirLock:
    """``with lock_work_dir(dir): ...``: hold the training lock of ``dir`` (see :class:`WorkDirLock`)."""
    return WorkDirLock(work_dir, enabled)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def check_work_dir(work_dir: str | os.PathLike, resume: bool) -> None:
    """Without ``resume``, a work dir holding a training run (``checkpoints/latest.pth``) is a one-line error."""
    wd = Path(work_dir)
    if not resume and (wd / "checkpoints" / "latest.pth").exists():
        raise file_error(wd, "already holds a training run (resume it with --resume, or choose another --work-dir)")


def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """Why a checkpoint file cannot be resumed from (truncated, corrupt, unreadable), or None when it is intact."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except zipfile.BadZipFile:
        return "truncated or not a torch checkpoint (no complete zip archive)"
    except (OSError, EOFError, RuntimeError, ValueError) as e:
        return f"cannot be read ({getattr(e, 'strerror', None) or type(e).__name__})"
    except zipfile.LargeZipFile:  # pragma: no cover (zip64 is read by default)
        return "cannot be read (zip64)"
    if bad is not None:
        return f"corrupt (bad checksum in {bad})"
    return None


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed training continues from.

    Attributes:
        path: the checkpoint to load; None when the folder holds no checkpoint (the run starts from scratch).
        skipped: (checkpoint, problem) of the newer files that could not be used.
    """

    path: Path | None
    skipped: tuple = ()

    def warnings(self) -> list[str]:
        """One line per skipped checkpoint, saying what is resumed instead."""
        return [f"{p}: {why}; resuming from {self.path.name} instead" for p, why in self.skipped]


def _iteration(path: Path) -> int | None:
    try:
        return int(path.stem.split("_", 1)[1])
    except (IndexError, ValueError):
        return None


def find_resume_checkpoint(checkpoint_dir: str | os.PathLike) -> ResumePoint:
    """``latest.pth`` if intact, else the newest intact ``iter_<n>.pth`` (see the module docstring).

    Raises a one-line error when checkpoints exist but none is intact (starting over would silently discard the
    run: the user decides).
    """
    d = Path(checkpoint_dir)
    numbered = sorted(((n, p) for p in d.glob("iter_*.pth") if (n := _iteration(p)) is not None), reverse=True)
    candidates = ([d / "latest.pth"] if (d / "latest.pth").is_file() else []) + [p for _, p in numbered]
    skipped = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return ResumePoint(path, tuple(skipped))
        skipped.append((path, problem))
    if skipped:
        detail = "; ".join(f"{p.name}: {why}" for p, why in skipped)
        raise file_error(d, f"no intact checkpoint to resume from ({detail}); remove the folder to start over")
    return ResumePoint(None)
