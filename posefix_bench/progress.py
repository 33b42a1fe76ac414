"""Progress reporting without printing from library code.

Long-running library functions take ``progress: Progress = no_progress`` and wrap their main loop with it:
``for item in progress(items, total=len(items), desc="refine")``. The command line passes
:func:`tqdm_progress` (a bar on stderr); tests and library callers get silence by default.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, TypeVar

__all__ = ["Progress", "no_progress", "tqdm_progress"]

T = TypeVar("T")
Progress = Callable[..., Iterable]


def no_progress(iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    return iterable


def tqdm_progress(iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
