"""Paired bootstrap intervals over validation images: COCO keypoint AP (and per-image counts) on resampled images.

Method: the nonparametric bootstrap with its percentile interval (Efron & Tibshirani, "An Introduction to the
Bootstrap", 1993, ch. 13), over test items and paired as the field compares two systems on one test set (Koehn,
"Statistical Significance Tests for Machine Translation Evaluation", EMNLP 2004; Berg-Kirkpatrick et al., EMNLP 2012):
draw the validation images with replacement, compute the metric of *both* sides on the same draw, and read the 2.5
and 97.5 percentiles of the difference over the draws.

What is resampled is pycocotools' own per-image matching (:func:`posefix_bench.evaluation.coco_eval.
per_image_evaluation`, ``COCOeval.evaluateImg``, area range "all", top 20 detections): per image and OKS threshold the
detections' scores, matched and ignore flags, and the image's number of non-ignored ground truths (a
:class:`MatchTable`). Matching is per image, so a drawn image contributes the same matches each time it is drawn; AP
on a draw is ``COCOeval.accumulate`` of the drawn images, which :func:`resample_ap` recomputes for many draws at once
instead of a COCOeval per draw:

- the draw is a multiset; its images are taken in image order, copies of one image side by side (the order
  ``COCOeval`` sees when the copies get new, consecutive image ids), so the detections' order is (score descending;
  then image, copy, place within the image): the order of the identity draw with each run of equally scored
  detections of one image repeated as a block;
- cumulative true / false positives per threshold (padded rows, a padding detection counts as neither), precision
  ``tp / (tp + fp + eps)`` and its suffix maximum, as ``accumulate`` computes them;
- the precision at each recall threshold r: the first detection whose recall ``tp / npig`` reaches r, found as the
  first cumulative tp of at least the smallest integer k with ``k / npig >= r`` (the same float comparison, on
  integers), 0 where the recall never reaches r; AP is the mean over the thresholds.

Where no image has two equally scored detections (continuous scores), each detection's copies sit side by side and a
weighted form needs each detection once per draw and the precision only at true positives
(:func:`_chunk_ap_weighted`, about 9x faster); the general form expands every copy. With every image drawn once
this is pycocotools' AP exactly (tests check it, and every draw against COCOeval on the
resampled image list). Shape legend: I images, D detections (image by image), T OKS thresholds, R recall thresholds,
B draws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.coco_eval import per_image_evaluation
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY

__all__ = ["DEFAULT_RESAMPLES", "DEFAULT_SEED", "LEVEL", "REC_THRS", "MatchTable", "match_table", "resample_counts",
           "resample_ap", "resample_sums", "interval", "delta_record", "identity_ap", "paired_interval",
           "check_bootstrap"]

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
LEVEL = 0.95  # the percentile interval's coverage
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)  # pycocotools' recThrs
_EPS = np.spacing(1)  # pycocotools' precision denominator guard
_CHUNK = 1 << 22  # array elements (T x draws x padded detections) per block of draws


@dataclass(frozen=True)
class MatchTable:
    """pycocotools' per-image matches of one results list on a set of images (see the module docstring).

    Attributes:
        image_ids: (I,) the evaluated images, sorted.
        det_image: (D,) index into ``image_ids`` of each detection; detections image by image, each image's in
            ``evaluateImg``'s order (score descending, file order among equal scores).
        scores: (D,) detection scores.
        matched: (T, D) bool, matched to a ground truth at each OKS threshold.
        ignored: (T, D) bool, matched to an ignore region (neither true nor false positive).
        npig: (I,) number of non-ignored ground truths per image.
        thresholds: (T,) the OKS thresholds.
    """

    image_ids: np.ndarray
    det_image: np.ndarray
    scores: np.ndarray
    matched: np.ndarray
    ignored: np.ndarray
    npig: np.ndarray
    thresholds: np.ndarray

    def to_arrays(self) -> dict:
        """The fields as named arrays (``numpy.savez``)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, arrays) -> "MatchTable":
        return cls(**{k: np.asarray(arrays[k]) for k in cls.__dataclass_fields__})


def match_table(gt: CocoDataset, results: Sequence[dict], absent_policy: str = DEFAULT_ABSENT_POLICY,
                image_ids=None, person_ids=None) -> MatchTable:
    """The :class:`MatchTable` of validated results (``image_ids`` / ``person_ids`` as in
    :func:`~posefix_bench.evaluation.coco_eval.evaluate`: a person subset makes the other persons ignore regions)."""
    ids, records, thresholds = per_image_evaluation(gt, results, absent_policy, image_ids, person_ids)
    t = len(thresholds)
    det_image, scores, matched, ignored, npig = [], [], [], [], np.zeros(len(ids), dtype=np.int64)
    for i, e in enumerate(records):
        if e is None:
            continue
        n = len(e["dtScores"])
        det_image.append(np.full(n, i, dtype=np.int64))
        scores.append(np.asarray(e["dtScores"], dtype=np.float64))
        matched.append(np.asarray(e["dtMatches"]).reshape(t, n) > 0)
        ignored.append(np.asarray(e["dtIgnore"], dtype=bool).reshape(t, n))
        npig[i] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
    cat = (lambda xs, empty: np.concatenate(xs, axis=-1) if xs else empty)  # noqa: E731
    return MatchTable(image_ids=np.asarray(ids, dtype=np.int64), det_image=cat(det_image, np.zeros(0, np.int64)),
                      scores=cat(scores, np.zeros(0)), matched=cat(matched, np.zeros((t, 0), bool)),
                      ignored=cat(ignored, np.zeros((t, 0), bool)), npig=npig, thresholds=thresholds)


def check_bootstrap(settings) -> dict:
    """Validated bootstrap settings (a profile's ``bootstrap=dict(resamples=N, seed=S)``; None: the defaults)."""
    spec = dict(settings or {})
    unknown = sorted(set(spec) - {"resamples", "seed"})
    if unknown:
        raise PosefixError(f"bootstrap settings: unknown key {unknown[0]!r} (known: resamples, seed)")
    resamples, seed = spec.get("resamples", DEFAULT_RESAMPLES), spec.get("seed", DEFAULT_SEED)
    if not isinstance(resamples, int) or isinstance(resamples, bool) or resamples < 1:
        raise PosefixError(f"bootstrap settings: resamples {resamples!r} must be a positive integer")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise PosefixError(f"bootstrap settings: seed {seed!r} must be a non-negative integer")
    return {"resamples": resamples, "seed": seed}


def resample_counts(n_images: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(B, I) how often each image is drawn in each of ``resamples`` draws of ``n_images`` images with
    replacement, from ``numpy.random.default_rng(seed)``: the same (images, resamples, seed), the same draws."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_images, size=(resamples, n_images))
    flat = (draws + (np.arange(resamples) * n_images)[:, None]).ravel()
    return np.bincount(flat, minlength=resamples * n_images).reshape(resamples, n_images)


def _groups(table: MatchTable):
    """The identity draw's detection order (D,) and its runs of equally scored detections of one image:
    (order, run starts (G,), run sizes (G,), run images (G,))."""
    order = np.argsort(-table.scores, kind="mergesort")  # COCOeval.accumulate's order: image by image, stable
    s, img = table.scores[order], table.det_image[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (s[1:] != s[:-1]) | (img[1:] != img[:-1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(order)))
    return order, starts, sizes, img[starts]


def _expand(order, starts, sizes, run_img, counts):
    """Detections of each draw in accumulate's order: (rows (n,), detection (n,), place in row (n,), row lengths
    (Bc,)) for the draws' counts (Bc, I)."""
    bc, g = counts.shape[0], len(starts)
    rep = counts[:, run_img]  # (Bc, G) copies of each run
    units = np.repeat(np.arange(bc * g), rep.ravel())
    u_run = units % g
    u_size = sizes[u_run]
    if (sizes == 1).all():
        pos, rows = starts[u_run], units // g
    else:
        first = np.cumsum(u_size) - u_size
        pos = np.arange(int(u_size.sum())) - np.repeat(first, u_size) + np.repeat(starts[u_run], u_size)
        rows = np.repeat(units // g, u_size)
    lengths = np.bincount(rows, minlength=bc)
    place = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return rows, order[pos], place, lengths


def _first_k(npig: np.ndarray) -> np.ndarray:
    """(Bc, R) the smallest integer k with ``k / npig >= r`` for each recall threshold r (float, as accumulate)."""
    n = np.maximum(npig, 1).astype(np.float64)[:, None]
    k = np.maximum(np.ceil(REC_THRS[None, :] * n) - 2, 0)
    for _ in range(4):
        k = np.where(k / n >= REC_THRS[None, :], k, k + 1)
    return k.astype(np.int64)


def _chunk_ap(table: MatchTable, groups, counts: np.ndarray) -> np.ndarray:
    t, d = table.matched.shape
    rows, det, place, lengths = _expand(*groups, counts)
    bc, width = counts.shape[0], max(int(lengths.max(initial=0)), 1)
    idx = np.full((bc, width), d, dtype=np.int64)  # column d: a padding detection, neither tp nor fp
    idx[rows, place] = det
    tps = np.zeros((t, d + 1), dtype=np.int32)
    fps = np.zeros((t, d + 1), dtype=np.int32)
    tps[:, :d] = table.matched & ~table.ignored
    fps[:, :d] = ~table.matched & ~table.ignored
    tp = np.cumsum(tps[:, idx], axis=2)  # (T, Bc, W)
    fp = np.cumsum(fps[:, idx], axis=2)
    tpf = tp.astype(np.float64)
    pr = tpf / (fp + tpf + _EPS)
    env = np.maximum.accumulate(pr[..., ::-1], axis=2)[..., ::-1]
    npig = counts @ table.npig  # (Bc,)
    k = np.minimum(_first_k(npig), width + 1)  # width + 1: never reached
    stride = width + 2
    offset = (np.arange(t * bc) * stride).reshape(t, bc)
    keys = (tp + offset[..., None]).ravel()
    where = np.searchsorted(keys, (k[None, :, :] + offset[..., None]).ravel(), side="left").reshape(t, bc, -1)
    where -= (np.arange(t * bc) * width).reshape(t, bc)[..., None]
    found = where < width
    q = np.where(found, np.take_along_axis(env, np.minimum(where, width - 1), axis=2), 0.0)  # (T, Bc, R)
    ap = q.transpose(1, 0, 2).reshape(bc, -1).mean(axis=1)
    return np.where(npig > 0, ap, np.nan)


def _chunk_ap_weighted(table: MatchTable, order: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`_chunk_ap` where no image has two equally scored detections: each detection's copies are then side by
    side, and only the last copy of a run of true positives can be where the precision envelope is read (precision
    rises along a run of true positives, a false positive leaves the recall as it was), so each row needs the
    detections once, weighted by their image's copies, and the precision only at the true positives."""
    t = table.matched.shape[0]
    bc = counts.shape[0]
    w = counts[:, table.det_image[order]].astype(np.int64)  # (Bc, D) copies of each detection, accumulate's order
    tps = (table.matched & ~table.ignored)[:, order]
    fps = (~table.matched & ~table.ignored)[:, order]
    npig = counts @ table.npig
    k = _first_k(npig)  # (Bc, R)
    q = np.zeros((t, bc, len(REC_THRS)))
    for ti in range(t):
        cols, fcols = np.flatnonzero(tps[ti]), np.flatnonzero(fps[ti])
        if cols.size == 0:
            continue
        tp = np.cumsum(w[:, cols], axis=1)  # (Bc, n) true positives up to each true-positive detection
        fp = np.zeros((bc, fcols.size + 1), dtype=np.int64)
        np.cumsum(w[:, fcols], axis=1, out=fp[:, 1:])
        fp = fp[:, np.searchsorted(fcols, cols)]  # false positives before each true-positive detection
        tpf = tp.astype(np.float64)
        env = np.maximum.accumulate((tpf / (fp + tpf + _EPS))[:, ::-1], axis=1)[:, ::-1]
        n = cols.size
        stride = int(tp[:, -1].max(initial=0)) + 2
        kk = np.minimum(k, stride - 1)
        offset = (np.arange(bc) * stride)[:, None]
        where = np.searchsorted((tp + offset).ravel(), (kk + offset).ravel(), side="left").reshape(bc, -1)
        where -= (np.arange(bc) * n)[:, None]
        found = where < n
        q[ti] = np.where(found, np.take_along_axis(env, np.minimum(where, n - 1), axis=1), 0.0)
    ap = q.transpose(1, 0, 2).reshape(bc, -1).mean(axis=1)
    return np.where(npig > 0, ap, np.nan)


def resample_ap(table: MatchTable, counts: np.ndarray, weighted: bool | None = None) -> np.ndarray:
    """(B,) COCO AP (``COCOeval.stats[0]``) of each draw (counts (B, I): copies of each image; NaN where a draw has
    no non-ignored ground truth, where pycocotools gives -1). ``weighted``: None takes the weighted path where no
    image has two equally scored detections and the general one (every copy) otherwise; False forces the general
    path (the two agree where both apply)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != len(table.image_ids):
        raise PosefixError(f"bootstrap: draws over {counts.shape[-1]} images for a table of "
                           f"{len(table.image_ids)} images")
    groups = _groups(table)
    t = table.matched.shape[0]
    if weighted is not False and (groups[2] == 1).all():
        step = max(1, _CHUNK // (4 * max(1, table.scores.size)))
        return np.concatenate([_chunk_ap_weighted(table, groups[0], counts[lo:lo + step])
                               for lo in range(0, len(counts), step)])
    per_draw = max(1, int((counts @ np.bincount(table.det_image, minlength=counts.shape[1])).max(initial=0)))
    step = max(1, _CHUNK // (t * per_draw))
    return np.concatenate([_chunk_ap(table, groups, counts[lo:lo + step]) for lo in range(0, len(counts), step)])



def resample_sums(per_image: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, ...) sums of per-image quantities (I, ...) over each draw (counts (B, I))."""
    per_image = np.asarray(per_image, dtype=np.float64)
    return (np.asarray(counts, dtype=np.float64) @ per_image.reshape(per_image.shape[0], -1)).reshape(
        (len(counts),) + per_image.shape[1:])


def interval(samples: np.ndarray, level: float = LEVEL) -> list | None:
    """The percentile interval [lo, hi] of the finite samples (None without any)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    lo, hi = np.percentile(x, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def delta_record(base: np.ndarray, other: np.ndarray, base_value: float | None, other_value: float | None) -> dict:
    """``{"delta", "ci95", "base": {"value", "ci95"}, "other": {"value", "ci95"}}`` of two sides' values and their
    samples on the same draws (B,): the interval of ``other - base`` is taken draw by draw."""
    delta = None if base_value is None or other_value is None else float(other_value - base_value)
    return {"delta": delta, "ci95": interval(np.asarray(other) - np.asarray(base)),
            "base": {"value": base_value, "ci95": interval(base)},
            "other": {"value": other_value, "ci95": interval(other)}}


def identity_ap(table: MatchTable) -> float | None:
    """pycocotools' AP of the table's results (every image drawn once; None where it is undefined)."""
    ap = float(resample_ap(table, np.ones((1, len(table.image_ids)), dtype=np.int64))[0])
    return ap if np.isfinite(ap) else None


def paired_interval(base: MatchTable, other: MatchTable, resamples: int = DEFAULT_RESAMPLES,
                    seed: int = DEFAULT_SEED) -> dict:
    """AP of two results lists on the same images (``base``, ``other``: their :class:`MatchTable`), and the interval
    of ``other - base`` over draws shared by both sides.

    Returns :func:`delta_record` (``value``: the identity draw's AP, pycocotools') with ``resamples``, ``seed``,
    ``images``, ``undefined`` (draws without ground truth, left out of the intervals) and ``seconds``.
    """
    if not np.array_equal(base.image_ids, other.image_ids):
        raise PosefixError("bootstrap: the two results lists were evaluated on different images")
    t0 = time.perf_counter()
    counts = resample_counts(len(base.image_ids), resamples, seed)
    a, b = resample_ap(base, counts), resample_ap(other, counts)
    rec = delta_record(a, b, identity_ap(base), identity_ap(other))
    return dict(rec, resamples=int(resamples), seed=int(seed), images=len(base.image_ids),
                undefined=int((~np.isfinite(a) | ~np.isfinite(b)).sum()), seconds=time.perf_counter() - t0)
