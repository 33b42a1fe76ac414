"""Content-hash step cache for the bench: a step whose inputs did not change is not redone.

Every bench step (generate data, train an estimator or a refiner, predict, refine, analyse, measure FPS) is named by
the SHA-256 of a canonical JSON *payload* that lists everything its output depends on: the resolved config, the
content hashes of the files it reads (the hashes of earlier steps' outputs), the seed, and a fingerprint of the
package code it runs. Its output lives in ``<root>/<kind>/<key>/`` and counts as done only once a ``DONE`` marker
is written last, so a killed bench never mistakes a half-written step for a finished one. A step holds an exclusive
lock on its folder while it works (:meth:`Step.lock`), so a bench restarted after a kill waits for, rather than
collides with, a worker of the killed run that is still finishing. Long steps (training) keep their working folder
between runs and resume from their own checkpoints.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from posefix_bench.hashing import canonical_hash, file_hash
from posefix_bench.structures.io import atomic_write_json, read_json

__all__ = ["StepCache", "Step", "canonical_hash", "file_hash", "code_fingerprint"]


def code_fingerprint(packages: Iterable[str]) -> str:
    """SHA-256 over the source files of the given ``posefix_bench`` sub-packages/modules (e.g. ``"models"``)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for name in sorted(set(packages)):
        target = root / name
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
        for f in files:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Step:
    """One cached step: its folder and whether it is complete."""

    kind: str
    key: str
    path: Path

    @property
    def done(self) -> bool:
        return (self.path / "DONE").is_file()

    def mark_done(self, summary: dict | None = None) -> None:
        """Record completion (with an optional summary record); the marker is the last thing written."""
        atomic_write_json(self.path / "DONE", summary or {})

    def summary(self) -> dict:
        return read_json(self.path / "DONE", "step marker") if self.done else {}

    @contextlib.contextmanager
    def lock(self) -> Iterator["Step"]:
        """Exclusive lock on the step's folder (released when the holder exits, even by SIGKILL)."""
        with open(self.path / "LOCK", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


class StepCache:
    """Steps under ``root``, keyed by the hash of their payload."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def step(self, kind: str, payload: Any) -> Step:
        key = canonical_hash({"kind": kind, "payload": payload})[:20]
        path = self.root / kind / key
        path.mkdir(parents=True, exist_ok=True)
        payload_file = path / "payload.json"
        if not payload_file.exists():
            atomic_write_json(payload_file, {"kind": kind, "payload": payload})
        return Step(kind, key, path)
