"""The vectorised sampler behind input-pose synthesis (PoseFix, Moon et al., CVPR 2019, Sec. 4).

It draws a class for every labelled (target person, joint) pair of a padded batch of images and places the input
keypoint in that class's region, all pairs at once. Regions (d(ks) = :func:`~posefix_bench.codecs.oks.ks_distance`
with the TARGET person's area and sigma_j for every candidate, as the diagnosis measures,
:mod:`posefix_bench.codecs.taxonomy`):

=========  ==========================================  ===========================================
class      sampled uniformly (by area) in              accepted where ``classify_ks`` says
=========  ==========================================  ===========================================
good       the disc of radius d(0.85) around j         good
jitter     the annulus d(0.85)..d(0.5) around j        jitter
inversion  the disc d(0.5) around the symmetric joint  inversion
swap       the disc d(0.5) around the same or          swap
           symmetric joint of an overlapping person
miss       the annulus d(0.5)..d(0.1) around a         miss
           candidate: the own, the symmetric or a
           swap-source joint, chosen uniformly
=========  ==========================================  ===========================================

"Accepted" is the shared taxonomy (:func:`~posefix_bench.codecs.taxonomy.classify_ks`) on the diagnosis's
candidate sets: own joint, own symmetric joint, and joint j or its symmetric joint of every other counted person of
the image (swap *sources* are the overlapping persons' joints; exclusion uses everybody). So a point synthesised as
a class is diagnosed as that class against the same ground truth.

Where the original draws ~500 candidate points one by one per joint, here each round draws the class of every
pair still to do, then candidate points of that class for every such pair (M / 8 first, then M at a time for the
pairs that found none), tests them by broadcasting and keeps the first accepted one (:func:`_place`). A class
whose region is empty drops out and the other classes renormalise (Sec. 4): inversion and swap regions are known to
be non-empty exactly when the symmetric / a source joint does not coincide with a candidate that wins ties; jitter
and miss regions count as empty when ~4 M samples found no point.

Random streams: every image of the batch has its own generator and draws only for its own pairs, in a fixed order,
so an image's poses depend on its generator alone, not on the batch it was processed in.

Shape legend: I images, G persons per image (padded), K keypoints, P labelled pairs, T targets, M samples,
C = 5 classes, S candidate joints per pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from posefix_bench.codecs.oks import keypoint_similarity, ks_distance
from posefix_bench.codecs.taxonomy import (
    ERROR_TYPES, GOOD, GOOD_KS, JITTER_KS, MISS_KS, classify_ks, labelled_counts, overlap_matrix,
)  # fmt: skip
from posefix_bench.structures.schema import KeypointSchema

__all__ = ["DEFAULT_SAMPLES", "ATTEMPTS", "Batch", "BatchResult", "sample_batch"]

DEFAULT_SAMPLES = 32  # candidate points per pair and attempt; PoseFix's loop tried up to ~500 one by one
# successive attempts: (samples as a fraction of M, radius scale for the classes whose region contains its centre);
# a small first attempt settles most pairs (regions accept most of their samples), the rest get M points per attempt
ATTEMPTS = ((1 / 8, 1.0), (1.0, 1.0), (1.0, 0.1), (1.0, 0.01), (1.0, 0.0))
_FAR = 1e100  # coordinates of a candidate that does not exist (squared distances stay finite, KS is 0)


@dataclass(frozen=True)
class Batch:
    """Ground truth of I images, padded to G persons (padding: unlabelled, not counted, not a target).

    Attributes:
        keypoints: (I, G, K, 3) x, y, v; areas: (I, G); boxes: (I, G, 4) x, y, w, h.
        counted: (I, G) bool, persons that are candidates and count in O (must have a labelled keypoint).
        targets: (I, G) bool, persons to synthesise.
    """

    keypoints: np.ndarray
    areas: np.ndarray
    boxes: np.ndarray
    counted: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True)
class BatchResult:
    """The synthesised targets of a batch, image-major then person order (T targets).

    Attributes:
        image, person: (T,) position of each target in the batch.
        xy: (T, K, 2) synthesised positions (0 where unlabelled).
        cls: (T, K) class codes into ERROR_TYPES, -1 where the joint is unlabelled.
        ks, ks_near: (T, K) KS with the own joint and with the nearest candidate; NaN where unlabelled.
        probabilities: (T, K, C) the class probabilities sampled from (empty regions dropped); 0 where unlabelled.
        v, o: (T,) labelled keypoints V and overlapping persons O.
    """

    image: np.ndarray
    person: np.ndarray
    xy: np.ndarray
    cls: np.ndarray
    ks: np.ndarray
    ks_near: np.ndarray
    probabilities: np.ndarray
    v: np.ndarray
    o: np.ndarray


def sample_batch(batch: Batch, mix, rngs: Sequence[np.random.Generator], schema: KeypointSchema,
                 samples: int = DEFAULT_SAMPLES) -> BatchResult:
    """Synthesise every target of ``batch`` with ``mix`` (an :class:`~posefix_bench.synthesis.mixes.ErrorMix`);
    ``rngs[i]`` is image i's random stream."""
    kp = batch.keypoints
    counted = batch.counted & (kp[..., 2] > 0).any(-1)
    overlap = overlap_matrix(batch.boxes, counted)  # (I, G, G)
    ti, tp = np.nonzero(batch.targets)  # (T,)
    v, o = labelled_counts(kp[ti, tp]), overlap[ti, tp].sum(-1)
    row = np.full(batch.targets.shape, -1, dtype=np.int64)
    row[ti, tp] = np.arange(ti.size)
    pairs = _Pairs(batch, counted, overlap, schema)
    target = row[pairs.i, pairs.t]
    eff = _normalise(mix.probabilities(v, o)[target, pairs.k] * pairs.possible)  # (P, C)
    streams = _Streams(rngs, pairs.i)
    xy, cls, ks, near, eff = _draw(pairs, eff, streams, samples)
    shape, c_n = (ti.size, schema.num_keypoints), len(ERROR_TYPES)
    out = BatchResult(ti, tp, np.zeros(shape + (2,)), np.full(shape, -1, dtype=np.int64), np.full(shape, np.nan),
                      np.full(shape, np.nan), np.zeros(shape + (c_n,)), v.astype(np.int64), o.astype(np.int64))
    for name, value in (("xy", xy), ("cls", cls), ("ks", ks), ("ks_near", near), ("probabilities", eff)):
        getattr(out, name)[target, pairs.k] = value
    return out


class _Streams:
    """Per-image random numbers for subsets of pairs (``idx`` sorted, so pairs come image by image)."""

    def __init__(self, rngs: Sequence[np.random.Generator], image: np.ndarray):
        self.rngs, self.image = rngs, image

    def random(self, idx: np.ndarray, shape: tuple = ()) -> np.ndarray:
        """``shape + (len(idx),)`` uniform numbers, the pairs of image m drawn from ``rngs[m]``."""
        counts = np.bincount(self.image[idx], minlength=len(self.rngs))
        parts = [self.rngs[m].random(shape + (int(counts[m]),)) for m in np.flatnonzero(counts)]
        return np.concatenate(parts, axis=-1) if parts else np.zeros(shape + (0,))


class _Pairs:
    """The P labelled (image, target, joint) pairs of a batch, flattened, with their candidate joints.

    Candidates per pair: own joint, own symmetric joint, then joint j and its partner of the other counted persons
    of the image that have them labelled (S = 2 + the most any pair has; ``_FAR`` in the padding). ``masks`` says
    around which candidates each class samples; ``possible`` (P, C) which classes have a non-empty region.
    """

    def __init__(self, batch: Batch, counted: np.ndarray, overlap: np.ndarray, schema: KeypointSchema):
        kp = batch.keypoints
        g_n = kp.shape[1]
        lab = kp[..., 2] > 0
        flip, has_p = schema.flip_index, schema.has_partner
        self.i, self.t, self.k = np.nonzero(batch.targets[..., None] & lab)  # (P,)
        i, t, k, fk = self.i, self.t, self.k, flip[self.k]
        self.area, self.sigma = batch.areas[i, t], schema.sigma_array[k]
        self.own, self.sym = kp[i, t, k, :2], kp[i, t, fk, :2]
        self.sym_ok = has_p[k] & lab[i, t, fk]
        p_n = k.size
        other_pos = np.stack([kp[i, :, k, :2], kp[i, :, fk, :2]], axis=2).reshape(p_n, 2 * g_n, 2)  # (P, 2G, 2)
        ok = np.stack([lab[i, :, k], lab[i, :, fk] & has_p[k][:, None]], axis=2)  # (P, G, 2)
        not_self = counted[i] & (np.arange(g_n)[None, :] != t[:, None])  # (P, G)
        other_ok = (ok & not_self[..., None]).reshape(p_n, 2 * g_n)
        # inversion / swap regions contain their centre unless it coincides with a joint winning ties (own, sym)
        differs = (other_pos != self.own[:, None]).any(-1) & (
            ~self.sym_ok[:, None] | (other_pos != self.sym[:, None]).any(-1))
        source_ok = other_ok & np.repeat(overlap[i, t], 2, axis=1) & differs  # (P, 2G)
        # keep only the columns that exist (first), as many as the busiest pair needs: S shrinks from 2 + 2G
        keep = np.argsort(~other_ok, axis=1, kind="stable")[:, : int(other_ok.sum(1).max(initial=0))]
        other_pos = np.take_along_axis(other_pos, keep[..., None], axis=1)
        other_ok, source_ok = np.take_along_axis(other_ok, keep, 1), np.take_along_axis(source_ok, keep, 1)
        inv_ok = self.sym_ok & (self.sym != self.own).any(-1)
        yes = np.ones_like(inv_ok)
        self.possible = np.stack([yes, yes, inv_ok, source_ok.any(-1), yes], axis=-1)  # (P, C)
        self.other_pos = np.where(other_ok[..., None], other_pos, _FAR)
        self.cand = np.concatenate([self.own[:, None], self.sym[:, None], other_pos], axis=1)  # (P, S, 2)
        col, none = yes[:, None], np.zeros_like(other_ok)
        self.masks = np.stack([  # (C, P, S): the centres each class samples around
            np.concatenate([col, ~col, none], axis=1),  # good: own joint
            np.concatenate([col, ~col, none], axis=1),  # jitter: own joint
            np.concatenate([~col, inv_ok[:, None], none], axis=1),  # inversion: symmetric joint
            np.concatenate([~col, ~col, source_ok], axis=1),  # swap: overlapping persons' j / partner
            np.concatenate([col, self.sym_ok[:, None], source_ok], axis=1),  # miss: any of those
        ])
        radii = ks_distance(np.array([GOOD_KS, JITTER_KS, MISS_KS])[:, None], self.area[None], schema.sigma_array)
        r85, r50, r10 = radii[:, np.arange(k.size), k]  # (3, P, K) -> 3 x (P,)
        zero = np.zeros_like(r85)
        self.bounds = np.stack([(zero, r85), (r85, r50), (zero, r50), (zero, r50), (r50, r10)])  # (C, 2, P)

    def __len__(self) -> int:
        return int(self.k.shape[0])

    def similarities(self, pts: np.ndarray, idx: np.ndarray):
        """(M, n, 2) points of pairs ``idx`` -> KS to own, symmetric (NaN if none), best other (NaN if none)."""
        area, sig = self.area[idx], self.sigma[idx][:, None]

        def ks(d2):
            return keypoint_similarity(d2[..., None], area, sig)[..., 0]

        ks_own = ks(((pts - self.own[idx]) ** 2).sum(-1))
        ks_sym = np.where(self.sym_ok[idx], ks(((pts - self.sym[idx]) ** 2).sum(-1)), np.nan)
        other = self.other_pos[idx]  # (n, 2G, 2)
        dx = pts[..., None, 0] - other[..., 0]
        dy = pts[..., None, 1] - other[..., 1]
        d2 = (dx * dx + dy * dy).min(axis=-1, initial=np.inf)
        ks_other = np.where(d2 < _FAR, ks(np.minimum(d2, _FAR)), np.nan)
        return ks_own, ks_sym, ks_other


def _normalise(p: np.ndarray) -> np.ndarray:
    """Rows of class weights -> probabilities; an all-zero row becomes "good"."""
    total = p.sum(axis=-1, keepdims=True)
    good = np.eye(p.shape[-1])[GOOD]
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), good)


def _pick(positions: np.ndarray, mask: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One of S candidates uniformly per sample: (n, S, 2) positions, (n, S) allowed, (M, n) uniforms -> (M, n, 2)."""
    count = mask.sum(axis=-1)  # (n,)
    rank = np.minimum((u * count).astype(np.int64), np.maximum(count - 1, 0))  # (M, n)
    idx = np.argmax(np.cumsum(mask, axis=-1)[None] > rank[..., None], axis=-1)  # (M, n)
    return positions[np.arange(positions.shape[0])[None], idx]


def _draw(pairs: _Pairs, eff: np.ndarray, streams: _Streams, samples: int):
    """Draw a class for every pair and place the keypoint in its region.

    Each round draws the class of the pairs still to do and places their keypoints (:func:`_place`). A pair whose
    class region turned out empty loses that class (the row renormalises) and is redrawn in the next round; "good"
    always succeeds (the own joint itself is good), so at most C rounds run.

    Returns (P, 2) points, (P,) classes, (P,) KS own and nearest, and the (P, C) probabilities finally used.
    """
    n_pairs = len(pairs)
    xy, cls = pairs.own.copy(), np.full(n_pairs, GOOD, dtype=np.int64)
    ks, near = np.ones(n_pairs), np.ones(n_pairs)
    todo = np.arange(n_pairs)
    while todo.size:
        cum = np.cumsum(eff[todo], axis=-1)
        c = np.argmax(streams.random(todo)[:, None] < cum / cum[:, -1:], axis=-1)  # (n,)
        found = _place(pairs, todo, c, streams, samples, (xy, ks, near))
        done = found | (c == GOOD)  # good without an accepted sample keeps the own joint (KS 1)
        cls[todo[done]] = c[done]
        failed = todo[~done]
        eff[failed, c[~done]] = 0.0
        eff[failed] = _normalise(eff[failed])
        todo = failed
    return xy, cls, ks, near, eff


def _place(pairs: _Pairs, idx: np.ndarray, c: np.ndarray, streams: _Streams, samples: int, out) -> np.ndarray:
    """Sample class ``c[i]`` for pair ``idx[i]`` in attempts (:data:`ATTEMPTS`); write the first accepted point.

    An attempt samples uniformly (by area) in the class's disc or annulus around a centre chosen uniformly among the
    class's centres, and the taxonomy accepts or rejects every point; the first accepted point of i.i.d. uniform
    samples is uniform over the region. Pairs without an accepted point get the next attempt; classes whose region
    is a disc around the centre (good, inversion, swap) shrink it by the attempt's scale in the last ones, down to
    the centre itself, which always lies in the region when the class is possible. Jitter and miss keep their
    annulus: no accepted point in 4 M + M / 8 samples means an empty region.

    Args:
        idx: (n,) sorted pairs; c: (n,) class codes; out: (xy (P, 2), ks (P,), near (P,)) written in place.

    Returns:
        (n,) bool, which pairs got a point.
    """
    xy, ks, near = out
    found = np.zeros(idx.size, bool)
    pending = np.arange(idx.size)
    for fraction, scale in ATTEMPTS:
        sub, cs = idx[pending], c[pending]
        u = streams.random(sub, (3, max(1, round(fraction * samples))))
        centre = _pick(pairs.cand[sub], pairs.masks[cs, sub], u[2])
        lo, hi = pairs.bounds[cs, 0, sub], pairs.bounds[cs, 1, sub]
        hi = np.where(lo == 0, hi * scale, hi)
        radius = np.sqrt(lo**2 + u[0] * (hi**2 - lo**2))
        angle = 2.0 * np.pi * u[1]
        pts = centre + radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # (M, n, 2)
        own, sym, other = pairs.similarities(pts, sub)
        accepted = classify_ks(own, sym, other) == cs
        ok = accepted.any(axis=0)
        m, col = np.argmax(accepted, axis=0)[ok], np.flatnonzero(ok)
        hit = sub[ok]
        xy[hit], ks[hit] = pts[m, col], own[m, col]
        near[hit] = np.fmax(np.fmax(own[m, col], sym[m, col]), other[m, col])
        found[pending[ok]] = True
        pending = pending[~ok]
        if not pending.size:
            break
    return found
