"""What a refinement gate did: which refined keypoints it took, and what that saved or cost against ground truth.

The gate (issue 17; :mod:`posefix_bench.engine.gate`) keeps the refined keypoint only where it expects an
improvement. Given the input poses, the ungated and the gated refinement (all one-to-one, in the same order) and
the (N, K) accept mask, this module classifies every keypoint with Ronchi & Perona's taxonomy (ICCV 2017, Sec. 3.1;
:func:`posefix_bench.evaluation.diagnosis.classify`) in all three and counts, per error type of the *input*
keypoint:

- refined (accepted) vs kept (rejected);
- fixes kept: a non-good input keypoint the ungated refiner made good, and the gate took it;
- fixes lost: the same, but the gate kept the input;
- breaks prevented: a good input keypoint the ungated refiner broke, and the gate kept the input;
- breaks let through: the same, but the gate took the refined keypoint.

Counts use the keypoints whose detection matched the same ground-truth person in all three results (as the
diagnosis's transitions do). The accepted share (accepted / refinable keypoints: predicted input keypoints of
refined poses) is reported over *all* records, overall, per input-confidence bin and per joint, without ground truth:
a gate that keeps nearly every input keypoint shows it here, whatever the AP says. COCO AP of the three results closes
the record (or the AP a caller already measured, e.g. in the bench's analyses, is passed in and kept).

Shape legend: N result records, K keypoints, M matched keypoints.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from posefix_bench.codecs.taxonomy import ABSENT, CLASSES, GOOD
from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.coco_eval import METRIC_KEYS, evaluate
from posefix_bench.evaluation.diagnosis import (
    DEFAULT_CONF_BINS, MATCH_OKS, check_conf_bins, check_pairing, classify, conf_bin_index, conf_bin_labels,
)  # fmt: skip
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY, absent_mask

__all__ = ["GATE_EFFECT_FORMAT", "accept_mask", "gate_effect"]

GATE_EFFECT_FORMAT = "posefix-bench/gate-effect/v1"


def accept_mask(gated: Sequence[dict], num_keypoints: int) -> np.ndarray:
    """(N, K) bool from the ``refine_accepted`` lists of gated records (a record without one: nothing accepted)."""
    out = np.zeros((len(gated), num_keypoints), bool)
    for i, r in enumerate(gated):
        acc = r.get("refine_accepted")
        if acc is None:
            continue
        if not isinstance(acc, (list, tuple)) or len(acc) != num_keypoints:
            raise PosefixError(f"gated results: record {i} has 'refine_accepted' of length "
                               f"{len(acc) if isinstance(acc, (list, tuple)) else type(acc).__name__}, expected "
                               f"{num_keypoints}")
        out[i] = np.asarray(acc, dtype=bool)
    return out


def _share(accepted: int, total: int) -> float | None:
    return accepted / total if total else None


def _outcomes(cin: np.ndarray, cu: np.ndarray, cg: np.ndarray, acc: np.ndarray) -> dict:
    """The counts of one group of matched keypoints."""
    bad_in, good_in = cin != GOOD, cin == GOOD
    fixed_u, broken_u = bad_in & (cu == GOOD), good_in & (cu != GOOD)
    return {
        "keypoints": int(cin.size),
        "refined": int(acc.sum()),
        "kept": int((~acc).sum()),
        "fixes_kept": int((fixed_u & acc).sum()),
        "fixes_lost": int((fixed_u & ~acc).sum()),
        "breaks_prevented": int((broken_u & ~acc).sum()),
        "breaks_let_through": int((broken_u & acc).sum()),
        "fixed_ungated": int(fixed_u.sum()),
        "fixed_gated": int((bad_in & (cg == GOOD)).sum()),
        "broken_ungated": int(broken_u.sum()),
        "broken_gated": int((good_in & (cg != GOOD)).sum()),
    }


def gate_effect(
    gt: CocoDataset,
    inputs: Sequence[dict],
    ungated: Sequence[dict],
    gated: Sequence[dict],
    accept: np.ndarray | None = None,
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    conf_bins: Sequence[float] = DEFAULT_CONF_BINS,
    oks_thr: float = MATCH_OKS,
    ap: Mapping | None = None,
) -> dict:
    """The record of what the gate did (module docstring).

    Args:
        gt: the ground truth.
        inputs, ungated, gated: validated results, one-to-one and in the same order.
        accept: (N, K) bool; default: read from the gated records' ``refine_accepted``.
        absent_policy, conf_bins, oks_thr: as :func:`posefix_bench.evaluation.diagnosis.diagnose`.
        ap: ``{"input", "ungated", "gated"}`` COCO metrics of the three results when already measured (with the
            same ground truth and absent policy); default: evaluated here.

    Returns:
        ``{"format", "classes", "conf_bin_labels", "accepted_share", "refinable", "accepted",
        "per_confidence": {bin: {"refinable", "accepted", "accepted_share"}}, "per_keypoint": {joint: the same},
        "matched": {outcome counts, all
        classes}, "per_class": {class: outcome counts}, "excluded_detections", "ap": {"input", "ungated", "gated"
        (metrics)}, "delta": {"ungated", "gated"} (AP), "gain_kept" (gated / ungated AP change where the ungated
        one is positive, else None)}``.
    """
    edges = check_conf_bins(conf_bins)
    check_pairing(inputs, ungated, "ungated refined results")
    check_pairing(inputs, gated, "gated refined results")
    k = gt.schema.num_keypoints
    accept = accept_mask(gated, k) if accept is None else np.asarray(accept, dtype=bool)
    if accept.shape != (len(inputs), k):
        raise PosefixError(f"gate accept mask of shape {accept.shape}, expected ({len(inputs)}, {k})")
    kp = np.asarray([r["keypoints"] for r in inputs], dtype=np.float64).reshape(len(inputs), k, 3)
    skipped = np.asarray([("refine_skipped" in r) for r in ungated], dtype=bool)
    refinable = ~absent_mask(kp, absent_policy) & ~skipped[:, None]
    if (accept & ~refinable).any():
        raise PosefixError("gate accept mask accepts keypoints that were not refined (absent, or pose skipped)")
    n_ref, n_acc = int(refinable.sum()), int(accept.sum())
    bins = conf_bin_index(kp[..., 2], edges)
    per_conf = {}
    for i, label in enumerate(conf_bin_labels(edges)):
        sel = refinable & (bins == i)
        per_conf[label] = {"refinable": int(sel.sum()), "accepted": int((accept & sel).sum()),
                           "accepted_share": _share(int((accept & sel).sum()), int(sel.sum()))}

    per_joint = {}
    for j, name in enumerate(gt.schema.keypoints):
        n_j, a_j = int(refinable[:, j].sum()), int(accept[:, j].sum())
        per_joint[name] = {"refinable": n_j, "accepted": a_j, "accepted_share": _share(a_j, n_j)}

    rec = {
        "format": GATE_EFFECT_FORMAT,
        "classes": list(CLASSES),
        "conf_bins": list(edges),
        "conf_bin_labels": conf_bin_labels(edges),
        "refinable": n_ref,
        "accepted": n_acc,
        "accepted_share": _share(n_acc, n_ref),
        "per_confidence": per_conf,
        "per_keypoint": per_joint,
    }
    rec.update(_matched_counts(gt, inputs, ungated, gated, accept, absent_policy, oks_thr))
    if ap is None:
        ap = {name: evaluate(gt, recs, absent_policy)["metrics"]
              for name, recs in (("input", inputs), ("ungated", ungated), ("gated", gated))}
    else:
        missing = [n for n in ("input", "ungated", "gated") if not isinstance(ap.get(n), Mapping)]
        if missing:
            raise PosefixError(f"gate effect: the given AP lacks the metrics of {', '.join(missing)}")
        ap = {n: dict(ap[n]) for n in ("input", "ungated", "gated")}
    rec["ap"] = ap
    delta = {}
    for name in ("ungated", "gated"):
        delta[name] = {m: (None if ap[name][m] is None or ap["input"][m] is None else ap[name][m] - ap["input"][m])
                       for m in METRIC_KEYS}
    rec["delta"] = delta
    du, dg = delta["ungated"]["AP"], delta["gated"]["AP"]
    rec["gain_kept"] = dg / du if du is not None and dg is not None and du > 0 else None
    return rec


def _matched_counts(gt, inputs, ungated, gated, accept, absent_policy, oks_thr) -> dict:
    """Outcome counts over the keypoints whose detection matched the same person in all three results."""
    tb = classify(gt, inputs, absent_policy, oks_thr)
    tu = classify(gt, ungated, absent_policy, oks_thr)
    tg = classify(gt, gated, absent_policy, oks_thr)
    same = (tb.det_ann_id >= 0) & (tb.det_ann_id == tu.det_ann_id) & (tb.det_ann_id == tg.det_ann_id)
    kb, ku, kg = same[tb.result_index], same[tu.result_index], same[tg.result_index]
    # rows are the same persons' labelled joints sorted by (result_index, joint) in all three: aligned row by row
    assert np.array_equal(tb.result_index[kb], tu.result_index[ku])
    assert np.array_equal(tb.result_index[kb], tg.result_index[kg])
    assert np.array_equal(tb.joint[kb], tu.joint[ku]) and np.array_equal(tb.joint[kb], tg.joint[kg])
    cin, cu, cg = tb.cls[kb], tu.cls[ku], tg.cls[kg]
    acc = accept[tb.result_index[kb], tb.joint[kb]]
    changed = ((tb.det_ann_id >= 0) | (tu.det_ann_id >= 0) | (tg.det_ann_id >= 0)) & ~same
    per_class = {name: _outcomes(cin[cin == c], cu[cin == c], cg[cin == c], acc[cin == c])
                 for c, name in enumerate(CLASSES) if c != ABSENT or (cin == ABSENT).any()}
    for v in per_class.values():
        v["accepted_share"] = _share(v["refined"], v["keypoints"])
    matched = _outcomes(cin, cu, cg, acc)
    matched["accepted_share"] = _share(matched["refined"], matched["keypoints"])
    return {"matched": matched, "per_class": per_class, "excluded_detections": int(changed.sum())}
