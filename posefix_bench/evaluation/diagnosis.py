"""Error diagnosis of keypoint results: which errors an estimator makes, and which a refiner fixed or introduced.

Method: Ronchi & Perona, "Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation" (ICCV 2017), written
from the paper's definitions (Sec. 3 and 4), the taxonomy PoseFix (Moon et al., CVPR 2019, Sec. 4) is built on.

1. Matching (R&P Sec. 3.1): detections are matched to ground-truth persons per image exactly as
   ``COCOeval.evaluateImg`` matches them (greedy in descending score order, stable in file order; the top 20
   detections of an image, COCOeval's ``maxDets``; ground truths non-ignored first, in file order; crowds and
   persons without labelled keypoints are ignore regions, and a detection matched to one is not counted; area range
   "all"), but at a localisation threshold of OKS 0.1. The OKS is :func:`posefix_bench.codecs.oks.oks_matrix`
   under the results' absent-keypoint policy, the one :func:`posefix_bench.evaluation.coco_eval.evaluate` uses.
2. Classification (R&P Sec. 3.1, Fig. 3): every labelled keypoint (v > 0) of a matched person gets a class from
   :func:`posefix_bench.codecs.taxonomy.classify_ks` (good / jitter / inversion / swap / miss) under the rule of
   the paper's reference code, coco-analyze (``taxonomy`` field of the record; the rules and their reasons are in
   :mod:`posefix_bench.codecs.taxonomy`): the own joint, every other annotation's same joint, the own and the
   others' symmetric joints, each with its own person's area, first maximum in that order. A keypoint the
   estimator did not predict (:func:`posefix_bench.structures.results.absent_mask`) is a sixth class, ``absent``,
   kept apart from ``miss``; under the ``pycocotools`` policy nothing is absent and the counts equal coco-analyze's
   (area range "all"), except in principle for a crowd region with labelled keypoints (COCO has none): an ignore
   region here, whose matched detections coco-analyze would classify.
3. AP impact (R&P Sec. 4.1, Fig. 6): the COCO AP after correcting the keypoints of one class in isolation (moved onto
   the matched person's own joint, KS = 1; everything else unchanged) and after correcting every non-good class
   together ("all", absent keypoints included: the AP with perfect localisation of every matched detection, whose
   remaining gap to 1 is due to false positives, missed persons and scoring). Each is a full
   :func:`~posefix_bench.evaluation.coco_eval.evaluate`, the function behind ``posefix-bench evaluate``.
4. Breakdowns: class counts per keypoint, body-part group, ground-truth visibility flag, estimator keypoint
   confidence bin and person size (COCO's S < 32², M 32²..96², L > 96² by ground-truth area). With refined results
   (one-to-one with the input, in the same order), a transition table input class -> refined class over the
   keypoints whose detection matched the same person in both files, with "fixed" (non-good -> good) and "broken"
   (good -> non-good) counts overall, per confidence bin, per group and per keypoint.

Computation returns plain records (see :func:`diagnose`); plots are in
:mod:`posefix_bench.reporting.diagnosis_plots`.

Shape legend: N detections (result records), M matched keypoints, K keypoints, P ground-truth persons, G persons of
one image, D detections of one image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from posefix_bench.codecs.oks import oks_matrix
from posefix_bench.codecs.taxonomy import (
    ABSENT, CLASSES, ERROR_TYPES, GOOD, TAXONOMY, candidate_ks, classify_ks, labelled_counts, overlap_counts,
)
from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.coco_eval import DEFAULT_EVALUATOR, METRIC_KEYS, evaluate
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY, absent_mask, results_to_arrays
from posefix_bench.structures.rows import ArrayRows
from posefix_bench.structures.schema import KeypointSchema

__all__ = [
    "DIAGNOSIS_FORMAT", "MATCH_OKS", "MAX_DETS", "DEFAULT_CONF_BINS", "SIZE_BINS", "AP_IMPACT_CLASSES",
    "KeypointTable", "classify", "summarize", "transitions", "measure_ap_impact", "corrected_results", "diagnose",
    "check_conf_bins", "conf_bin_labels", "conf_bin_index", "check_pairing",
]  # fmt: skip

DIAGNOSIS_FORMAT = "posefix-bench/diagnosis/v1"
MATCH_OKS = 0.1  # R&P's localisation threshold for matching
MAX_DETS = 20  # COCOeval's maxDets for keypoints
AREA_ALL = (0.0, 1e5**2)  # COCOeval's "all" area range
DEFAULT_CONF_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)
SIZE_BINS = ("S", "M", "L")  # COCO: area < 32², 32² <= area <= 96², area > 96²
# what "correcting" a class means in the AP impact: the classes whose keypoints move onto their own joint
AP_IMPACT_CLASSES = {name: (CLASSES.index(name),) for name in CLASSES if name != "good"}
AP_IMPACT_CLASSES["all"] = tuple(c for c in range(len(CLASSES)) if c != GOOD)
_BLOCK = 1 << 21  # array elements per vectorised block of the candidate search


@dataclass(frozen=True)
class KeypointTable(ArrayRows, rows="cls"):
    """The classified keypoints of one results list (M matched keypoints, N detections, in record order).

    Rows are the labelled ground-truth keypoints (v > 0) of every counted match, sorted by (result_index, joint).

    Attributes (per matched keypoint, shape (M,)):
        result_index: index of the detection in the results list.
        image_id, ann_id: image and matched ground-truth person.
        joint: keypoint index into ``schema.keypoints``.
        cls: class code indexing :data:`~posefix_bench.codecs.taxonomy.CLASSES` (``absent`` included).
        ks_own, ks_sym, ks_other: KS against the own joint, the own symmetric joint, the best other person's same
            or symmetric joint (each with its person's area); NaN where none exists; 0 for absent keypoints.
        visibility: ground-truth flag v (1 labelled occluded, 2 visible).
        confidence: the estimator's keypoint confidence.
        area: ground-truth area of the matched person.
        V, O: labelled keypoints of the matched person; other persons whose box overlaps it (taxonomy's V, O).
        gt_xy: (M, 2) position of the own joint.
    Per detection (shape (N,)):
        det_ann_id: matched person's annotation id, -1 when the detection is not counted as a match.
        det_ignored: matched to an ignore region (crowd, or a person without labelled keypoints).
        det_oks: OKS with the matched person or region (NaN if unmatched).
        det_evaluated: among the top :data:`MAX_DETS` of its image (others take no part, as in COCOeval).
    Other:
        num_gt_persons: non-crowd persons with labelled keypoints in the ground truth (all images).
    """

    schema: KeypointSchema
    absent_policy: str
    oks_thr: float
    result_index: np.ndarray
    image_id: np.ndarray
    ann_id: np.ndarray
    joint: np.ndarray
    cls: np.ndarray
    ks_own: np.ndarray
    ks_sym: np.ndarray
    ks_other: np.ndarray
    visibility: np.ndarray
    confidence: np.ndarray
    area: np.ndarray
    V: np.ndarray
    O: np.ndarray  # noqa: E741 (the paper's name)
    gt_xy: np.ndarray
    det_ann_id: np.ndarray
    det_ignored: np.ndarray
    det_oks: np.ndarray
    det_evaluated: np.ndarray
    num_gt_persons: int


# -- ground truth --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Persons:
    """Ground-truth persons of a list of images, concatenated image by image (P persons, I images)."""

    keypoints: np.ndarray  # (P, K, 3)
    areas: np.ndarray  # (P,)
    boxes: np.ndarray  # (P, 4)
    crowd: np.ndarray  # (P,) bool
    ignore: np.ndarray  # (P,) bool: COCOeval's ignore flag for keypoints, area range "all"
    ann_ids: np.ndarray  # (P,)
    order: np.ndarray  # (P,) rows in COCOeval's per-image order (non-ignored first, then file order)
    V: np.ndarray  # (P,)
    O: np.ndarray  # (P,)
    start: np.ndarray  # (I + 1,) persons of image i are rows start[i]:start[i + 1]


def _gather_persons(gt: CocoDataset, image_ids: Sequence[int]) -> _Persons:
    """The persons of ``image_ids`` (from :meth:`CocoDataset.gt_arrays`) with COCOeval's ignore flags and order."""
    k = gt.schema.num_keypoints
    file_pos = {a["id"]: i for i, a in enumerate(gt.coco.dataset["annotations"])}
    cols: dict[str, list] = {n: [] for n in ("keypoints", "areas", "boxes", "crowd", "ignore", "ann_ids", "order",
                                             "V", "O")}
    start = [0]
    for image_id in image_ids:
        arr = gt.gt_arrays(image_id)
        anns = [gt.coco.anns[int(a)] for a in arr.ann_ids]
        v = labelled_counts(arr.keypoints)
        n_kp = np.asarray([a.get("num_keypoints", n) for a, n in zip(anns, v)], dtype=np.int64)
        ignore = arr.iscrowd | (n_kp == 0) | (arr.areas < AREA_ALL[0]) | (arr.areas > AREA_ALL[1])
        pos = np.asarray([file_pos[a["id"]] for a in anns], dtype=np.int64)
        for name, value in (("keypoints", arr.keypoints), ("areas", arr.areas), ("boxes", arr.boxes),
                            ("crowd", arr.iscrowd), ("ignore", ignore), ("ann_ids", arr.ann_ids),
                            ("order", start[-1] + np.lexsort((pos, ignore))), ("V", v),
                            ("O", overlap_counts(arr.boxes, valid=~arr.iscrowd & (v > 0)))):
            cols[name].append(value)
        start.append(start[-1] + len(arr))
    empty = {"keypoints": np.zeros((0, k, 3)), "boxes": np.zeros((0, 4))}
    cat = {n: np.concatenate(v) if v else empty.get(n, np.zeros(0)) for n, v in cols.items()}
    return _Persons(
        keypoints=cat["keypoints"], areas=cat["areas"].astype(np.float64), boxes=cat["boxes"],
        crowd=cat["crowd"].astype(bool), ignore=cat["ignore"].astype(bool), ann_ids=cat["ann_ids"].astype(np.int64),
        order=cat["order"].astype(np.int64), V=cat["V"].astype(np.int64), O=cat["O"].astype(np.int64),
        start=np.asarray(start, dtype=np.int64),
    )


def _num_gt_persons(gt: CocoDataset) -> int:
    return sum(
        1 for a in gt.coco.anns.values()
        if a.get("category_id") == gt.category_id and not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0
    )  # fmt: skip


# -- matching ------------------------------------------------------------------------------------------------------
def _greedy_match(oks: np.ndarray, ignore: np.ndarray, crowd: np.ndarray, thr: float) -> np.ndarray:
    """``COCOeval.evaluateImg``'s greedy matching at one threshold.

    Args:
        oks: (D, G) with detections in score order and ground truths in COCOeval's order (non-ignored first).
        ignore, crowd: (G,) bool.

    Returns:
        (D,) matched column or -1. Like COCOeval: the best OKS >= thr among the regular ground truths not yet taken
        (ties to the later one), else among the ignore regions (a crowd can take several detections).
    """
    d_n, g_n = oks.shape
    taken = np.zeros(g_n, bool)
    out = np.full(d_n, -1, dtype=np.int64)
    thr = min(thr, 1 - 1e-10)
    for d in range(d_n):
        cand = (oks[d] >= thr) & ~(taken & ~crowd)
        for pool in (cand & ~ignore, cand & ignore):
            if pool.any():
                vals = np.where(pool, oks[d], -np.inf)
                m = g_n - 1 - int(np.argmax(vals[::-1]))  # the last maximum, as COCOeval's ">=" update keeps it
                out[d] = m
                taken[m] = True
                break
    return out


def _match(persons: _Persons, image_rows: np.ndarray, keypoints: np.ndarray, absent: np.ndarray,
           scores: np.ndarray, sigmas: np.ndarray, thr: float):
    """Per detection: matched person row (-1), its OKS, and whether it is among its image's top MAX_DETS."""
    n = scores.shape[0]
    person = np.full(n, -1, dtype=np.int64)
    det_oks = np.full(n, np.nan)
    evaluated = np.zeros(n, bool)
    by_score = np.argsort(-scores, kind="mergesort")
    order = by_score[np.argsort(image_rows[by_score], kind="mergesort")]
    bounds = np.searchsorted(image_rows[order], np.arange(len(persons.start)))
    for i in range(len(persons.start) - 1):
        dets = order[bounds[i]:bounds[i + 1]][:MAX_DETS]
        evaluated[dets] = True
        cols = persons.order[persons.start[i]:persons.start[i + 1]]
        if dets.size == 0 or cols.size == 0:
            continue
        oks = oks_matrix(keypoints[dets], persons.keypoints[cols], persons.areas[cols], persons.boxes[cols],
                         sigmas, det_absent=absent[dets])
        m = _greedy_match(oks, persons.ignore[cols], persons.crowd[cols], thr)
        hit = np.flatnonzero(m >= 0)
        person[dets[hit]] = cols[m[hit]]
        det_oks[dets[hit]] = oks[hit, m[hit]]
    return person, det_oks, evaluated


# -- classification ------------------------------------------------------------------------------------------------
def _classify_matched(persons: _Persons, det_person, det_image, keypoints, absent, schema: KeypointSchema):
    """(D,) matched detections -> ks_own, ks_sym, ks_other (both other groups), cls, each (D, K); in blocks."""
    sizes = np.diff(persons.start)
    out = [np.empty((len(det_person), schema.num_keypoints)) for _ in range(4)]
    step = max(1, _BLOCK // max(1, int(sizes.max(initial=1)) * schema.num_keypoints))
    for lo in range(0, len(det_person), step):
        p, img = det_person[lo:lo + step], det_image[lo:lo + step]
        g_max = int(sizes[img].max(initial=0))
        pad = persons.start[img][:, None] + np.arange(g_max)  # (D, G)
        valid = pad < persons.start[img + 1][:, None]
        pad = np.where(valid, pad, 0)
        others_ok = valid & (pad != p[:, None])  # every other annotation of the image, crowds included (rule 1)
        res = candidate_ks(keypoints[lo:lo + step, :, :2], persons.keypoints[p], persons.areas[p],
                            persons.keypoints[pad], persons.areas[pad], others_ok, schema)
        for arr, r in zip(out, res):
            arr[lo:lo + step] = r
    ks_own, ks_other, ks_sym, ks_other_sym = out
    cls = classify_ks(ks_own, ks_other, ks_sym, ks_other_sym)
    cls[absent] = ABSENT
    ks_other = np.maximum(ks_other, ks_other_sym)
    ks_other[ks_other < 0] = np.nan
    for arr in (ks_own, ks_sym, ks_other):  # an absent keypoint scores KS 0 wherever a candidate exists
        arr[absent & ~np.isnan(arr)] = 0.0
    return ks_own, ks_sym, ks_other, cls


def classify(
    gt: CocoDataset,
    results: Sequence[dict],
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    oks_thr: float = MATCH_OKS,
) -> KeypointTable:
    """Match validated results to ``gt`` at ``oks_thr`` and classify every matched labelled keypoint.

    Returns a :class:`KeypointTable`. Raises :class:`PosefixError` for results whose keypoint count or image ids do
    not fit ``gt`` (validate files with :func:`posefix_bench.structures.results.load_results` first).
    """
    schema = gt.schema
    if not results:
        raise PosefixError("results: empty results list (nothing to diagnose)")
    arr = results_to_arrays(results, schema.num_keypoints)
    absent = absent_mask(arr.keypoints, absent_policy)
    images, det_image = np.unique(arr.image_ids, return_inverse=True)
    unknown = [int(i) for i in images if int(i) not in gt.coco.imgs]
    if unknown:
        raise PosefixError(f"results: image id {unknown[0]} is not in {gt.path}")
    if (arr.category_ids != gt.category_id).any():
        other = int(arr.category_ids[arr.category_ids != gt.category_id][0])
        raise PosefixError(f"results: category id {other} is not the keypoint category of {gt.path} ({gt.category_id})")
    persons = _gather_persons(gt, [int(i) for i in images])
    person, det_oks, evaluated = _match(persons, det_image, arr.keypoints, absent, arr.scores,
                                        schema.sigma_array, oks_thr)
    ignored = np.zeros(len(arr), bool)
    ignored[person >= 0] = persons.ignore[person[person >= 0]]
    counted = np.flatnonzero((person >= 0) & ~ignored)
    ks_own, ks_sym, ks_other, cls = _classify_matched(
        persons, person[counted], det_image[counted], arr.keypoints[counted], absent[counted], schema)
    own = persons.keypoints[person[counted]]  # (D, K, 3)
    d, j = np.nonzero(own[..., 2] > 0)  # row-major: sorted by (detection, joint)
    p = person[counted][d]
    det_ann_id = np.full(len(arr), -1, dtype=np.int64)
    det_ann_id[counted] = persons.ann_ids[person[counted]]
    return KeypointTable(
        schema=schema, absent_policy=absent_policy, oks_thr=float(oks_thr),
        result_index=counted[d], image_id=arr.image_ids[counted][d], ann_id=persons.ann_ids[p], joint=j,
        cls=cls[d, j], ks_own=ks_own[d, j], ks_sym=ks_sym[d, j], ks_other=ks_other[d, j],
        visibility=own[d, j, 2].astype(np.int64), confidence=arr.keypoints[counted][d, j, 2],
        area=persons.areas[p], V=persons.V[p], O=persons.O[p], gt_xy=own[d, j, :2],
        det_ann_id=det_ann_id, det_ignored=ignored,
        det_oks=det_oks, det_evaluated=evaluated, num_gt_persons=_num_gt_persons(gt),
    )


# -- breakdowns ----------------------------------------------------------------------------------------------------
def check_conf_bins(edges: Sequence[float]) -> tuple[float, ...]:
    """Validated confidence-bin edges: at least two, finite, strictly increasing."""
    try:
        e = tuple(float(x) for x in edges)
    except (TypeError, ValueError):
        raise PosefixError(f"confidence bins {edges!r}: not a list of numbers") from None
    if len(e) < 2 or not all(np.isfinite(e)) or any(b <= a for a, b in zip(e, e[1:])):
        raise PosefixError(f"confidence bins {list(e)}: need at least two finite, strictly increasing edges")
    return e


def conf_bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the len(edges) - 1 bins: values below the second edge fall in the first bin, the last is open."""
    e = check_conf_bins(edges)
    if len(e) == 2:
        return [f">={e[0]:g}"]
    return [f"<{e[1]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(e[1:-2], e[2:-1])] + [f">={e[-2]:g}"]


def conf_bin_index(confidence: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """(M,) confidences -> (M,) bin index in [0, len(edges) - 2] (the last bin is open-ended, mmpose scores
    can exceed 1; values below the first edge join the first bin)."""
    return np.searchsorted(np.asarray(edges[1:-1], dtype=np.float64), confidence, side="right")


def _count_by(cls: np.ndarray, key: np.ndarray, labels: Sequence[str]) -> dict:
    """{label: {class: count, ..., "total": n}} of ``cls`` grouped by ``key`` (indices into ``labels``)."""
    c = len(CLASSES)
    table = np.bincount(np.asarray(key, np.int64) * c + cls, minlength=len(labels) * c).reshape(len(labels), c)
    return {lab: _counts_record(row) for lab, row in zip(labels, table)}


def _counts_record(row: np.ndarray) -> dict:
    rec = {name: int(n) for name, n in zip(CLASSES, row)}
    rec["total"] = int(row.sum())
    return rec


def _size_index(area: np.ndarray) -> np.ndarray:
    return np.where(area < 32**2, 0, np.where(area <= 96**2, 1, 2))


def summarize(table: KeypointTable, conf_bins: Sequence[float] = DEFAULT_CONF_BINS) -> dict:
    """Class counts of a :class:`KeypointTable`, overall and broken down, as a plain record.

    ``counts`` (and every breakdown entry) holds the five error types, ``absent`` and ``total``; ``fractions`` the
    same over the total. Breakdowns: ``per_keypoint`` (schema names), ``per_group`` (schema groups),
    ``per_visibility`` ("1" occluded, "2" visible), ``per_confidence`` (:func:`conf_bin_labels`), ``per_size``
    (S only when present).
    """
    edges = check_conf_bins(conf_bins)
    s, cls = table.schema, table.cls
    total = np.bincount(cls, minlength=len(CLASSES))
    flags = sorted({1, 2} | set(np.unique(table.visibility).tolist()))
    per_size = _count_by(cls, _size_index(table.area), SIZE_BINS)
    if per_size["S"]["total"] == 0:
        del per_size["S"]
    matched = table.det_ann_id >= 0
    return {
        "num_results": int(table.det_ann_id.shape[0]),
        "matched_detections": int(matched.sum()),
        "unmatched_detections": int((table.det_evaluated & ~matched & ~table.det_ignored).sum()),
        "ignored_detections": int(table.det_ignored.sum()),
        "uncounted_detections": int((~table.det_evaluated).sum()),
        "gt_persons": table.num_gt_persons,
        "matched_persons": int(np.unique(table.det_ann_id[matched]).size),
        "keypoints": int(cls.size),
        "counts": _counts_record(total),
        "fractions": {name: (float(n / cls.size) if cls.size else None) for name, n in zip(CLASSES, total)},
        "per_keypoint": _count_by(cls, table.joint, s.keypoints),
        "per_group": {g: _counts_record(np.bincount(cls[np.isin(table.joint, idx)], minlength=len(CLASSES)))
                      for g, idx in s.groups.items()},
        "per_visibility": _count_by(cls, np.searchsorted(flags, table.visibility), [str(f) for f in flags]),
        "per_confidence": _count_by(cls, conf_bin_index(table.confidence, edges), conf_bin_labels(edges)),
        "per_size": per_size,
    }


# -- AP impact -----------------------------------------------------------------------------------------------------
def corrected_results(results: Sequence[dict], table: KeypointTable, select: np.ndarray) -> list[dict]:
    """Copies of ``results`` with the ``select``-ed table rows moved onto the matched person's own joint (KS 1).

    Only the selected keypoints change; a corrected absent keypoint also gets confidence 1 so that it counts as
    predicted (keypoint confidences play no other part in COCO AP). The input records are not modified.
    """
    out = list(results)
    rows = np.flatnonzero(select)
    for r in np.unique(table.result_index[rows]):
        out[r] = dict(results[r], keypoints=list(results[r]["keypoints"]))
    for i in rows:
        kp, j = out[table.result_index[i]]["keypoints"], 3 * int(table.joint[i])
        kp[j], kp[j + 1] = float(table.gt_xy[i, 0]), float(table.gt_xy[i, 1])
        if table.cls[i] == ABSENT:
            kp[j + 2] = 1.0
    return out


def measure_ap_impact(
    gt: CocoDataset,
    results: Sequence[dict],
    table: KeypointTable,
    base: dict | None = None,
    progress: Progress = no_progress,
    evaluator: str = DEFAULT_EVALUATOR,
) -> dict:
    """COCO AP after correcting each class of :data:`AP_IMPACT_CLASSES` in isolation (R&P Sec. 4.1).

    Args:
        table: ``classify(gt, results)``.
        base: ``evaluate(gt, results)`` (the record) if already computed.
        evaluator: see :func:`~posefix_bench.evaluation.coco_eval.evaluate` (it indexes the ground truth once).

    Returns ``{name: {"keypoints" (corrected), "AP", "delta_AP", "metrics", "evaluator" (backend)}}`` per class.
    """
    run = lambda res: evaluate(gt, res, table.absent_policy, evaluator=evaluator)  # noqa: E731
    base, out = base or run(results), {}
    for name, codes in progress(AP_IMPACT_CLASSES.items(), total=len(AP_IMPACT_CLASSES), desc="AP impact"):
        select = np.isin(table.cls, codes)
        rec = run(corrected_results(results, table, select)) if select.any() else base  # none: the same AP
        m, ap0 = rec["metrics"], base["metrics"]["AP"]
        delta = None if m["AP"] is None or ap0 is None else m["AP"] - ap0
        out[name] = {"keypoints": int(select.sum()), "AP": m["AP"], "delta_AP": delta, "metrics": m,
                     "evaluator": rec["evaluator"]}
    return out


# -- refined vs input ----------------------------------------------------------------------------------------------
def check_pairing(results: Sequence[dict], refined: Sequence[dict], source: str = "refined results") -> None:
    """Refined results must be one-to-one with the input, in the same order (the refiner writes them that way)."""
    if len(refined) != len(results):
        raise PosefixError(f"{source}: {len(refined)} refined results for {len(results)} input results "
                           "(refined results must be one-to-one with the input, in the same order)")
    for i, (a, b) in enumerate(zip(results, refined)):
        if a["image_id"] != b["image_id"]:
            raise PosefixError(f"{source}: result {i} is for image {b['image_id']} but input result {i} is for "
                               f"image {a['image_id']} (refined results must be one-to-one, in the same order)")


def _fix_break(cin: np.ndarray, cout: np.ndarray) -> dict:
    """Fixed (class -> good) per non-good input class and broken (good -> class) counts."""
    n = len(CLASSES)
    m = np.bincount(cin * n + cout, minlength=n * n).reshape(n, n)
    fixed = {name: {"input": int(m[c].sum()), "fixed": int(m[c, GOOD]),
                    "rate": float(m[c, GOOD] / m[c].sum()) if m[c].sum() else None}
             for c, name in enumerate(CLASSES) if c != GOOD}
    n_good, n_broken = int(m[GOOD].sum()), int(m[GOOD].sum() - m[GOOD, GOOD])
    broken = {"input": n_good, "broken": n_broken, "rate": n_broken / n_good if n_good else None,
              "to": {name: int(m[GOOD, c]) for c, name in enumerate(CLASSES) if c != GOOD}}
    n_fixed = sum(f["fixed"] for f in fixed.values())
    return {"keypoints": int(cin.size), "fixed": fixed, "broken": broken, "fixed_total": n_fixed,
            "net_fixed": n_fixed - n_broken}


def transitions(before: KeypointTable, after: KeypointTable, conf_bins: Sequence[float] = DEFAULT_CONF_BINS) -> dict:
    """Input class -> refined class of the keypoints whose detection matched the same person in both.

    Returns ``{"classes", "matrix" (rows input, columns refined), "keypoints", "detections", "excluded",
    "fixed", "broken", "fixed_total", "net_fixed", "per_confidence", "per_group", "per_keypoint"}``; breakdowns
    use the input's confidence and hold the fixed / broken records of :func:`_fix_break`.
    """
    if before.det_ann_id.shape != after.det_ann_id.shape:
        raise PosefixError(f"refined results: {after.det_ann_id.size} detections for {before.det_ann_id.size} inputs")
    edges = check_conf_bins(conf_bins)
    same = (before.det_ann_id >= 0) & (before.det_ann_id == after.det_ann_id)
    kb, ka = same[before.result_index], same[after.result_index]
    # the same person's labelled joints, rows sorted by (result_index, joint) in both: aligned row by row
    assert np.array_equal(before.result_index[kb], after.result_index[ka])
    assert np.array_equal(before.joint[kb], after.joint[ka])
    cin, cout, joint = before.cls[kb], after.cls[ka], before.joint[kb]
    n = len(CLASSES)
    changed = ((before.det_ann_id >= 0) | (after.det_ann_id >= 0)) & ~same
    conf = conf_bin_index(before.confidence[kb], edges)
    s = before.schema
    return {
        "classes": list(CLASSES),
        "matrix": np.bincount(cin * n + cout, minlength=n * n).reshape(n, n).tolist(),
        "detections": int(same.sum()),
        "excluded": {"detections": int(changed.sum()), "input_keypoints": int((~kb).sum()),
                     "refined_keypoints": int((~ka).sum())},
        **_fix_break(cin, cout),
        "per_confidence": {lab: _fix_break(cin[conf == i], cout[conf == i])
                           for i, lab in enumerate(conf_bin_labels(edges))},
        "per_group": {g: _fix_break(cin[np.isin(joint, idx)], cout[np.isin(joint, idx)])
                      for g, idx in s.groups.items()},
        "per_keypoint": {name: _fix_break(cin[joint == k], cout[joint == k]) for k, name in enumerate(s.keypoints)},
    }


# -- the diagnosis record ------------------------------------------------------------------------------------------
def _diagnose_one(gt, results, table, edges, ap_impact, timings, progress, evaluator) -> dict:
    t0 = time.perf_counter()
    rec = summarize(table, edges)
    timings["summarize_s"] = timings.get("summarize_s", 0.0) + time.perf_counter() - t0
    t0 = time.perf_counter()
    base = evaluate(gt, results, table.absent_policy, evaluator=evaluator)
    rec.update(ap=base["metrics"], evaluator=base["evaluator"], evaluator_fallback=base["evaluator_fallback"])
    timings["evaluate_s"] = timings.get("evaluate_s", 0.0) + time.perf_counter() - t0
    rec["ap_impact"] = None
    if ap_impact:
        t0 = time.perf_counter()
        rec["ap_impact"] = measure_ap_impact(gt, results, table, base, progress, evaluator)
        timings["ap_impact_s"] = timings.get("ap_impact_s", 0.0) + time.perf_counter() - t0
    rec["untrained"] = any(bool(r.get("untrained", False)) for r in results)
    return rec


def _timed_classify(gt, results, absent_policy, oks_thr, timings) -> KeypointTable:
    t0 = time.perf_counter()
    table = classify(gt, results, absent_policy, oks_thr)
    timings["classify_s"] = timings.get("classify_s", 0.0) + time.perf_counter() - t0
    return table


def diagnose(
    gt: CocoDataset,
    results: Sequence[dict],
    refined: Sequence[dict] | None = None,
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    conf_bins: Sequence[float] = DEFAULT_CONF_BINS,
    ap_impact: bool = True,
    oks_thr: float = MATCH_OKS,
    timings: dict | None = None,
    progress: Progress = no_progress,
    tables: dict | None = None,
    evaluator: str = DEFAULT_EVALUATOR,
) -> dict:
    """The diagnosis record (``diagnosis.json``) of validated results, optionally with their refined version.

    Top level: ``format``, ``schema`` (name, keypoints, groups), ``classes``, ``absent_policy``, ``oks_thr``,
    ``max_dets``, ``conf_bins`` (edges) and ``conf_bin_labels``, then the results' own record: the counts and
    breakdowns of :func:`summarize`, ``ap`` (``evaluate(...)["metrics"]``, what ``posefix-bench evaluate``
    reports), ``evaluator`` / ``evaluator_fallback`` (who computed ``ap``; why ``auto`` fell back, or None),
    ``ap_impact`` (:func:`measure_ap_impact`, None when ``ap_impact`` is False) and ``untrained`` (a record says
    ``"untrained": true``). With ``refined``: ``refined`` (the same record for the refined results),
    ``transitions`` (:func:`transitions`) and ``ap_change`` ({metric: {before, after, delta}}).
    ``taxonomy`` names the classification rule (:data:`posefix_bench.codecs.taxonomy.TAXONOMY`).

    ``timings``, when given, receives the seconds spent in classify, summarize, evaluate and AP impact (kept out of
    the record so the same inputs give the same bytes). ``tables``, when given, receives the classified keypoint
    tables (``"before"``, and ``"after"`` with ``refined``) so a caller builds more on the same pass
    (:mod:`posefix_bench.evaluation.pair`).
    """
    edges = check_conf_bins(conf_bins)
    if refined is not None:
        check_pairing(results, refined)
    timings = {} if timings is None else timings
    s = gt.schema
    rec = {
        "format": DIAGNOSIS_FORMAT,
        "schema": {"name": s.name, "keypoints": list(s.keypoints), "groups": {g: list(i) for g, i in s.groups.items()}},
        "classes": list(CLASSES),
        "error_types": list(ERROR_TYPES),
        "taxonomy": TAXONOMY,
        "absent_policy": absent_policy,
        "oks_thr": float(oks_thr),
        "max_dets": MAX_DETS,
        "conf_bins": list(edges),
        "conf_bin_labels": conf_bin_labels(edges),
    }
    before = _timed_classify(gt, results, absent_policy, oks_thr, timings)
    rec.update(_diagnose_one(gt, results, before, edges, ap_impact, timings, progress, evaluator))
    if tables is not None:
        tables["before"] = before
    if refined is not None:
        after = _timed_classify(gt, refined, absent_policy, oks_thr, timings)
        if tables is not None:
            tables["after"] = after
        rec["refined"] = _diagnose_one(gt, refined, after, edges, ap_impact, timings, progress, evaluator)
        rec["transitions"] = transitions(before, after, edges)
        rec["ap_change"] = {
            k: {"before": rec["ap"][k], "after": rec["refined"]["ap"][k],
                "delta": None if rec["ap"][k] is None or rec["refined"]["ap"][k] is None
                else rec["refined"]["ap"][k] - rec["ap"][k]}
            for k in METRIC_KEYS
        }
    return rec
