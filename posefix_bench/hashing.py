"""Content hashes: of a JSON-able record (canonical form) and of a file's bytes.

The bench names its cached steps by them (:mod:`posefix_bench.bench.cache`) and reporting uses them to tell whether
a plot's inputs changed since it was drawn.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

__all__ = ["canonical_hash", "file_hash", "named_file_hashes"]


def canonical_hash(payload: Any) -> str:
    """SHA-256 of the canonical JSON form (sorted keys, no whitespace) of ``payload``; numpy values, tuples and
    paths become plain JSON first (:func:`posefix_bench.structures.io.to_jsonable`)."""
    from posefix_bench.structures.io import to_jsonable

    text = json.dumps(to_jsonable(payload), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def named_file_hashes(spec: Any) -> dict[str, str]:
    """{path: SHA-256 of its bytes} of every existing file a (nested) spec names by a string value, such as a
    ``results-file`` source's ``path``, a checkpoint or an error-profile mix: a cache key holding these changes when
    a file is overwritten in place, not only when it is renamed."""
    found: dict[str, str] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, (str, os.PathLike)) and "://" not in str(value) and os.path.isfile(value):
            found[os.fspath(value)] = file_hash(value)

    walk(spec)
    return found
