"""Measured error profiles: how often an estimator makes each error type, per joint, conditioned as PoseFix's table.

PoseFix (Moon et al., CVPR 2019, Sec. 4) samples the error type of each synthetic input keypoint from Ronchi &
Perona's statistics (ICCV 2017, Sec. 4) of the 2016 COCO entries, per joint and conditioned on the person's number
of labelled keypoints V (bins V<=5, V<=10, V>10) and the number of other people overlapping it O (bins O=0, O=1-2,
O>=3, :mod:`posefix_bench.codecs.taxonomy`). This module measures the same table for a given estimator on a given
dataset from the diagnosis (:func:`posefix_bench.evaluation.diagnosis.classify`): every labelled keypoint of a
matched detection counts once, in the cell of its matched person's V and O (O over the non-crowd persons with
keypoints of the image, overlap = boxes intersect). Keypoints the estimator did not predict are counted apart as
``absent``. The counts are kept so the sampling uncertainty stays visible; the synthesis takes the saved file as a
mix (``--mix PROFILE.json``).

Shape legend: VB / OB the V / O bins, K keypoints, C = 5 error types.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from posefix_bench.codecs.taxonomy import ABSENT, ERROR_TYPES, O_BINS, V_BINS, o_bin, v_bin
from posefix_bench.evaluation.diagnosis import MATCH_OKS, KeypointTable, classify
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY
from posefix_bench.synthesis.error_profile import ErrorProfile

__all__ = ["measure_profile", "profile_from_table"]


def profile_from_table(table: KeypointTable, meta: dict | None = None) -> ErrorProfile:
    """An :class:`ErrorProfile` from classified keypoints: counts (VB, OB, K, C) and absent (VB, OB, K)."""
    vb, ob, c, k = len(V_BINS), len(O_BINS), len(ERROR_TYPES), table.schema.num_keypoints
    cell = (v_bin(table.V) * ob + o_bin(table.O)) * k + table.joint
    present = table.cls != ABSENT
    counts = np.bincount(cell[present] * c + table.cls[present], minlength=vb * ob * k * c)
    absent = np.bincount(cell[~present], minlength=vb * ob * k)
    base = {
        "measured_with": "posefix-bench diagnosis (Ronchi & Perona taxonomy)",
        "absent_policy": table.absent_policy,
        "oks_thr": table.oks_thr,
        "matched_detections": int((table.det_ann_id >= 0).sum()),
        "keypoints": int(len(table)),
    }
    return ErrorProfile(
        schema=table.schema.name,
        keypoints=table.schema.keypoints,
        counts=counts.reshape(vb, ob, k, c),
        absent=absent.reshape(vb, ob, k),
        meta={**base, **(meta or {})},
    )


def measure_profile(
    gt: CocoDataset,
    results: Sequence[dict],
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    meta: dict | None = None,
    oks_thr: float = MATCH_OKS,
) -> ErrorProfile:
    """The measured error profile of validated ``results`` on ``gt`` (see the module docstring).

    ``meta`` (e.g. the ground-truth and results paths, the estimator) is merged into the profile's provenance,
    which also records the absent policy, the matching threshold, the matched detections and keypoints, and whether
    the results came from an untrained model.
    """
    table = classify(gt, results, absent_policy=absent_policy, oks_thr=oks_thr)
    untrained = any(bool(r.get("untrained", False)) for r in results)
    return profile_from_table(table, {"untrained": untrained, **(meta or {})})
