"""Content-hash step cache for the bench: a step whose inputs did not change is not redone.

Every bench step (generate data, train an estimator or a refiner, predict, refine, diagnose, measure FPS) is named by
the SHA-256 of a canonical JSON *payload* that lists everything its output depends on: the resolved config, the
content hashes of the files it reads (the hashes of earlier steps' outputs), the seed, and a fingerprint of the
package code it runs. Its output lives in ``<root>/<kind>/<key>/`` and counts as done only once a ``DONE`` marker
is written last, so a killed bench never mistakes a half-written step for a finished one. Long steps (training)
keep their working folder between runs and resume from their own checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from posefix_bench.structures.io import atomic_write_json, read_json, to_jsonable

__all__ = ["StepCache", "Step", "canonical_hash", "file_hash", "code_fingerprint"]


def canonical_hash(payload: Any) -> str:
    """SHA-256 of the canonical JSON form (sorted keys, no whitespace) of ``payload``."""
    text = json.dumps(to_jsonable(payload), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


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

    def reset(self) -> None:
        """Forget a step (its folder is removed)."""
        shutil.rmtree(self.path, ignore_errors=True)


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
