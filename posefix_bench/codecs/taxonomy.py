"""The keypoint error taxonomy of Ronchi & Perona (ICCV 2017, Sec. 3.1), used by PoseFix (CVPR 2019, Sec. 4), with
the exact rules of the paper's reference implementation, coco-analyze (``COCOanalyze._find_kpt_errors`` in its
``pycocotools/cocoanalyze.py``, called by ``analyze(check_kpts=True)``).

One definition, shared by the diagnosis (which classifies an estimator's keypoints) and the synthesis (which places
input keypoints in the region of a chosen class), so that what is synthesised as "swap" is diagnosed as "swap", and
both mean what the published numbers mean. The rule is named :data:`TAXONOMY` (``"coco-analyze"``); the diagnosis
record carries that name in its ``taxonomy`` field.

For a detected keypoint j of a detection matched to ground-truth person p of image I, the rules and why:

0. Matching (done by :mod:`posefix_bench.evaluation.diagnosis`). coco-analyze runs its COCOeval, unchanged from
   pycocotools', with ``iouThrs = [0.1]``: greedy in descending score (stable), the top ``maxDets`` = 20 per
   image, regular ground truths before ignore regions, an equal OKS going to the later ground truth; it then
   classifies every detection matched to a ground truth whose ``num_keypoints`` is not 0. COCO's crowd regions
   have none, so that is every detection matched to a regular person.
1. Candidates. Every annotation of I as loaded (coco-analyze takes ``getAnnIds(imgIds=I)``: crowd regions and
   persons without labelled keypoints included) gives two candidates for joint j: its joint j and its joint
   flip(j) (the left/right mirrored pose; a joint without a partner mirrors onto itself). A candidate whose joint
   is unlabelled (v = 0) has KS -1 and never wins, so in practice the candidates are the labelled joints of every
   annotation; crowd regions and unlabelled persons, whose keypoints are all unlabelled, never count.
2. Scale. The KS to a candidate uses THAT annotation's area (coco-analyze fills ``areas`` row by row with each
   annotation's ``area``): being near another person's joint is measured on that person's scale, as the OKS would
   measure a detection of that person. (posefix-bench once measured every candidate with the matched person's
   area; that deviation is gone, together with the synthesis rule that needed it.)
3. Order. The candidates form rows own (p's joint j), others (joint j of every other annotation), own flipped
   (p's joint flip(j)), others flipped; the winner is the FIRST maximum of KS in that order (``np.argmax``). So
   ties go to the own joint, then to another person's same joint, then to the own symmetric joint; a joint
   without a partner (the nose) can never be an inversion, its mirrored row being the own row again.
4. Classes, from the best KS m and the winning row:

   =========  ===========================================  ====================================================
   good       m > 0.85 (strictly) on the own joint          coco-analyze ``oks_max > jitterKsThrs[1]``
   jitter     0.5 <= m < 0.85 on the own joint              ``>= jitterKsThrs[0]`` and ``< jitterKsThrs[1]``
   inversion  m >= 0.5 on the own flipped row
   swap       m >= 0.5 on any other person's row            either the same or the mirrored joint
   miss       m < 0.5                                       wherever the best candidate is
   =========  ===========================================  ====================================================

   coco-analyze puts a keypoint with m exactly 0.85 on its own joint in no class at all; here it is jitter (it is
   not good), so every keypoint has exactly one class. KS is a float from ``exp``: hitting 0.85 exactly does not
   happen on real coordinates.
5. Only ground-truth keypoints with v > 0 of the matched person are classified (coco-analyze's ``gt_kpt_v != 0``).
6. KS is :func:`posefix_bench.codecs.oks.keypoint_similarity` with the schema's sigmas (pycocotools' values,
   ``.26 / 10`` etc.). coco-analyze's classification writes them as literals (``.026``), which differ in the last
   bit for five joints; only a KS within ~1e-16 of 0.5 or 0.85 could be classified differently.

``absent`` (not part of the paper) labels keypoints the estimator did not predict (see
:func:`posefix_bench.structures.results.absent_mask`); it is kept apart from ``miss``. coco-analyze has no such
notion: under the ``pycocotools`` absent policy every keypoint is classified as above.

:func:`classify_ks` takes the best KS of each of the four row groups; which other person wins within a group does
not change the class (all of them are swaps), so the four maxima give the first argmax's class exactly.
"""

from __future__ import annotations

import numpy as np

from posefix_bench.codecs.oks import keypoint_similarity
from posefix_bench.structures.schema import KeypointSchema

__all__ = [
    "TAXONOMY",
    "ERROR_TYPES",
    "CLASSES",
    "GOOD", "JITTER", "INVERSION", "SWAP", "MISS", "ABSENT",
    "GOOD_KS", "JITTER_KS", "MISS_KS",
    "classify_ks",
    "candidate_ks",
    "labelled_counts",
    "overlap_counts",
    "overlap_matrix",
    "V_BINS", "O_BINS", "v_bin", "o_bin",
]

TAXONOMY = "coco-analyze"  # the rule of this module, as the diagnosis record names it
ERROR_TYPES = ("good", "jitter", "inversion", "swap", "miss")
CLASSES = ERROR_TYPES + ("absent",)
GOOD, JITTER, INVERSION, SWAP, MISS, ABSENT = range(6)

GOOD_KS = 0.85  # KS strictly above which a keypoint on its own joint is good
JITTER_KS = 0.5  # KS at or above which a keypoint is near a joint (jitter, inversion, swap)
MISS_KS = 0.1  # outer bound of the synthesis "miss" region (PoseFix Sec. 4)


def classify_ks(ks_own: np.ndarray, ks_other: np.ndarray, ks_sym: np.ndarray, ks_other_sym: np.ndarray) -> np.ndarray:
    """Class codes (``GOOD`` .. ``MISS``) from the best KS of the four candidate groups, in coco-analyze's row order.

    Args:
        ks_own: KS against the matched person's joint j (its own area).
        ks_other: the best KS against joint j of every other annotation of the image (each with its own area).
        ks_sym: KS against the matched person's symmetric joint flip(j) (its own area).
        ks_other_sym: the best KS against joint flip(j) of every other annotation (each with its own area).
        All broadcastable arrays of KS in [0, 1]; NaN (or any negative value) where the candidate does not exist
        (unlabelled, no symmetric partner, nobody else labelled).

    Returns:
        int64 array of codes indexing :data:`ERROR_TYPES`: the class of the first maximum over
        (own, other, sym, other_sym), module docstring rules 3 and 4.
    """
    own, other, sym, other_sym = np.broadcast_arrays(*(
        np.nan_to_num(np.asarray(a, dtype=np.float64), nan=-1.0) for a in (ks_own, ks_other, ks_sym, ks_other_sym)))
    best = np.maximum(np.maximum(own, other), np.maximum(sym, other_sym))
    on_own = own >= best  # the first maximum: own, then other, then sym, then other_sym
    on_sym = ~on_own & (other < best) & (sym >= best)
    out = np.full(best.shape, SWAP, dtype=np.int64)  # near, on another person's joint or its mirror
    out[on_sym] = INVERSION
    out[on_own] = np.where(own[on_own] > GOOD_KS, GOOD, JITTER)
    out[best < JITTER_KS] = MISS
    return out


def candidate_ks(det_xy: np.ndarray, own: np.ndarray, area: np.ndarray, others: np.ndarray, others_area: np.ndarray,
                 others_ok: np.ndarray, schema: KeypointSchema):
    """KS of detected keypoints against their four candidate groups (rules 1-3), each candidate with its own area.

    Args:
        det_xy: (D, K, 2) detected positions; own: (D, K, 3) the matched persons; area: (D,) their areas.
        others: (D, G, K, 3) the persons of each detection's image (padded); others_area: (D, G) their areas;
            others_ok: (D, G) bool, the other annotations of the image (not the matched person, not padding).

    Returns:
        ks_own, ks_other, ks_sym, ks_other_sym: (D, K), the arguments of :func:`classify_ks`. ``ks_own`` and
        ``ks_sym`` are NaN where the joint is unlabelled (``ks_sym`` also where j has no partner: its row would
        be the own row again), the other two -1 where nobody else has the joint labelled.
    """
    sig, flip = schema.sigma_array, schema.flip_index
    ks_own = keypoint_similarity(((det_xy - own[..., :2]) ** 2).sum(-1), area, sig)
    ks_own = np.where(own[..., 2] > 0, ks_own, np.nan)
    sym = own[:, flip]
    ks_sym = keypoint_similarity(((det_xy - sym[..., :2]) ** 2).sum(-1), area, sig)
    ks_sym = np.where((sym[..., 2] > 0) & schema.has_partner, ks_sym, np.nan)
    best = []  # the same joint, then the symmetric joint, of every other person
    for tgt in (others, others[:, :, flip]):
        ks = keypoint_similarity(((det_xy[:, None] - tgt[..., :2]) ** 2).sum(-1), others_area, sig)
        best.append(np.where(others_ok[..., None] & (tgt[..., 2] > 0), ks, -1.0).max(axis=1, initial=-1.0))
    return ks_own, best[0], ks_sym, best[1]


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
