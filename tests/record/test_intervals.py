"""Intervals of the per-ablation metrics from the analyses' bootstrap samples: seed means, source means, pairs.

The samples are those of real (results, refined) pairs on coco-mini val (:func:`pair_bootstrap`), so the draws line
up as in a bench run; each interval must be the percentile interval of the quantity computed draw by draw.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from posefix_bench.evaluation.bootstrap import interval
from posefix_bench.evaluation.pair import analyse_pair
from posefix_bench.record.intervals import (comparison, method_comparisons, overall_interval, same_draws,
                                            source_intervals)
from posefix_bench.record.metrics import ablation_metrics
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import synthesize_results

B = 120


@pytest.fixture(scope="module")
def pairs(val_gt):
    """Input (paper mix) and three 'refinements' (other mixes) analysed with the bootstrap: {name: (run, samples)}."""
    results = synthesize_results(val_gt, get_mix("paper", val_gt.schema), seed=1)
    ids = [a["id"] for a in val_gt.coco.dataset["annotations"] if a.get("num_keypoints", 0) >= 10][:25]
    out = {}
    for name, seed, scale in (("a0", 2, 0.5), ("a1", 3, 0.5), ("b0", 4, 2.0)):
        mix = {"base": "paper", "scale": {"miss": scale, "swap": scale}, "name": name}
        refined = synthesize_results(val_gt, get_mix(mix, val_gt.schema), seed=seed)
        rec = analyse_pair(val_gt, results, refined, subset_ids=ids, bootstrap={"resamples": B, "seed": 0})
        d = rec["diagnosis"]
        run = SimpleNamespace(bootstrap=rec["bootstrap"], ap_before=d["ap"], ap_after=d["refined"]["ap"])
        out[name] = (run, rec["bootstrap_samples"])
    return out


def test_seed_mean_interval_is_taken_draw_by_draw(pairs):
    (r0, s0), (r1, s1) = pairs["a0"], pairs["a1"]
    assert same_draws([s0, s1]) and same_draws([s0, s1], "occluded")
    ci = source_intervals({0: r0, 1: r1}, {0: s0, 1: s1})
    mean = ((s0["all_after"] - s0["all_before"]) + (s1["all_after"] - s1["all_before"])) / 2
    assert ci["all"]["ci95"] == interval(mean)
    assert ci["all"]["ci95_per_seed"] == {"0": r0.bootstrap["all"]["ci95"], "1": r1.bootstrap["all"]["ci95"]}
    assert ci["occluded"]["ci95_per_seed"]["1"] == r1.bootstrap["occluded"]["ci95"]
    net = (s0["fixed"] - s0["broken"] + s1["fixed"] - s1["broken"]) / 2
    label = next(iter(r0.bootstrap["per_confidence"]))
    assert ci["per_confidence"][label]["net"] == interval(net[:, 0])
    # one seed without samples: its own interval; two seeds without samples: none (no shared draws to average)
    assert source_intervals({0: r0}, None)["all"]["ci95"] == r0.bootstrap["all"]["ci95"]
    assert source_intervals({0: r0, 1: r1}, None)["all"]["ci95"] is None
    # another draw (other seed of the bootstrap) does not line up
    other = dict(s1, seed=np.int64(5))
    assert not same_draws([s0, other]) and source_intervals({0: r0, 1: r1}, {0: s0, 1: other})["all"]["ci95"] is None


def test_paired_comparison_of_two_ablations(pairs):
    (_, a0), (_, a1), (_, b0) = pairs["a0"], pairs["a1"], pairs["b0"]
    rec = comparison({"src": {0: a0, 1: a1}}, {"src": {0: b0}})
    per = rec["sources"]["src"]
    mean_a = (float(a0["all_ap_after"]) + float(a1["all_ap_after"])) / 2
    assert per["delta"] == pytest.approx(mean_a - float(b0["all_ap_after"]))
    assert per["ci95"] == interval((a0["all_after"] + a1["all_after"]) / 2 - b0["all_after"])
    assert per["ci95_per_seed"] == {"0": interval(a0["all_after"] - b0["all_after"])}  # seed 0 only is shared
    assert rec["overall"]["ci95"] == per["ci95"] and per["ci95"][0] > 0  # fewer misses than more: a clear gain
    assert comparison({"src": {0: a0}}, {"other": {0: b0}}) is None
    two = comparison({"s": {0: a0}, "t": {0: a1}}, {"s": {0: b0}, "t": {0: b0}})
    both = ((a0["all_after"] - b0["all_after"]) + (a1["all_after"] - b0["all_after"])) / 2
    assert two["overall"]["ci95"] == interval(both)
    assert overall_interval({"s": {0: a0}, "t": {0: a1}}) == interval(
        ((a0["all_after"] - a0["all_before"]) + (a1["all_after"] - a1["all_before"])) / 2)


def test_every_method_is_compared_with_every_other_on_shared_draws(pairs):
    (_, a0), (_, b0) = pairs["a0"], pairs["b0"]
    methods = [SimpleNamespace(name=n, metrics={}) for n in ("m", "n", "none")]
    method_comparisons(methods, {"m": {"src": {0: a0}}, "n": {"src": {0: b0}}})
    m, n, none = methods
    assert set(m.metrics["paired"]) == {"n"} and set(n.metrics["paired"]) == {"m"} and none.metrics["paired"] == {}
    assert m.metrics["paired"]["n"] == comparison({"src": {0: a0}}, {"src": {0: b0}})
    there, back = m.metrics["paired"]["n"]["sources"]["src"], n.metrics["paired"]["m"]["sources"]["src"]
    assert there["delta"] == pytest.approx(-back["delta"]) and there["ci95"] == pytest.approx([-back["ci95"][1],
                                                                                               -back["ci95"][0]])


def test_metrics_carry_ci95_beside_each_delta(pairs, val_gt):
    from posefix_bench.record.schema import Run

    runs = []
    for seed, name in enumerate(("a0", "a1")):
        r, _ = pairs[name]
        runs.append(SimpleNamespace(
            ablation="x", seed=seed, source="src", ap_before=r.ap_before, ap_after=r.ap_after, counts_before={},
            counts_after={}, fixed={t: {"input": 1, "fixed": 0, "rate": 0.0} for t in ("jitter", "inversion", "swap",
                                                                                      "miss")},
            broken={"input": 1, "broken": 0, "rate": 0.0}, per_confidence={}, per_group={},
            occluded={"persons": 25, "ap_before": r.bootstrap["occluded"]["base"]["value"],
                      "ap_after": r.bootstrap["occluded"]["other"]["value"]},
            untrained=False, refine_precision="fp32", train={}, bootstrap=r.bootstrap))
    assert "bootstrap" in Run.__dataclass_fields__
    samples = {"src": {0: pairs["a0"][1], 1: pairs["a1"][1]}}
    m = ablation_metrics(profile="p", name="x", config="c", seeds=[0, 1], tags=[], default=True, factors={},
                         model={}, mix="paper", runs=runs, sources=["src"], fps=None, samples=samples)
    src = m["sources"]["src"]
    assert src["ci95"] == source_intervals({0: runs[0], 1: runs[1]}, samples["src"])["all"]["ci95"]
    assert set(src["ci95_per_seed"]) == {"0", "1"} and src["occluded"]["ci95"] is not None
    assert m["overall_ci95"]["all"] == src["ci95"] and m["paired"] == {}
    assert m["bootstrap"]["resamples"] == B and m["bootstrap"]["runs"] == 2 and m["bootstrap"]["seconds"] > 0


def test_confidence_bins_compared_on_shared_draws(pairs):
    from posefix_bench.record.intervals import confidence_comparison

    (_, a0), (_, b0) = pairs["a0"], pairs["b0"]
    labels = list(pairs["a0"][0].bootstrap["per_confidence"])
    rec = confidence_comparison({"s": {0: a0}}, {"s": {0: b0}}, labels)["s"]
    net = (a0["fixed"] - a0["broken"]) - (b0["fixed"] - b0["broken"])
    for i, lab in enumerate(labels):
        assert rec[lab]["net"]["ci95"] == interval(net[:, i])
        assert rec[lab]["fixed"]["delta"] == pytest.approx(float(a0["fixed_identity"][i] - b0["fixed_identity"][i]))
        assert rec[lab]["fixed"]["delta"] == (pairs["a0"][0].bootstrap["per_confidence"][lab]["fixed"]
                                              - pairs["b0"][0].bootstrap["per_confidence"][lab]["fixed"])


def test_the_occluded_comparison_is_over_the_dedicated_splits_sources(pairs):
    from posefix_bench.record.intervals import paired_comparisons

    (ra, a0), (_, a1), (_, b0) = pairs["a0"], pairs["a1"], pairs["b0"]
    other = dict(a1, occluded_image_ids=a1["occluded_image_ids"][:-1])  # source t: its occluded subset elsewhere
    other_b = dict(b0, occluded_image_ids=other["occluded_image_ids"])
    samples = {"A": {"s": {0: a0}, "t": {0: other}}, "B": {"s": {0: b0}, "t": {0: other_b}}}
    abl = [SimpleNamespace(name=n, tags=["lb"], metrics={"paired": {}}, runs=[ra]) for n in ("A", "B")]
    comp = [dict(tag="lb", subset="occluded")]
    paired_comparisons(abl, comp, samples)
    assert abl[0].metrics["paired"]["B"]["occluded"]["overall"] is None  # the sources' draws differ: no mean
    assert set(abl[0].metrics["paired"]["B"]["occluded"]["sources"]) == {"s", "t"}
    for a in abl:
        a.metrics["paired"] = {}
    paired_comparisons(abl, comp, samples, occluded_sources=["s"])
    rec = abl[0].metrics["paired"]["B"]
    assert rec["occluded"]["overall"]["ci95"] == interval(a0["occluded_after"] - b0["occluded_after"])
    assert rec["all"]["overall"]["ci95"] is not None and rec["per_confidence"]["s"]
