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
  report draws them without reading a results file again.

Shape legend: N detections, M matched keypoints, K keypoints.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from posefix_bench.codecs.taxonomy import GOOD
from posefix_bench.evaluation.coco_eval import evaluate
from posefix_bench.evaluation.diagnosis import KeypointTable, diagnose
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import absent_mask

__all__ = ["CROP_COUNT", "analyse_pair", "subset_record", "select_crops", "crop_record"]

CROP_COUNT = 8  # persons in the crop panel: half fixes, half breaks


def analyse_pair(gt: CocoDataset, results: Sequence[dict], refined: Sequence[dict] | None = None, *,
                 ap_impact: bool = False, subset_ids: Sequence[int] | None = None,
                 crops: int = CROP_COUNT) -> dict:
    """``{"diagnosis", "occluded", "crops"}`` of results (and their refined version) from one classification each.

    ``subset_ids``: annotation ids of the subset (None or empty: no subset record); ``crops``: persons for the crop
    panel (only with ``refined``).
    """
    tables: dict[str, KeypointTable] = {}
    diag = diagnose(gt, results, refined, ap_impact=ap_impact, tables=tables)
    after = tables.get("after")
    occluded = subset_record(gt, results, refined, subset_ids, tables["before"], after) if subset_ids else None
    chosen = []
    if refined is not None and crops > 0:
        chosen = crop_record(gt, results, refined, select_crops(tables["before"], after, results, crops))
    return {"diagnosis": diag, "occluded": occluded, "crops": chosen}


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
