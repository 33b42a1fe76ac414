"""Acceptance of the synthesis by the diagnosis module (issues 4 and 10), on coco-mini val and train.

The diagnosis (``evaluation.diagnosis.classify``) matches every synthetic pose to a ground-truth person by OKS and
classifies its keypoints; what the synthesis drew as a class must come back as that class, and a measured profile
of the synthetic source must recover the probabilities it was drawn from.
"""

import numpy as np
import pytest

from posefix_bench.codecs.taxonomy import CLASSES, ERROR_TYPES, GOOD, O_BINS, V_BINS, o_bin, v_bin
from posefix_bench.evaluation.diagnosis import classify
from posefix_bench.evaluation.profile import measure_profile
from posefix_bench.synthesis.error_profile import ErrorProfile
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import synthesize_dataset


@pytest.fixture(scope="module")
def both(val_gt, train_gt):
    return (val_gt, train_gt)


@pytest.mark.parametrize("name", ["jitter", "inversion", "miss", "swap"])
def test_single_type_mixes_are_diagnosed_as_their_type(both, name):
    code = CLASSES.index(name)
    non_good = hit = same = total = 0
    for gt in both:
        syn = synthesize_dataset(gt, get_mix(name, gt.schema), seed=0)
        table = classify(gt, syn.to_results())
        rows = table.cls != GOOD
        if name == "swap":  # measured on people with an overlapping neighbour
            rows &= table.O > 0
        non_good += int(rows.sum())
        hit += int((table.cls[rows] == code).sum())
        # keypoint by keypoint, the diagnosed class is the synthesised one (when matched to the same person)
        ok = table.det_ann_id[table.result_index] == table.ann_id
        drawn = syn.cls[table.result_index[ok], table.joint[ok]]
        same += int((drawn == table.cls[ok]).sum())
        total += int(ok.sum())
    assert non_good > 300
    assert hit / non_good >= 0.95, (name, hit, non_good)
    assert same / total > 0.99


def test_paper_mix_frequencies_match_the_expected_ones(both):
    observed = np.zeros(len(CLASSES))
    expected = np.zeros(len(ERROR_TYPES))
    for gt in both:
        for seed in (0, 1):
            syn = synthesize_dataset(gt, get_mix("paper", gt.schema), seed=seed)
            table = classify(gt, syn.to_results())
            observed += np.bincount(table.cls, minlength=len(CLASSES))
            expected += syn.probabilities[syn.cls >= 0].sum(axis=0)
    assert observed.sum() > 4000
    obs = observed / observed.sum()
    exp = expected / expected.sum()
    assert obs[len(ERROR_TYPES):].sum() < 0.005  # (nearly) nothing absent
    np.testing.assert_allclose(obs[:len(ERROR_TYPES)], exp, atol=0.02)
    assert (exp[1:] > 0.015).all()  # every error type present in a measurable amount


def _cells(syn, keep):
    """Expected counts and variances per (V bin, O bin, joint, class) over the kept persons' labelled keypoints."""
    lab = (syn.cls >= 0) & keep[:, None]
    vb = np.broadcast_to(v_bin(syn.v)[:, None], lab.shape)[lab]
    ob = np.broadcast_to(o_bin(syn.o)[:, None], lab.shape)[lab]
    joint = np.broadcast_to(np.arange(lab.shape[1]), lab.shape)[lab]
    p = syn.probabilities[lab]
    shape = (len(V_BINS), len(O_BINS), lab.shape[1], len(ERROR_TYPES))
    mean, var = np.zeros(shape), np.zeros(shape)
    np.add.at(mean, (vb, ob, joint), p)
    np.add.at(var, (vb, ob, joint), p * (1 - p))
    return mean, var


def test_profile_of_the_paper_mix_recovers_its_probabilities(both):
    """measure_profile on the synthetic source: counts per (V bin, O bin, class) and per (joint, class) agree with
    the probabilities the synthesis drew from (the paper table with empty regions dropped out) within sampling
    error. Poses the diagnosis matches to another person (two neighbours swapped onto each other) or to nobody (a
    one-keypoint person whose keypoint is a miss) are classified against someone else: they are left out."""
    counts = mean = var = 0
    left_out = persons = 0
    for gt in both:
        for seed in range(4):
            syn = synthesize_dataset(gt, get_mix("paper", gt.schema), seed=seed)
            results = syn.to_results()
            keep = classify(gt, results).det_ann_id == syn.ann_ids
            left_out += int((~keep).sum())
            persons += len(keep)
            prof = measure_profile(gt, [r for r, k in zip(results, keep) if k])
            assert prof.meta["matched_detections"] == keep.sum() and prof.absent.sum() == 0
            m, v = _cells(syn, keep)
            counts, mean, var = counts + prof.counts, mean + m, var + v
    assert left_out < 0.02 * persons
    assert counts.sum() > 8000
    np.testing.assert_array_equal(counts.sum(-1), np.round(mean.sum(-1)).astype(int))  # same keypoints per cell
    for axes in ((2,), (0, 1)):  # pooled over joints; pooled over the V and O bins
        o, e, s = counts.sum(axes), mean.sum(axes), np.sqrt(var.sum(axes))
        z = np.where(s > 0, (o - e) / np.where(s > 0, s, 1), 0.0)
        assert (np.abs(o - e)[s == 0] < 1e-6).all()
        assert np.abs(z).max() < 4.0, np.round(z, 1)
        chi2 = float((z**2).sum())
        assert chi2 < 1.6 * (s > 0).sum() + 20  # no systematic excess over the sampling variance


def test_a_measured_profile_as_a_mix_reproduces_its_frequencies(both, tmp_path):
    """Profile the paper-mix source, synthesise again with ``--mix PROFILE.json``: the diagnosed class frequencies
    are the profile's (both sources share one taxonomy, so the loop closes)."""
    val_gt, train_gt = both
    parts = [measure_profile(train_gt, synthesize_dataset(train_gt, get_mix("paper", train_gt.schema), s).to_results())
             for s in range(3)]
    profile = ErrorProfile(parts[0].schema, parts[0].keypoints, sum(p.counts for p in parts),
                           sum(p.absent for p in parts))
    path = tmp_path / "paper_profile.json"
    profile.save(path)
    mix = get_mix(str(path), val_gt.schema)
    observed = np.zeros(len(CLASSES))
    expected = np.zeros(len(ERROR_TYPES))
    for seed in range(3):
        again = synthesize_dataset(val_gt, mix, seed=seed)
        observed += np.bincount(classify(val_gt, again.to_results()).cls, minlength=len(CLASSES))
        expected += again.probabilities[again.cls >= 0].sum(axis=0)
    measured = profile.counts.sum(axis=(0, 1, 2)) / profile.counts.sum()
    np.testing.assert_allclose(observed[:len(ERROR_TYPES)] / observed.sum(), expected / expected.sum(), atol=0.02)
    np.testing.assert_allclose(observed[:len(ERROR_TYPES)] / observed.sum(), measured, atol=0.03)
