"""Does the refiner fix low-confidence keypoints? The sentence's rule on hand-made per-bin records."""

from posefix_bench.record.stats import seed_stat
from posefix_bench.reporting.confidence_sentences import (
    confidence_lines, confidence_pair_sentence, low_confidence_sentence,
)  # fmt: skip


def _bin(fixed, broken, ci):
    return {"fixed_total": seed_stat({0: fixed}), "broken": {"broken": seed_stat({0: broken})},
            "net_fixed": seed_stat({0: fixed - broken}), "counts_ci95": {"net": ci, "fixed": None, "broken": None}}


def test_high_confidence_fixed_low_confidence_not():
    per = {"<0.25": _bin(10, 9, [-4.0, 6.0]), "0.25-0.5": _bin(5, 1, [1.0, 7.0]), ">=0.75": _bin(40, 10, [20.0, 40.0])}
    text = low_confidence_sentence("lb-on", "src", per)
    assert text == ("Does lb-on fix low-confidence keypoints on src? 1 net in bin <0.25 (10 fixed, 9 broken; 95% "
                    "interval [-4.0, +6.0]); 30 net in bin >=0.75 (40 fixed, 10 broken; 95% interval [+20.0, +40.0]): "
                    "it neither fixes nor breaks (beyond what this validation set resolves) the low-confidence "
                    "keypoints and fixes the high-confidence ones, as the PyTorch re-implementation of PoseFix "
                    "observed (high-confidence fixed, low-confidence not).")
    per["<0.25"] = _bin(20, 2, [10.0, 26.0])
    text = low_confidence_sentence("x", "src", per)
    assert "it fixes the low-confidence keypoints and fixes the high-confidence ones; the PyTorch" in text
    assert text.endswith("does not hold here.")
    per[">=0.75"] = _bin(1, 30, [-36.0, -20.0])
    assert "and breaks more than it fixes of the high-confidence ones" in low_confidence_sentence("x", "src", per)
    per["<0.25"]["counts_ci95"] = None  # an old record: no interval, no claim
    assert low_confidence_sentence("x", "src", {"<0.25": per["<0.25"], ">=0.75": per[">=0.75"]}) is None


def test_two_ablations_in_the_lowest_bin():
    rec = {"<0.25": {"net": {"delta": 6.0, "ci95": [1.0, 11.0]}}, ">=0.75": {"net": {"delta": 0.0, "ci95": [-1, 1]}}}
    text = confidence_pair_sentence("lb-on", "lb-off", "src", rec)
    assert text == ("In the lowest input-confidence bin (<0.25) of src, lb-on - lb-off = +6.0 net fixed keypoints "
                    "(95% interval [+1.0, +11.0], same draws): lb-on nets more fixed keypoints than lb-off.")
    rec["<0.25"]["net"]["ci95"] = [-2.0, 11.0]
    assert "do not differ beyond what this validation set resolves" in confidence_pair_sentence("a", "b", "s", rec)
    assert confidence_pair_sentence("a", "b", "s", None) is None
    bins = {"<0.25": _bin(1, 1, [-3.0, 3.0]), ">=0.75": _bin(9, 1, [2.0, 9.0])}
    sums = {n: {"sources": {"s": {"per_confidence": bins}},
                "paired": {"off": {"per_confidence": {"s": rec}}} if n == "on" else {}} for n in ("on", "off")}
    lines = confidence_lines(sums, {"on": "lb-on", "off": "lb-off"}, ["on", "off"], ["s"])
    assert len(lines) == 3 and lines[2].startswith("In the lowest input-confidence bin (<0.25) of s, lb-on - lb-off")


def test_the_dedicated_occluded_split_is_preferred():
    occ = {"persons": 1600, "per_confidence": {"<0.25": _bin(3, 1, [0.5, 4.0]), ">=0.75": _bin(9, 1, [2.0, 9.0])}}
    main = {"<0.25": _bin(1, 1, [-3.0, 3.0]), ">=0.75": _bin(9, 1, [2.0, 9.0])}
    sums = {n: {"sources": {"s": {"per_confidence": main, "occluded": occ}}, "paired": {}} for n in ("on", "off")}
    lines = confidence_lines(sums, {"on": "lb-on", "off": "lb-off"}, ["on", "off"], ["s"])
    assert lines[0].startswith("Does lb-on fix low-confidence keypoints on the 1600 occluded persons of s (dedicated "
                               "split)?") and "it fixes the low-confidence keypoints" in lines[0]
