"""File I/O shared by every stage: JSON reading with one-line errors, and atomic writes.

Every file the suite writes goes through :func:`atomic_write_bytes` (write a temporary file in the target's
directory, flush and fsync it, then ``os.replace``), so a killed process never leaves a half-written result and
an earlier complete file is only ever replaced by another complete one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from posefix_bench.errors import PosefixError, file_error

__all__ = ["read_json", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_write_with",
           "to_jsonable", "default_permissions"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def default_permissions(path: str | os.PathLike) -> None:
    """Give a temporary file or folder (``mkstemp`` 0600, ``mkdtemp`` 0700) the permissions ``open()`` / ``mkdir()``
    would under the process's umask (0644 / 0755 under the usual 022), before it is moved into place."""
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~_UMASK)


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file raises a one-line :class:`PosefixError`."""
    p = Path(path)
    if not p.exists():
        raise file_error(p, f"{what} not found")
    if p.is_dir():
        raise file_error(p, f"is a directory, expected a {what}")
    try:
        with open(p, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise file_error(p, f"not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except UnicodeDecodeError:
        raise file_error(p, "not valid JSON (not UTF-8 text)") from None
    except OSError as e:
        raise file_error(p, f"cannot be read ({e.strerror or e})") from None


def atomic_write_with(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically move ``tmp_path`` to ``path``; nothing is left on failure.

    For writers that need a file name (matplotlib's ``savefig``, ``torch.save``, ``cv2.imwrite``). The temporary
    name keeps the target's suffix so format detection by extension still works.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".tmp{p.suffix}", dir=p.parent)
    os.close(fd)
    default_permissions(tmp)  # mkstemp creates 0600; give the file the permissions open() would
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return p


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write_with(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples, dataclass-free records; non-finite floats -> None."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON atomically (numpy types converted, NaN/inf written as null)."""
    try:
        text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
    except (TypeError, ValueError) as e:  # a programming error, not user input
        raise PosefixError(f"{os.fspath(path)}: cannot serialise to JSON ({e})") from None
    return atomic_write_text(path, text + "\n")
