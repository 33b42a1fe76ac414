"""What the gate did (issue 17): fixes kept / lost, breaks prevented / let through per input error type, accepted
share overall and per confidence bin, on hand-built refinements of real coco-mini persons."""

from __future__ import annotations

import numpy as np
import pytest

from posefix_bench.codecs.oks import ks_distance
from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.gate_effect import accept_mask, gate_effect


def _persons(gt, n=2, min_labelled=12):
    out = []
    for image_id in gt.image_ids:
        arr = gt.gt_arrays(image_id)
        for g in range(len(arr)):
            lab = arr.keypoints[g, :, 2] > 0
            if not arr.iscrowd[g] and lab.sum() >= min_labelled and arr.areas[g] > 64**2:
                out.append((image_id, arr.keypoints[g].copy(), float(arr.areas[g]), np.flatnonzero(lab)))
            if len(out) == n:
                return out
    raise AssertionError("coco-mini val has fewer large, well-labelled persons than expected")


def _record(gt, image_id, kp):
    return {"image_id": int(image_id), "category_id": gt.category_id, "keypoints": kp.reshape(-1).tolist(),
            "score": 0.9}


def test_gate_effect_counts_each_outcome(val_gt):
    sig = val_gt.schema.sigma_array
    persons = _persons(val_gt)
    inputs, ungated, accept = [], [], np.zeros((2, 17), bool)
    for p, (image_id, gt_kp, area, lab) in enumerate(persons):
        kp = gt_kp.copy()
        kp[:, 2] = np.where(gt_kp[:, 2] > 0, 0.9, 0.0)  # unlabelled joints absent
        jit = ks_distance(0.7, area, sig)  # a jitter-sized offset per joint
        far = ks_distance(0.02, area, sig)  # far from everything: a miss
        a, b = int(lab[0]), int(lab[1])
        kp_in = kp.copy()
        kp_in[a, 0] += jit[a]  # input jitter ...
        kp_in[a, 2] = 0.3  # ... with a low confidence
        ref = kp.copy()  # ... which the refiner fixes (back on the joint)
        ref[b, 1] += far[b]  # and it breaks a good one
        inputs.append(_record(val_gt, image_id, kp_in))
        ungated.append(_record(val_gt, image_id, ref))
        refinable = kp_in[:, 2] > 0
        if p == 0:  # take the fix, keep the break out, and take every other keypoint
            accept[p] = refinable
            accept[p, b] = False
        else:  # lose the fix, let the break through, nothing else
            accept[p, b] = True
    gated = []
    for i, r in enumerate(ungated):
        kin = np.asarray(inputs[i]["keypoints"]).reshape(17, 3)
        kre = np.asarray(r["keypoints"]).reshape(17, 3)
        gated.append(dict(r, keypoints=np.where(accept[i][:, None], kre, kin).reshape(-1).tolist(),
                          refine_accepted=accept[i].astype(int).tolist()))
    rec = gate_effect(val_gt, inputs, ungated, gated)
    assert np.array_equal(accept_mask(gated, 17), accept)
    jitter, good = rec["per_class"]["jitter"], rec["per_class"]["good"]
    assert (jitter["fixes_kept"], jitter["fixes_lost"], jitter["fixed_ungated"], jitter["fixed_gated"]) == (1, 1, 2, 1)
    assert (good["breaks_prevented"], good["breaks_let_through"]) == (1, 1)
    assert (good["broken_ungated"], good["broken_gated"]) == (2, 1)
    assert jitter["refined"] == 1 and jitter["kept"] == 1
    n_ref = sum(int((np.asarray(r["keypoints"][2::3]) > 0).sum()) for r in inputs)
    assert rec["refinable"] == n_ref and rec["accepted"] == int(accept.sum())
    assert rec["accepted_share"] == pytest.approx(accept.sum() / n_ref)
    low = rec["per_confidence"]["<0.25"]
    assert low["refinable"] == 0 and low["accepted_share"] is None
    assert rec["per_confidence"]["0.25-0.5"] == {"refinable": 2, "accepted": 1, "accepted_share": 0.5}
    assert rec["matched"]["keypoints"] == sum(len(p[3]) for p in persons)
    # AP: the ungated refinement fixes as much as it breaks; records carry input, ungated and gated metrics
    assert set(rec["ap"]) == {"input", "ungated", "gated"}
    assert rec["delta"]["gated"]["AP"] == pytest.approx(rec["ap"]["gated"]["AP"] - rec["ap"]["input"]["AP"])
    # per joint: the accepted share of each joint's refinable keypoints; they add up to the totals
    joints = rec["per_keypoint"]
    assert list(joints) == list(val_gt.schema.keypoints)
    assert sum(j["accepted"] for j in joints.values()) == rec["accepted"]
    assert sum(j["refinable"] for j in joints.values()) == rec["refinable"]
    # AP measured elsewhere (the bench's analyses) is kept, not computed again
    given = gate_effect(val_gt, inputs, ungated, gated, ap=rec["ap"])
    assert given == rec
    with pytest.raises(PosefixError, match="lacks the metrics of gated"):
        gate_effect(val_gt, inputs, ungated, gated, ap={"input": rec["ap"]["input"], "ungated": rec["ap"]["ungated"]})


def test_gate_effect_refuses_masks_that_accept_unrefined_keypoints(val_gt):
    (image_id, gt_kp, _, _), = _persons(val_gt, 1)
    kp = gt_kp.copy()
    kp[:, 2] = 0.9
    kp[3] = 0.0  # an absent input keypoint: never refined
    rec = [_record(val_gt, image_id, kp)]
    accept = np.ones((1, 17), bool)  # including the absent one
    with pytest.raises(PosefixError, match="not refined"):
        gate_effect(val_gt, rec, rec, rec, accept)
    with pytest.raises(PosefixError, match="expected"):
        gate_effect(val_gt, rec, rec, rec, np.zeros((2, 17), bool))
