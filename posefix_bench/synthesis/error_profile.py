"""Measured error profiles: per-joint error-type frequencies conditioned as the published table is.

PoseFix (CVPR 2019, Sec. 4) synthesises input poses with error-type probabilities borrowed from Ronchi & Perona's
statistics of 2016 COCO entries, per joint and conditioned on the person's number of labelled keypoints V and the
number of overlapping people O. An :class:`ErrorProfile` holds the same quantity *measured* for a given estimator
on a given dataset (``posefix-bench profile`` computes it from a diagnosis), with the raw counts so the sampling
uncertainty stays visible, and the synthesis accepts it as an error mix (``--mix PROFILE.json``).

File format (JSON, ``format = "posefix-bench/error-profile/v1"``)::

    {"format": ..., "schema": "coco17", "keypoints": [K names],
     "v_bins": ["V<=5", "V<=10", "V>10"], "o_bins": ["O=0", "O=1-2", "O>=3"],
     "classes": ["good", "jitter", "inversion", "swap", "miss"],
     "counts": [[[[int x 5] x K] x 3 O-bins] x 3 V-bins],   # keypoints of each class
     "absent": [[[int x K] x 3] x 3],                          # keypoints the estimator did not predict
     "probabilities": same shape as counts (null where a cell has no keypoint),
     "meta": {...}}                                             # where it was measured

Shape legend: K keypoints, C = 5 classes, VB / OB the V / O bins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from posefix_bench.codecs.taxonomy import ERROR_TYPES, O_BINS, V_BINS
from posefix_bench.errors import PosefixError, file_error
from posefix_bench.structures.io import atomic_write_json, read_json

__all__ = ["PROFILE_FORMAT", "ErrorProfile"]

PROFILE_FORMAT = "posefix-bench/error-profile/v1"


@dataclass(frozen=True)
class ErrorProfile:
    """Counts of each error class per (V bin, O bin, joint).

    Attributes:
        schema: keypoint schema name.
        keypoints: K keypoint names.
        counts: (VB, OB, K, C) int64, C indexing :data:`ERROR_TYPES`.
        absent: (VB, OB, K) int64 keypoints not predicted (not part of the five classes).
        meta: free-form provenance (ground truth, results file, estimator, date).
    """

    schema: str
    keypoints: tuple[str, ...]
    counts: np.ndarray
    absent: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        shape = (len(V_BINS), len(O_BINS), k, len(ERROR_TYPES))
        counts = np.asarray(self.counts, dtype=np.int64)
        absent = np.asarray(self.absent, dtype=np.int64)
        if counts.shape != shape or absent.shape != shape[:3]:
            raise PosefixError(f"error profile: counts of shape {counts.shape}, expected {shape}")
        if (counts < 0).any() or (absent < 0).any():
            raise PosefixError("error profile: negative counts")
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "absent", absent)
        object.__setattr__(self, "keypoints", tuple(self.keypoints))

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def frequencies(self) -> np.ndarray:
        """(VB, OB, K, C) raw frequencies per cell; NaN where a cell has no keypoint."""
        tot = self.counts.sum(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, self.counts / np.maximum(tot, 1), np.nan)

    def probabilities(self, min_count: int = 20) -> np.ndarray:
        """(VB, OB, K, C) probabilities for sampling, with back-off for sparse cells.

        A cell with fewer than ``min_count`` keypoints borrows the counts pooled over the O bins of its V bin, then
        over all bins, then (a joint never seen) is all "good".
        """
        c = self.counts.astype(np.float64)
        pooled_o = np.broadcast_to(c.sum(axis=1, keepdims=True), c.shape)
        pooled_all = np.broadcast_to(c.sum(axis=(0, 1), keepdims=True), c.shape)
        n = c.sum(axis=-1, keepdims=True)
        n_o = pooled_o.sum(axis=-1, keepdims=True)
        use = np.where(n >= min_count, c, np.where(n_o >= min_count, pooled_o, pooled_all))
        tot = use.sum(axis=-1, keepdims=True)
        good = np.zeros_like(use)
        good[..., 0] = 1.0
        return np.where(tot > 0, use / np.maximum(tot, 1e-300), good)

    # -- files ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        freq = self.frequencies()
        return {
            "format": PROFILE_FORMAT,
            "schema": self.schema,
            "keypoints": list(self.keypoints),
            "v_bins": list(V_BINS),
            "o_bins": list(O_BINS),
            "classes": list(ERROR_TYPES),
            "counts": self.counts.tolist(),
            "absent": self.absent.tolist(),
            "probabilities": [[[[None if np.isnan(x) else float(x) for x in row] for row in o] for o in v]
                              for v in freq],
            "meta": dict(self.meta),
        }

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_json())

    @classmethod
    def from_json(cls, data, source: str | os.PathLike = "error profile") -> "ErrorProfile":
        if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
            raise file_error(source, f"not an error profile (expected \"format\": \"{PROFILE_FORMAT}\")")
        for key, expected in (("v_bins", V_BINS), ("o_bins", O_BINS), ("classes", ERROR_TYPES)):
            if tuple(data.get(key, ())) != expected:
                raise file_error(source, f"'{key}' must be {list(expected)}")
        try:
            return cls(
                schema=str(data["schema"]),
                keypoints=tuple(data["keypoints"]),
                counts=np.asarray(data["counts"]),
                absent=np.asarray(data["absent"]),
                meta=dict(data.get("meta", {})),
            )
        except KeyError as e:
            raise file_error(source, f"error profile lacks {e.args[0]!r}") from None
        except (PosefixError, ValueError, TypeError) as e:
            raise file_error(source, str(e)) from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ErrorProfile":
        return cls.from_json(read_json(path, "error profile"), source=path)
