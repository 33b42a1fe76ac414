"""One pass over a (results, refined results) pair: diagnosis, subset AP and the persons worth looking at.

detectron2 composes its evaluators over one pass of the model; here one classification of each results list
(:func:`posefix_bench.evaluation.diagnosis.classify`, Ronchi & Perona's matching and taxonomy) feeds everything the
bench reports about a pair:

- the diagnosis record (:func:`~posefix_bench.evaluation.diagnosis.diagnose`: AP, class counts, breakdowns, fixed /
  broken transitions);
- a person subset (the lower-body-occluded persons of the sandbox): its AP before and after (COCOeval with the
  other persons as ignore regions) and what refinement did to the subset's lower-body keypoints;
- the crop panel's persons: those whose mean keypoint similarity (KS) against their own joints rose most (fixes)
  and fell most (breaks), with their ground-truth, input and refined poses and the image they come from, so a
  report draws them without reading a results file again;
- with bootstrap settings, the paired bootstrap over validation images (:mod:`posefix_bench.evaluation.bootstrap`):
  95% intervals of the AP delta (all persons and the subset) and of the fixed / broken keypoints per input-confidence
  bin, input and refined on the same draws; the draws' samples come back too, so that two refinements of the same
  input can be compared draw by draw later (the same images and settings give the same draws).

Shape legend: N detections, M matched keypoints, K keypoints.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from posefix_bench.codecs.taxonomy import GOOD
from posefix_bench.evaluation.bootstrap import (
    check_bootstrap, delta_record, identity_ap, interval, match_table, resample_ap, resample_counts, resample_sums,
)  # fmt: skip
from posefix_bench.evaluation.coco_eval import evaluate
from posefix_bench.evaluation.diagnosis import (
    DEFAULT_CONF_BINS, KeypointTable, conf_bin_index, conf_bin_labels, diagnose,
)  # fmt: skip
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import absent_mask

__all__ = ["CROP_COUNT", "analyse_pair", "subset_record", "select_crops", "crop_record", "pair_bootstrap",
           "fix_break_per_image"]

CROP_COUNT = 8  # persons in the crop panel: half fixes, half breaks


def analyse_pair(gt: CocoDataset, results: Sequence[dict], refined: Sequence[dict] | None = None, *,
                 ap_impact: bool = False, subset_ids: Sequence[int] | None = None,
                 crops: int = CROP_COUNT, bootstrap: dict | None = None) -> dict:
    """``{"diagnosis", "occluded", "crops", "bootstrap", "bootstrap_samples"}`` of results (and their refined
    version) from one classification each.

    ``subset_ids``: annotation ids of the subset (None or empty: no subset record); ``crops``: persons for the crop
    panel (only with ``refined``); ``bootstrap``: settings (``resamples``, ``seed``) of the paired bootstrap (only
    with ``refined``; None: no bootstrap): its record and samples are those of :func:`pair_bootstrap` (None
    without one).
    """
    tables: dict[str, KeypointTable] = {}
    diag = diagnose(gt, results, refined, ap_impact=ap_impact, tables=tables)
    after = tables.get("after")
    occluded = subset_record(gt, results, refined, subset_ids, tables["before"], after) if subset_ids else None
    chosen = []
    if refined is not None and crops > 0:
        chosen = crop_record(gt, results, refined, select_crops(tables["before"], after, results, crops))
    boot, samples = None, None
    if refined is not None and bootstrap is not None and results:
        boot, samples = pair_bootstrap(gt, results, refined, tables["before"], after, subset_ids, bootstrap,
                                       diag["conf_bins"])
    return {"diagnosis": diag, "occluded": occluded, "crops": chosen, "bootstrap": boot, "bootstrap_samples": samples}


def fix_break_per_image(before: KeypointTable, after: KeypointTable, image_ids: np.ndarray,
                        conf_bins: Sequence[float] = DEFAULT_CONF_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(fixed, broken), each (I, bins): per image and input-confidence bin, the keypoints of detections matched to
    the same person before and after refinement that went from non-good to good (fixed) and from good to non-good
    (broken), as the diagnosis' transitions count them. ``image_ids``: (I,) sorted."""
    same = (before.det_ann_id >= 0) & (before.det_ann_id == after.det_ann_id)
    kb, ka = same[before.result_index], same[after.result_index]
    cin, cout = before.cls[kb], after.cls[ka]
    n_bins = len(conf_bins) - 1
    key = np.searchsorted(image_ids, before.image_id[kb]) * n_bins + conf_bin_index(before.confidence[kb], conf_bins)
    size = len(image_ids) * n_bins
    fixed = np.bincount(key, weights=(cin != GOOD) & (cout == GOOD), minlength=size).reshape(-1, n_bins)
    broken = np.bincount(key, weights=(cin == GOOD) & (cout != GOOD), minlength=size).reshape(-1, n_bins)
    return fixed, broken


def pair_bootstrap(gt: CocoDataset, results: Sequence[dict], refined: Sequence[dict], before: KeypointTable,
                   after: KeypointTable, subset_ids: Sequence[int] | None, settings: dict,
                   conf_bins: Sequence[float] = DEFAULT_CONF_BINS) -> tuple[dict, dict]:
    """The paired bootstrap of a (results, refined) pair over the validation images: (record, samples).

    Record: ``{"resamples", "seed", "seconds", "all", "occluded", "per_confidence"}``; ``all`` and ``occluded`` (the
    subset; None without one) are :func:`~posefix_bench.evaluation.bootstrap.delta_record` of the AP (base: input,
    other: refined) with ``images``; ``per_confidence`` {bin label: {"fixed", "fixed_ci95", "broken",
    "broken_ci95", "net", "net_ci95"}} (net = fixed - broken) on the same draws as ``all``. Samples: the draws'
    values as arrays, ``{"<part>_image_ids", "<part>_before", "<part>_after"}`` (and the identity draw's
    ``<part>_ap_before`` / ``<part>_ap_after``, NaN where undefined) for part ``all`` / ``occluded``, ``fixed`` and
    ``broken`` (B, bins) with the identity draw's ``fixed_identity`` / ``broken_identity`` (bins,), and ``resamples``
    / ``seed``.
    """
    t0 = time.perf_counter()
    spec = check_bootstrap(settings)
    record: dict = {"resamples": spec["resamples"], "seed": spec["seed"], "occluded": None}
    samples: dict = {"resamples": np.int64(spec["resamples"]), "seed": np.int64(spec["seed"])}
    parts = [("all", None)] + ([("occluded", sorted(int(i) for i in subset_ids))] if subset_ids else [])
    for part, persons in parts:
        a_table = match_table(gt, results, before.absent_policy, person_ids=persons)
        b_table = match_table(gt, refined, before.absent_policy, person_ids=persons)
        counts = resample_counts(len(a_table.image_ids), spec["resamples"], spec["seed"])
        a, b = resample_ap(a_table, counts), resample_ap(b_table, counts)
        a0, b0 = identity_ap(a_table), identity_ap(b_table)
        record[part] = dict(delta_record(a, b, a0, b0), images=len(a_table.image_ids))
        samples.update({f"{part}_image_ids": a_table.image_ids, f"{part}_before": a, f"{part}_after": b,
                        f"{part}_ap_before": np.float64(np.nan if a0 is None else a0),
                        f"{part}_ap_after": np.float64(np.nan if b0 is None else b0)})
        if part == "all":
            fixed, broken = fix_break_per_image(before, after, a_table.image_ids, conf_bins)
            f_s, b_s = resample_sums(fixed, counts), resample_sums(broken, counts)
            samples.update(fixed=f_s, broken=b_s, fixed_identity=fixed.sum(axis=0), broken_identity=broken.sum(axis=0))
            record["per_confidence"] = {
                lab: {"fixed": int(fixed[:, i].sum()), "fixed_ci95": interval(f_s[:, i]),
                      "broken": int(broken[:, i].sum()), "broken_ci95": interval(b_s[:, i]),
                      "net": int(fixed[:, i].sum() - broken[:, i].sum()), "net_ci95": interval(f_s[:, i] - b_s[:, i])}
                for i, lab in enumerate(conf_bin_labels(conf_bins))}
    record["seconds"] = time.perf_counter() - t0
    return record, samples


def subset_record(gt: CocoDataset, results: Sequence[dict], refined: Sequence[dict] | None,
                  person_ids: Sequence[int], before: KeypointTable, after: KeypointTable | None) -> dict:
    """AP on a subset of persons, and what refinement did to their lower-body keypoints (matched to the same person
    before and after): counts of good before/after, fixed, broken, mean KS."""
    ids = sorted(int(i) for i in person_ids)
    rec: dict = {"persons": len(ids), "ap_before": evaluate(gt, results, person_ids=ids)["metrics"]["AP"]}
    if refined is None or after is None:
        return rec
    rec["ap_after"] = evaluate(gt, refined, person_ids=ids)["metrics"]["AP"]
    lower = np.asarray(gt.schema.groups.get("lower", ()), dtype=np.int64)
    subset = np.asarray(ids, dtype=np.int64)
    same = (before.det_ann_id >= 0) & (before.det_ann_id == after.det_ann_id)

    def rows(t):
        return same[t.result_index] & np.isin(t.ann_id, subset) & np.isin(t.joint, lower)

    kb, ka = rows(before), rows(after)
    cin, cout = before.cls[kb], after.cls[ka]
    rec.update(lower_keypoints=int(kb.sum()), lower_good_before=int((cin == GOOD).sum()),
               lower_good_after=int((cout == GOOD).sum()), lower_fixed=int(((cin != GOOD) & (cout == GOOD)).sum()),
               lower_broken=int(((cin == GOOD) & (cout != GOOD)).sum()),
               lower_ks_before=float(before.ks_own[kb].mean()) if kb.any() else None,
               lower_ks_after=float(after.ks_own[ka].mean()) if ka.any() else None)
    return rec


def select_crops(before: KeypointTable, after: KeypointTable, results: Sequence[dict], count: int = CROP_COUNT,
                 min_keypoints: int = 6) -> list[dict]:
    """The persons whose mean KS against their own joints rose most (fixes) and fell most (breaks).

    Only detections matched to the same person before and after refinement count (as in the diagnosis'
    transitions), with at least ``min_keypoints`` labelled joints (all matched ones when none has that many).
    Returns up to ``count // 2`` of each kind (fixes first, the other kind filling a shortfall) as
    ``{"result_index", "image_id", "ann_id", "ks_before", "ks_after", "kind"}``, largest change first.
    """
    same = (before.det_ann_id >= 0) & (before.det_ann_id == after.det_ann_id)
    kb, ka = same[before.result_index], same[after.result_index]
    idx = before.result_index[kb]
    n = len(results)
    counts = np.bincount(idx, minlength=n)
    ks_b = np.bincount(idx, weights=np.nan_to_num(before.ks_own[kb]), minlength=n)
    ks_a = np.bincount(after.result_index[ka], weights=np.nan_to_num(after.ks_own[ka]), minlength=n)
    dets = np.flatnonzero(counts >= min_keypoints)
    if dets.size == 0:
        dets = np.flatnonzero(counts > 0)
    ks_b, ks_a = ks_b[dets] / counts[dets], ks_a[dets] / counts[dets]
    change = ks_a - ks_b
    order = np.argsort(-change, kind="stable")
    fixes = [i for i in order if change[i] > 0]
    breaks = [i for i in order[::-1] if change[i] < 0]
    half = count // 2
    n_fix = min(len(fixes), max(half, count - len(breaks)))
    chosen = [(i, "fix") for i in fixes[:n_fix]] + [(i, "break") for i in breaks[:count - n_fix]]
    return [{"result_index": int(dets[i]), "image_id": int(results[dets[i]]["image_id"]),
             "ann_id": int(before.det_ann_id[dets[i]]), "ks_before": float(ks_b[i]), "ks_after": float(ks_a[i]),
             "kind": kind} for i, kind in chosen]


def _pose_xyv(record: dict, k: int) -> list:
    """(K, 3) x, y, 1 of a result record's predicted keypoints; absent ones (0, 0, 0) so they are not drawn."""
    kp = np.asarray(record["keypoints"], dtype=np.float64).reshape(k, 3)
    absent = absent_mask(kp)
    return np.where(absent[:, None], 0.0, np.column_stack([kp[:, :2], np.ones(k)])).tolist()


def crop_record(gt: CocoDataset, results: Sequence[dict], refined: Sequence[dict], chosen: Sequence[dict]) -> list:
    """``chosen`` (:func:`select_crops`) with what drawing them takes: the image file, the ground-truth box, and
    ``poses`` (3, K, 3) = ground truth (x, y, v), input and refined (x, y, 1; absent keypoints 0, 0, 0), image
    pixels."""
    k = gt.schema.num_keypoints
    out = []
    for c in chosen:
        ann = gt.coco.anns[c["ann_id"]]
        gt_kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(k, 3).tolist()
        out.append(dict(c, image=str(gt.image_path(c["image_id"])), bbox=[float(v) for v in ann["bbox"]],
                        poses=[gt_kp, _pose_xyv(results[c["result_index"]], k),
                               _pose_xyv(refined[c["result_index"]], k)]))
    return out
