"""The one user-facing error type.

Library code raises :class:`PosefixError` for bad input (a file that is not what it should be, an unknown
name, an inconsistent argument). Its message is a single line that names the file or the thing and the
problem; the command line prints it without a traceback and exits non-zero. Library code never prints and
never calls ``sys.exit``.
"""

from __future__ import annotations

import os


class PosefixError(Exception):
    """Bad input or configuration, reported to the user as one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def file_error(path: str | os.PathLike, problem: str) -> PosefixError:
    """``PosefixError("<path>: <problem>")``, the format every file error uses."""
    return PosefixError(f"{os.fspath(path)}: {problem}")
