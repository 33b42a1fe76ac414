"""The vectorised sampler behind input-pose synthesis (PoseFix, Moon et al., CVPR 2019, Sec. 4).

It draws a class for every labelled (target person, joint) pair of a padded batch of images and places the input
keypoint in that class's region, all pairs at once. Regions are those of the diagnosis's rule
(:mod:`posefix_bench.codecs.taxonomy`, coco-analyze's): d(ks, a) = :func:`~posefix_bench.codecs.oks.ks_distance`
with sigma_j and the area a of the person whose joint is the centre (the target's for its own joints, the other
person's for a swap source), as the diagnosis measures the KS to each candidate with its person's area:

=========  ===============================================  ===========================================
class      sampled uniformly (by area) in                   accepted where ``classify_ks`` says
=========  ===============================================  ===========================================
good       the disc of radius d(0.85, target) around j      good
jitter     the annulus d(0.85)..d(0.5) around j             jitter
inversion  the disc d(0.5, target) around the symmetric     inversion
           joint
swap       the disc d(0.5, source) around the same or       swap
           symmetric joint of an overlapping person
miss       the annulus d(0.5)..d(0.1) around a candidate    miss
           (own, symmetric or a swap source, chosen
           uniformly), with that candidate's area
=========  ===============================================  ===========================================

"Accepted" is the shared taxonomy (:func:`~posefix_bench.codecs.taxonomy.classify_ks`) on the diagnosis's
candidates: the own joint, joint j of every other person of the image with it labelled, the own symmetric joint,
the symmetric joint of every other person, first maximum in that order, each with its person's area. Swap *sources*
are the overlapping counted persons' joints; exclusion uses everybody with the joint labelled. So a point
synthesised as a class is diagnosed as that class against the same ground truth.

Where the original draws ~500 candidate points one by one per joint, here each round draws the class of every
pair still to do, then candidate points of that class for every such pair (M / 8 first, then M at a time for the
pairs that found none), tests them by broadcasting and keeps the first accepted one (:func:`_place`). A class
whose region is empty drops out and the other classes renormalise (Sec. 4): an inversion or swap region is known to
be non-empty when its centre (the symmetric joint, a source joint) is itself classified as that class (only a
centre on the spot of an earlier row's joint is not), and only such centres are sampled around (a centre sharing
its spot with a smaller person's earlier-row joint still has points of its class around it; such exact
coincidences count as empty); jitter and miss regions count as empty when ~4 M samples found no point.

Random streams: every image of the batch has its own generator and draws only for its own pairs, in a fixed order,
so an image's poses depend on its generator alone, not on the batch it was processed in.

Shape legend: I images, G persons per image (padded), K keypoints, P labelled pairs, T targets, M samples,
C = 5 classes, S candidate joints per pair.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from posefix_bench.codecs.oks import keypoint_similarity, ks_distance
from posefix_bench.codecs.taxonomy import (
    ERROR_TYPES, GOOD, GOOD_KS, JITTER_KS, MISS_KS, classify_ks, labelled_counts, overlap_matrix,
)  # fmt: skip
from posefix_bench.structures.schema import KeypointSchema

__all__ = ["DEFAULT_SAMPLES", "ATTEMPTS", "Batch", "BatchResult", "Sampled", "sample_batch"]

DEFAULT_SAMPLES = 32  # candidate points per pair and attempt; PoseFix's loop tried up to ~500 one by one
# successive attempts: (samples as a fraction of M, radius scale for the classes whose region contains its centre);
# a small first attempt settles most pairs (regions accept most of their samples), the rest get M points per attempt
ATTEMPTS = ((1 / 8, 1.0), (1.0, 1.0), (1.0, 0.1), (1.0, 0.01), (1.0, 0.0))
_FAR = 1e100  # coordinates of a candidate that does not exist (squared distances stay finite)
# per class, the inner and outer radius of its region as indices into _Pairs.radii (0, d(0.85), d(0.5), d(0.1))
_BOUNDS = np.array([(0, 1), (1, 2), (0, 2), (0, 2), (2, 3)])


@dataclass(frozen=True)
class Batch:
    """Ground truth of I images, padded to G persons (padding: unlabelled, not counted, not a target).

    Attributes:
        keypoints: (I, G, K, 3) x, y, v; areas: (I, G); boxes: (I, G, 4) x, y, w, h.
        counted: (I, G) bool, persons that count in O and can be swap sources (must have a labelled keypoint).
            Every person with a labelled joint is a candidate of the classification, counted or not (the
            diagnosis classifies against every annotation of the image).
        targets: (I, G) bool, persons to synthesise.
    """

    keypoints: np.ndarray
    areas: np.ndarray
    boxes: np.ndarray
    counted: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True, kw_only=True)
class Sampled:
    """What the sampler drew for each of T targets: the fields a batch's result and an image's result share
    (keyword-only, after the fields of the subclass).

    Attributes:
        cls: (T, K) class codes into ERROR_TYPES, -1 where the joint is unlabelled.
        ks, ks_near: (T, K) KS with the own joint and with the nearest candidate; NaN where unlabelled.
        probabilities: (T, K, C) the class probabilities sampled from (empty regions dropped); 0 where unlabelled.
        v, o: (T,) labelled keypoints V and overlapping persons O.
    """

    cls: np.ndarray
    ks: np.ndarray
    ks_near: np.ndarray
    probabilities: np.ndarray
    v: np.ndarray
    o: np.ndarray

    def sampled(self, rows) -> dict[str, np.ndarray]:
        """The :class:`Sampled` fields at ``rows`` (an index into the T targets), as keyword arguments."""
        return {f.name: getattr(self, f.name)[rows] for f in fields(Sampled)}


@dataclass(frozen=True)
class BatchResult(Sampled):
    """The synthesised targets of a batch, image-major then person order (T targets).

    Attributes:
        image, person: (T,) position of each target in the batch.
        xy: (T, K, 2) synthesised positions (0 where unlabelled).
        cls, ks, ks_near, probabilities, v, o: see :class:`Sampled`.
    """

    image: np.ndarray
    person: np.ndarray
    xy: np.ndarray


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
    pairs = _Pairs(batch, overlap, schema)
    target = row[pairs.i, pairs.t]
    eff = _normalise(mix.probabilities(v, o)[target, pairs.k] * pairs.possible)  # (P, C)
    streams = _Streams(rngs, pairs.i)
    xy, cls, ks, near, eff = _draw(pairs, eff, streams, samples)
    shape, c_n = (ti.size, schema.num_keypoints), len(ERROR_TYPES)
    out = BatchResult(ti, tp, np.zeros(shape + (2,)), cls=np.full(shape, -1, dtype=np.int64),
                      ks=np.full(shape, np.nan), ks_near=np.full(shape, np.nan), probabilities=np.zeros(shape + (c_n,)),
                      v=v.astype(np.int64), o=o.astype(np.int64))
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

    Candidates per pair (S columns): own joint, own symmetric joint, then joint j of every other person of the image
    that has it labelled, then (when j has a partner) their joint flip(j) (coco-analyze's row order; each group as
    wide as the busiest pair needs, ``_FAR`` in the padding, whose KS 0 never changes a class). ``cand_area`` is
    each candidate's person's area, ``masks`` says around which candidates each class samples, ``possible`` (P, C)
    which classes have a non-empty region, ``radii`` (4, P, S) the distances 0, d(0.85), d(0.5), d(0.1) on each
    candidate's scale.
    """

    def __init__(self, batch: Batch, overlap: np.ndarray, schema: KeypointSchema):
        kp = batch.keypoints
        lab = kp[..., 2] > 0
        flip, has_p = schema.flip_index, schema.has_partner
        self.i, self.t, self.k = np.nonzero(batch.targets[..., None] & lab)  # (P,)
        i, t, k, fk = self.i, self.t, self.k, flip[self.k]
        self.area, self.sigma = batch.areas[i, t], schema.sigma_array[k]
        self.own, self.sym = kp[i, t, k, :2], kp[i, t, fk, :2]
        self.sym_ok = has_p[k] & lab[i, t, fk]
        not_self = np.arange(kp.shape[1])[None, :] != t[:, None]  # (P, G)
        groups = []  # the others' joint j, then their joint flip(j): (positions, areas, exists, swap source)
        for jj, ok in ((k, lab[i, :, k] & not_self), (fk, lab[i, :, fk] & not_self & has_p[k][:, None])):
            keep = np.argsort(~ok, axis=1, kind="stable")[:, : int(ok.sum(1).max(initial=0))]  # existing first
            ok = np.take_along_axis(ok, keep, 1)
            pos = np.where(ok[..., None], np.take_along_axis(kp[i, :, jj, :2], keep[..., None], 1), _FAR)
            groups.append((pos, np.where(ok, np.take_along_axis(batch.areas[i], keep, 1), 1.0), ok,
                           ok & np.take_along_axis(overlap[i, t], keep, 1)))  # counted, overlapping persons
        (o_pos, o_area, o_ok, o_src), (m_pos, m_area, _, m_src) = groups
        self.others = ((o_pos, o_area), (m_pos, m_area))
        self.cand = np.concatenate([self.own[:, None], self.sym[:, None], o_pos, m_pos], axis=1)  # (P, S, 2)
        a = self.area[:, None]
        self.cand_area = np.concatenate([a, a, o_area, m_area], axis=1)  # (P, S)
        # an inversion / swap region is non-empty when its centre is classified as the class (module docstring).
        # There its own KS is 1, the best there is: it wins unless an earlier row also has KS 1 (a joint on the
        # same spot): the own joint or another person's same joint for the inversion centre, the own joint (and,
        # for a mirrored source, the own symmetric joint) for a swap source.
        def on(pts, centre, area):  # (P, X, 2) points, (P, Y, 2) joints, (P, Y) areas -> (P, X, Y) KS == 1
            d2 = ((pts[:, :, None] - centre[:, None]) ** 2).sum(-1)
            return keypoint_similarity(d2[..., None], area[:, None], self.sigma[:, None, None, None])[..., 0] >= 1.0

        own, sym = self.own[:, None], self.sym[:, None]
        inv_ok = self.sym_ok & ~on(sym, own, a)[:, 0, 0] & ~(on(sym, o_pos, o_area)[:, 0] & o_ok).any(-1)
        o_src = o_src & ~on(o_pos, own, a)[..., 0]
        m_src = m_src & ~on(m_pos, own, a)[..., 0] & ~(self.sym_ok[:, None] & on(m_pos, sym, a)[..., 0])
        source_ok = np.concatenate([o_src, m_src], axis=1)
        yes = np.ones_like(inv_ok)
        self.possible = np.stack([yes, yes, inv_ok, source_ok.any(-1), yes], axis=-1)  # (P, C)
        col, none = yes[:, None], np.zeros_like(source_ok)
        self.masks = np.stack([  # (C, P, S): the centres each class samples around
            np.concatenate([col, ~col, none], axis=1),  # good: own joint
            np.concatenate([col, ~col, none], axis=1),  # jitter: own joint
            np.concatenate([~col, inv_ok[:, None], none], axis=1),  # inversion: symmetric joint
            np.concatenate([~col, ~col, source_ok], axis=1),  # swap: overlapping persons' j / partner
            np.concatenate([col, self.sym_ok[:, None], source_ok], axis=1),  # miss: any of those
        ])
        self.radii = np.zeros((4,) + self.cand_area.shape)  # (4, P, S): 0, d(0.85), d(0.5), d(0.1)
        levels = np.array([GOOD_KS, JITTER_KS, MISS_KS])[:, None]
        for j in np.unique(k):  # per joint: its sigma, each candidate's area
            rows = k == j
            self.radii[1:, rows] = ks_distance(levels, self.cand_area[rows].ravel(), schema.sigma_array[j:j + 1]
                                               )[..., 0].reshape(3, int(rows.sum()), -1)

    def __len__(self) -> int:
        return int(self.k.shape[0])

    def similarities(self, pts: np.ndarray, idx: np.ndarray):
        """(M, n, 2) points of pairs ``idx`` -> (M, n) KS to the own joint, the others' joint j, the own symmetric
        joint and the others' flip(j), each with its person's area: :func:`classify_ks`'s arguments (NaN / -1
        where there is none)."""
        sig = self.sigma[idx][:, None]

        def ks(d2, area):  # d2 (M, n, X), area (n, X) -> (M, n, X)
            return keypoint_similarity(d2[..., None], area, sig[..., None])[..., 0]

        a = self.area[idx][:, None]
        ks_own = ks(((pts - self.own[idx]) ** 2).sum(-1)[..., None], a)[..., 0]
        ks_sym = np.where(self.sym_ok[idx], ks(((pts - self.sym[idx]) ** 2).sum(-1)[..., None], a)[..., 0], np.nan)
        best = []
        for pos, area in self.others:
            other = pos[idx]  # (n, X, 2)
            dx = pts[..., None, 0] - other[..., 0]
            dy = pts[..., None, 1] - other[..., 1]
            best.append(ks(dx * dx + dy * dy, area[idx]).max(axis=-1, initial=-1.0))
        return ks_own, best[0], ks_sym, best[1]


def _normalise(p: np.ndarray) -> np.ndarray:
    """Rows of class weights -> probabilities; an all-zero row becomes "good"."""
    total = p.sum(axis=-1, keepdims=True)
    good = np.eye(p.shape[-1])[GOOD]
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), good)


def _pick(mask: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One of S candidates uniformly per sample: (n, S) allowed, (M, n) uniforms -> (M, n) candidate index."""
    count = mask.sum(axis=-1)  # (n,)
    rank = np.minimum((u * count).astype(np.int64), np.maximum(count - 1, 0))  # (M, n)
    return np.argmax(np.cumsum(mask, axis=-1)[None] > rank[..., None], axis=-1)


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
        pick = _pick(pairs.masks[cs, sub], u[2])  # (M, n) centre of each sample
        centre = pairs.cand[sub[None], pick]
        lo, hi = (pairs.radii[_BOUNDS[cs, e][None], sub[None], pick] for e in (0, 1))  # on the centre's scale
        hi = np.where(lo == 0, hi * scale, hi)
        radius = np.sqrt(lo**2 + u[0] * (hi**2 - lo**2))
        angle = 2.0 * np.pi * u[1]
        pts = centre + radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # (M, n, 2)
        sims = pairs.similarities(pts, sub)  # own, other, sym, other_sym: (M, n) each
        accepted = classify_ks(*sims) == cs
        ok = accepted.any(axis=0)
        m, col = np.argmax(accepted, axis=0)[ok], np.flatnonzero(ok)
        hit = sub[ok]
        xy[hit], ks[hit] = pts[m, col], sims[0][m, col]
        near[hit] = np.max([np.nan_to_num(a[m, col], nan=-1.0) for a in sims], axis=0)
        found[pending[ok]] = True
        pending = pending[~ok]
        if not pending.size:
            break
    return found
