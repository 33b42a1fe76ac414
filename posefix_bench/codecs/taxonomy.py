"""The keypoint error taxonomy of Ronchi & Perona (ICCV 2017, Sec. 3.1), used by PoseFix (CVPR 2019, Sec. 4).

One definition, shared by the diagnosis (which classifies an estimator's keypoints) and the synthesis (which
places input keypoints in the region of a chosen class), so that what is synthesised as "swap" is diagnosed as
"swap".

For a detected keypoint j matched to a ground-truth person, KS (see :mod:`posefix_bench.codecs.oks`) is taken
against three kinds of candidates, all with the matched person's area (as PoseFix's synthesis measures every
candidate distance with the target person's area, so a synthesised region and its diagnosed class agree):

- own:   the matched person's joint j;
- sym:   the matched person's symmetric joint (left <-> right), when j has a partner and it is labelled;
- other: joint j *or its symmetric joint* of every other ground-truth person of the image that has it labelled
  (the best one counts). Ronchi & Perona's swap covers confusion with another person's keypoint, and PoseFix
  synthesises swaps on both the same and the symmetric joint of nearby people; counting only the same joint
  would diagnose half of the synthesised swaps as misses.

Let m be the best KS and where it was found (ties go to own, then sym):

=========  =========================================
good       m >= 0.85 on the own joint
jitter     0.5 <= m < 0.85 on the own joint
inversion  m >= 0.5 on the own symmetric joint
swap       m >= 0.5 on another person's joint
miss       m < 0.5
=========  =========================================

``absent`` (not part of the paper) labels keypoints the estimator did not predict (see
:func:`posefix_bench.structures.results.absent_mask`); it is kept apart from ``miss``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ERROR_TYPES",
    "CLASSES",
    "GOOD", "JITTER", "INVERSION", "SWAP", "MISS", "ABSENT",
    "GOOD_KS", "JITTER_KS", "MISS_KS",
    "classify_ks",
    "labelled_counts",
    "overlap_counts",
    "overlap_matrix",
    "V_BINS", "O_BINS", "v_bin", "o_bin",
]

ERROR_TYPES = ("good", "jitter", "inversion", "swap", "miss")
CLASSES = ERROR_TYPES + ("absent",)
GOOD, JITTER, INVERSION, SWAP, MISS, ABSENT = range(6)

GOOD_KS = 0.85  # KS at or above which a keypoint on its own joint is good
JITTER_KS = 0.5  # KS at or above which a keypoint is near a joint (jitter, inversion, swap)
MISS_KS = 0.1  # outer bound of the synthesis "miss" region (PoseFix Sec. 4)


def classify_ks(ks_own: np.ndarray, ks_sym: np.ndarray, ks_other: np.ndarray) -> np.ndarray:
    """Class codes (``GOOD`` .. ``MISS``) from the three candidate similarities.

    Args:
        ks_own, ks_sym, ks_other: broadcastable arrays of KS in [0, 1]; NaN where the candidate does not exist
            (no symmetric partner, nobody else labelled).

    Returns:
        int64 array of codes indexing :data:`ERROR_TYPES`.
    """
    own = np.nan_to_num(np.asarray(ks_own, dtype=np.float64), nan=-1.0)
    sym = np.nan_to_num(np.asarray(ks_sym, dtype=np.float64), nan=-1.0)
    other = np.nan_to_num(np.asarray(ks_other, dtype=np.float64), nan=-1.0)
    own, sym, other = np.broadcast_arrays(own, sym, other)
    best = np.maximum(np.maximum(own, sym), other)
    out = np.full(own.shape, MISS, dtype=np.int64)
    near = best >= JITTER_KS
    on_own = own >= best
    on_sym = ~on_own & (sym >= best)
    on_other = ~on_own & ~on_sym
    out[near & on_other] = SWAP
    out[near & on_sym] = INVERSION
    out[near & on_own] = JITTER
    out[on_own & (own >= GOOD_KS)] = GOOD
    return out


# -- the conditioning of the error statistics (PoseFix Sec. 4, Ronchi & Perona Sec. 4) ---------------------------
# V: number of labelled keypoints (v > 0) of the person; O: number of other persons of the image whose box
# intersects the person's box. Bins as the published table uses them.
V_BINS = ("V<=5", "V<=10", "V>10")
O_BINS = ("O=0", "O=1-2", "O>=3")


def labelled_counts(gt_keypoints: np.ndarray) -> np.ndarray:
    """(N, K, 3) ground-truth keypoints -> (N,) number of labelled keypoints V."""
    return (np.asarray(gt_keypoints)[..., 2] > 0).sum(axis=-1)


def overlap_matrix(boxes: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Which persons' boxes intersect (positive intersection area), for one image or a padded batch of images.

    Args:
        boxes: (..., G, 4) x, y, w, h.
        valid: (..., G) bool, persons that count (e.g. non-crowd with keypoints); default all.

    Returns:
        (..., G, G) bool, ``[a, b]`` True when b is valid, b != a and their boxes intersect.
    """
    b = np.asarray(boxes, dtype=np.float64)
    v = np.ones(b.shape[:-1], bool) if valid is None else np.asarray(valid, bool)
    x0, y0, x1, y1 = b[..., 0], b[..., 1], b[..., 0] + b[..., 2], b[..., 1] + b[..., 3]
    iw = np.minimum(x1[..., :, None], x1[..., None, :]) - np.maximum(x0[..., :, None], x0[..., None, :])
    ih = np.minimum(y1[..., :, None], y1[..., None, :]) - np.maximum(y0[..., :, None], y0[..., None, :])
    inter = (iw > 0) & (ih > 0) & v[..., None, :]
    return inter & ~np.eye(b.shape[-2], dtype=bool)


def overlap_counts(boxes: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Number of other persons whose box intersects each person's box (positive intersection area).

    Args:
        boxes: (G, 4) x, y, w, h of the persons of one image.
        valid: (G,) bool, persons that count (e.g. non-crowd with keypoints); default all.

    Returns:
        (G,) int64 O for every person (invalid persons are counted for nobody but get their own count).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    v = None if valid is None else np.asarray(valid, bool).reshape(-1)
    return overlap_matrix(b, v).sum(axis=1).astype(np.int64)


def v_bin(v: np.ndarray) -> np.ndarray:
    """Index into :data:`V_BINS`."""
    v = np.asarray(v)
    return np.where(v <= 5, 0, np.where(v <= 10, 1, 2))


def o_bin(o: np.ndarray) -> np.ndarray:
    """Index into :data:`O_BINS`."""
    o = np.asarray(o)
    return np.where(o == 0, 0, np.where(o <= 2, 1, 2))
