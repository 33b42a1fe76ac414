"""The shared error taxonomy (coco-analyze's rules): threshold edges, tie order, per-person areas, and agreement with
a row-by-row rendering of coco-analyze's first-argmax over (own, others, own mirrored, others mirrored)."""

import numpy as np
import pytest

from posefix_bench.codecs.oks import keypoint_similarity, ks_distance
from posefix_bench.codecs.taxonomy import (
    GOOD, INVERSION, JITTER, MISS, SWAP, TAXONOMY, candidate_ks, classify_ks,
)
from posefix_bench.structures.schema import COCO17

NONE = np.nan


def _one(own, other=NONE, sym=NONE, other_sym=NONE) -> int:
    return int(classify_ks(own, other, sym, other_sym))


def test_threshold_edges_are_coco_analyzes():
    above, below = np.nextafter(0.85, 1.0), np.nextafter(0.5, 0.0)
    assert TAXONOMY == "coco-analyze"
    assert _one(above) == GOOD and _one(0.85) == JITTER  # good is KS > 0.85, strictly
    assert _one(0.5) == JITTER and _one(below) == MISS  # jitter from 0.5 on
    assert _one(0.1, sym=0.5) == INVERSION and _one(0.1, sym=below) == MISS
    assert _one(0.1, other=0.5) == SWAP and _one(0.1, other_sym=0.5) == SWAP and _one(0.1, other=below) == MISS
    assert _one(0.0, other=0.0, sym=0.0, other_sym=0.0) == MISS


def test_ties_go_to_the_first_row_own_others_own_mirrored_others_mirrored():
    assert _one(0.9, other=0.9) == GOOD and _one(0.7, sym=0.7) == JITTER and _one(0.7, other_sym=0.7) == JITTER
    assert _one(0.3, other=0.7, sym=0.7) == SWAP  # another person's same joint comes before the own mirror
    assert _one(0.3, sym=0.7, other_sym=0.7) == INVERSION  # the own mirror comes before the others' mirrors
    assert _one(0.3, other=0.6, sym=0.7) == INVERSION and _one(0.3, other=0.6, other_sym=0.7) == SWAP
    # a candidate that does not exist (NaN, or coco-analyze's -1) never wins; shapes broadcast
    codes = classify_ks(np.array([[0.2], [0.9]]), -1.0, np.array([NONE, 0.95]), NONE)
    np.testing.assert_array_equal(codes, [[MISS, INVERSION], [GOOD, INVERSION]])


def _scene(rng, n_images, g_n, k):
    """Random persons on a small integer grid (so that distances and hence KS values tie often), areas from a few
    values (equal areas tie too), random visibility."""
    kp = np.concatenate([rng.integers(0, 8, (n_images, g_n, k, 2)), rng.choice([0, 1, 2], (n_images, g_n, k, 1),
                                                                                 p=[0.25, 0.25, 0.5])], axis=-1)
    areas = rng.choice([600.0, 1500.0, 1500.0, 4000.0], (n_images, g_n))
    return kp.astype(np.float64), areas


def _rows_reference(det, kp, areas, t, schema):
    """coco-analyze's formulation for one detection (K, 2) of person t: (K,) class codes, -1 where unlabelled."""
    order = [t] + [g for g in range(len(kp)) if g != t]
    rows = [kp[g] for g in order] + [kp[g][schema.flip_index] for g in order]
    area = np.array([areas[g] for g in order] * 2)
    ks = np.stack([keypoint_similarity(((det - r[:, :2]) ** 2).sum(-1), a, schema.sigma_array)
                   for r, a in zip(rows, area)])
    ks = np.where(np.stack([r[:, 2] for r in rows]) > 0, ks, -1.0)
    best, arg, n = ks.max(0), ks.argmax(0), len(order)
    codes = np.where(arg == 0, np.where(best > 0.85, GOOD, JITTER), np.where(arg == n, INVERSION, SWAP))
    codes = np.where(best < 0.5, MISS, codes)
    return np.where(kp[t, :, 2] > 0, codes, -1), ks


def test_candidate_ks_and_classify_ks_equal_the_row_by_row_argmax():
    rng = np.random.default_rng(0)
    schema, n_images, g_n = COCO17, 300, 4
    kp, areas = _scene(rng, n_images, g_n, schema.num_keypoints)
    t = rng.integers(0, g_n, n_images)  # the matched person of each image's detection
    det = rng.integers(0, 8, (n_images, schema.num_keypoints, 2)).astype(np.float64)
    ar = np.arange(n_images)
    others_ok = np.arange(g_n)[None] != t[:, None]
    codes = classify_ks(*candidate_ks(det, kp[ar, t], areas[ar, t], kp, areas, others_ok, schema))
    tied = 0
    for i in range(n_images):
        ref, ks = _rows_reference(det[i], kp[i], areas[i], t[i], schema)
        lab = ref >= 0
        np.testing.assert_array_equal(codes[i][lab], ref[lab], err_msg=f"image {i}")
        tied += int(((ks == ks.max(0)).sum(0) > 1)[lab & (ks.max(0) >= 0.5)].sum())
    assert tied > 100  # the tie order was exercised, not only distinct maxima
    assert set(np.unique(codes[kp[ar, t][..., 2] > 0]).tolist()) == {GOOD, JITTER, INVERSION, SWAP, MISS}


def test_another_persons_joint_is_measured_with_that_persons_area():
    """A small person's keypoint near a large neighbour's joint: KS 0.3 on the small person's scale (a miss under
    the matched-area rule) but KS 0.3 ** (1/16) on the neighbour's, 16 times the area: a swap."""
    k, j = COCO17.num_keypoints, COCO17.index("left_wrist")
    small, large = 2500.0, 40000.0
    kp = np.zeros((2, k, 3))
    kp[0, :, :2], kp[0, :, 2] = 1000.0, 0  # the small person: only its left wrist is labelled, far away
    kp[0, j] = (1000.0, 1000.0, 2)
    kp[1, j] = (100.0, 100.0, 2)
    det = np.zeros((1, k, 2))
    det[0, j] = (100.0 + ks_distance(0.3, small, COCO17.sigma_array)[j], 100.0)
    ks_own, ks_other, ks_sym, ks_other_sym = candidate_ks(det, kp[:1], np.array([small]), kp[None],
                                                          np.array([[small, large]]), np.array([[False, True]]),
                                                          COCO17)
    assert ks_other[0, j] == pytest.approx(0.3 ** (small / large), rel=1e-9)
    assert ks_own[0, j] < 1e-9 and np.isnan(ks_sym[0, j]) and ks_other_sym[0, j] == -1.0  # neighbour's right: none
    assert classify_ks(ks_own, ks_other, ks_sym, ks_other_sym)[0, j] == SWAP
    assert classify_ks(ks_own, 0.3, ks_sym, ks_other_sym)[0, j] == MISS  # what the matched person's area said
