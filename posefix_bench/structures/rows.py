"""A base for the dataclasses of row-aligned arrays: every array field has one row per person, detection or
keypoint, and ``len()`` is that number of rows."""

from __future__ import annotations

__all__ = ["ArrayRows"]


class ArrayRows:
    """Base of a dataclass whose array fields share their first axis; ``len()`` is that axis' length, read from the
    field named in the class statement: ``class ResultArrays(ArrayRows, rows="scores")``."""

    __slots__ = ()
    _rows_field: str

    def __init_subclass__(cls, rows: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if rows is not None:
            cls._rows_field = rows

    def __len__(self) -> int:
        return int(getattr(self, self._rows_field).shape[0])
