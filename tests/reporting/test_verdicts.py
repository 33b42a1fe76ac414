"""The sentences that judge results: their rules on hand-made seed stats."""
import pytest

from posefix_bench.record.stats import compare, judge, resolution, seed_stat
from posefix_bench.reporting.gate_verdicts import gate_sentences
from posefix_bench.reporting.verdicts import (
    component_sentences, curve_means, curve_sources, default_sentences, deficit_sentence, family_trend_sentences, fmt_stat,
    free_baseline_sentence, gain_trend_sentence, ranking_sentences, relation_sentence, verdict_sentence,
)


def _summary(name, head, deltas, seeds=(0, 1)):
    return {"ablation": name, "factors": {"head": head, "mix": "paper"}, "seeds": list(seeds), "untrained": False,
            "sources": {"s": {"delta": seed_stat(dict(enumerate(deltas)))}}}


def test_the_rules_of_judging_and_comparing():
    two = seed_stat({0: 0.04, 1: 0.06})
    assert judge(two, 0.01) == "gain" and judge(seed_stat({0: -0.04, 1: -0.02}), 0.01) == "worse"
    assert judge(seed_stat({0: -0.04, 1: 0.06}), 0.001) == "unclear"
    assert judge(seed_stat({0: 0.004}), 0.01) == "no difference" and judge(None, 0.01) == "n/a"
    assert compare(two, seed_stat({0: 0.03, 1: 0.05}), 0.0)["state"] == "tied"  # 0.01 apart, spread 0.02
    assert compare(two, seed_stat({0: 0.0, 1: 0.01}), 0.0)["state"] == "ahead"
    assert resolution(300) == 0.01 and resolution(0) == 3.0


def test_numbers_and_one_change_in_words():
    assert fmt_stat(seed_stat({0: 0.04, 1: 0.06}), signed=True) == "+0.050 [+0.040..+0.060]"
    assert fmt_stat(seed_stat({0: 0.5}), as_pct=True) == "50%" and fmt_stat(None) == "-"
    one = seed_stat({0: 0.05})
    assert "cannot separate" in relation_sentence("a", one, "b", seed_stat({0: 0.045}), 0.01)
    assert "no spread to tell" in relation_sentence("a", one, "b", seed_stat({0: 0.0}), 0.01)
    two = seed_stat({0: 0.04, 1: 0.06})
    assert verdict_sentence("It", 0.5, seed_stat({0: 0.54, 1: 0.56}), two, 0.01, "src") == (
        "It gains on src: AP 0.500 -> 0.550 [0.540..0.560], delta +0.050 [+0.040..+0.060] (2 seeds).")
    text = verdict_sentence("It", 0.5, None, seed_stat({0: -0.04, 1: 0.06}), 0.001, "src")
    assert "seeds disagree on the sign (-0.040..+0.060)" in text


def test_a_ranking_names_the_leader_the_ties_and_the_worse():
    items = [("a", seed_stat({0: 0.05, 1: 0.06})), ("b", seed_stat({0: 0.05, 1: 0.055})),
             ("c", seed_stat({0: 0.052, 1: 0.058})), ("d", seed_stat({0: -0.05, 1: -0.04})), ("e", None)]
    text = " ".join(ranking_sentences(items, 0.01, "src"))
    assert text.startswith("On src, by mean AP delta: a +0.055")
    assert "Also within the noise bound of a: b" in text
    assert "Makes things worse than the input: d (-0.045 [-0.050..-0.040])" in text and " e " not in text


def test_head_components_and_their_interaction():
    sums = {s["ablation"]: s for s in (_summary("none", "posefix", [0.00, 0.02]), _summary("p", "prior", [0.10, 0.12]),
                                        _summary("k", "skip", [0.00, 0.02]),
                                        _summary("pk", "prior+skip", [0.12, 0.14]))}
    text = " ".join(component_sentences(sums, ["s"], 0.005))
    assert "The identity prior carries the gain (+0.110 AP)" in text
    assert "The stride-4 skip changes it by +0.010 AP, within its noise bound" in text
    sums["k"] = _summary("k", "skip", [0.12, 0.13])  # the prior helps only without the skip
    text = " ".join(component_sentences(sums, ["s"], 0.005))
    assert "The effect of the identity prior depends on the rest of the head (+0.100 AP from none to p" in text


def test_the_default_against_a_better_ablation():
    labels = {n: n for n in ("none", "pk", "one")}
    sums = {"none": _summary("none", "posefix", [0.00, 0.02]), "pk": _summary("pk", "prior+skip", [0.12, 0.14])}
    assert "WARNING" in " ".join(default_sentences(sums, labels, "none", ["s"], 0.005))  # two seeds: a warning
    assert "support the default" in " ".join(default_sentences(sums, labels, "pk", ["s"], 0.005))
    one = {"none": sums["none"], "one": _summary("one", "skip", [0.2], seeds=(0,))}
    text = " ".join(default_sentences(one, labels, "none", ["s"], 0.005))  # one seed: a plain difference
    assert "WARNING" not in text and "on its only seed" in text and "does not show that this repeats" in text
    assert default_sentences(sums, labels, None, ["s"], 0.005) == []


def test_the_published_heads_deficit_over_the_schedule():
    ref = {50: 0.05, 100: 0.08, 150: 0.09, 200: 0.09}
    narrowing = deficit_sentence("P", {50: -0.50, 100: -0.30, 150: -0.20, 200: -0.10}, "D", ref, 0.005)
    assert "the deficit narrows but stays at -0.190" in narrowing and "still narrowing" in narrowing
    flat = deficit_sentence("P", {50: -0.40, 100: -0.40, 150: -0.40, 200: -0.40}, "D", ref, 0.005)
    assert "the deficit is wider at the last checkpoint than at the first; the budget does not explain it" in flat
    same = deficit_sentence("P", {50: -0.45, 100: -0.452, 150: -0.449, 200: -0.448}, "D", {k: -0.04 for k in ref}, 0.005)
    assert "the deficit stays" in same and "the budget does not explain it" in same
    # wider at the end than at the start, but narrowing over the last step: the budget is not ruled out
    late = deficit_sentence("P", {50: -0.48, 100: -0.59, 150: -0.58, 200: -0.45}, "D", ref, 0.005, "the source s")
    assert "(AP delta, mean over the source s)" in late and "the deficit is wider at the last checkpoint" in late
    assert "but it narrowed over the last step (-0.670 -> -0.540)" in late and "does not explain" not in late
    closing = deficit_sentence("P", {50: -0.30, 200: 0.088}, "D", ref, 0.005)
    assert "the deficit closes" in closing
    assert deficit_sentence("P", {50: 0.1}, "D", ref, 0.005) is None
    summary = {"sources": {"s": {"ap_before": 0.5}}, "learning_curve": [{"iterations": 50, "ap": {"s": 0.6}}]}
    assert curve_means(summary, ["s"]) == {50: 0.09999999999999998}
    # curves on some of the sources: the sources every point has, in the profile's order
    two = {"sources": {"s": {"ap_before": 0.5}, "t": {"ap_before": 0.2}},
           "learning_curve": [{"iterations": 50, "ap": {"t": 0.3, "s": 0.6}}, {"iterations": 100, "ap": {"t": 0.4}}]}
    assert curve_sources([summary, two], ["s", "t"]) == [] and curve_sources([two], ["s", "t"]) == ["t"]
    assert curve_sources([two, {"learning_curve": None}], ["t", "s"]) == ["t"] and curve_sources([], ["t"]) == []
    assert curve_means(two, curve_sources([two], ["s", "t"])) == {50: 0.09999999999999998, 100: 0.2}


def test_gain_against_input_strength():
    shrinking = gain_trend_sentence([("strong", 0.7, 0.01), ("weak", 0.2, 0.10), ("mid", 0.5, 0.05)], 0.005)
    assert shrinking.startswith("The gain shrinks as inputs get stronger (3 inputs")
    assert "from +0.100 on weak (input AP 0.200) to +0.010 on strong (input AP 0.700)" in shrinking
    growing = gain_trend_sentence([("a", 0.2, -0.05), ("b", 0.5, 0.0), ("c", 0.7, 0.03)], 0.005)
    assert "The gain grows" in growing
    flat = gain_trend_sentence([("a", 0.2, 0.010), ("b", 0.5, 0.02), ("c", 0.7, 0.012)], 0.005)
    assert flat.startswith("The gain does not change with input strength beyond the resolution (0.005)")
    assert "too few to call a trend" in gain_trend_sentence([("a", 0.2, 0.1), ("b", 0.7, 0.0)], 0.005)
    assert gain_trend_sentence([("a", 0.2, 0.1)], 0.005) is None


def test_gain_against_input_strength_within_families():
    """Pooled, the gain grows (the strong synthetic source gains most); within each family it shrinks: the
    within-family sentences are what a pooled slope hides (Simpson's paradox)."""
    pts = [("lad-1", 0.15, 0.02), ("lad-2", 0.40, 0.01), ("lad-3", 0.60, -0.01), ("syn-x0.5", 0.75, 0.05),
           ("syn", 0.62, 0.09), ("other", 0.30, 0.0)]
    fam = {"lad-1": "L", "lad-2": "L", "lad-3": "L", "syn": "S", "syn-x0.5": "S", "other": "other"}
    assert "The gain grows" in gain_trend_sentence(pts, 0.005)
    ladder, synthetic = family_trend_sentences(pts, fam, 0.005)
    assert ladder == ("Within L the gain shrinks as the input gets stronger: +0.020 on lad-1 (input AP 0.150), "
                      "+0.010 on lad-2 (input AP 0.400), -0.010 on lad-3 (input AP 0.600).")
    assert synthetic.startswith("Within S the gain shrinks") and synthetic.index("on syn (") < synthetic.index("x0.5")
    flat = family_trend_sentences([("a", 0.2, 0.010), ("b", 0.5, 0.012)], {"a": "F", "b": "F"}, 0.005)
    assert flat == ["Within F the gain does not change with strength beyond the resolution (0.005): +0.010 on a "
                    "(input AP 0.200), +0.012 on b (input AP 0.500)."]
    assert family_trend_sentences(pts, {"other": "other"}, 0.005) == []  # one source: no family trend


def test_source_families():
    from posefix_bench.record.schema import SourceRun

    def src(name, type_, **meta):
        return SourceRun(name=name, type=type_, meta=dict(type=type_, **meta), results="", gt="", hash="", poses=0,
                         images=0, predict_seconds=None, baseline={})

    assert src("l1", "mmpose-trained", card="c", iteration=600).family == ("card", "c")
    assert src("l1f", "mmpose-trained", card="c", method="flip-test").family == ("source", "l1f")
    assert src("s", "synthetic", mix="paper").family == ("synthetic", "paper")
    half = dict(base="paper", scale=dict(jitter=0.5, inversion=0.5, swap=0.5, miss=0.5))
    assert src("s2", "synthetic", mix=half).family == ("synthetic", "paper")
    assert src("s3", "synthetic", mix=dict(base="paper", scale=dict(miss=0.5))).family == ("source", "s3")
    assert src("s4", "synthetic", mix=dict(base="paper", only="swap")).family == ("source", "s4")
    assert src("mp", "mediapipe").family == ("source", "mp")


def test_free_baseline_against_the_refiner():
    text = free_baseline_sentence("sb", "flip-test", 0.012, "r18", 0.050, 0.005)
    assert text == ("On sb, flip-test changes AP by +0.012 and the refiner r18 by +0.050: the refiner r18 does more, "
                    "by 0.038 AP.")
    assert "flip-test does more" in free_baseline_sentence("sb", "flip-test", 0.02, "r18", -0.01, 0.005)
    assert "a tie at this resolution (0.005)" in free_baseline_sentence("sb", "dark", 0.012, "r18", 0.015, 0.005)
    assert free_baseline_sentence("sb", "dark", None, "r18", 0.015, 0.005) is None


def test_gating_removes_harm_and_keeps_a_share_of_the_gain():
    def st(*v):
        return seed_stat(dict(enumerate(v)))

    rows = [("strong", st(-0.05, -0.03), st(0.001, 0.002), st(0.1, 0.2)),  # harm removed
            ("weak", st(0.08, 0.12), st(0.07, 0.09), st(0.7, 0.8)),  # a gain, 80% of it kept
            ("mid", st(-0.05, -0.04), st(-0.03, -0.02), st(0.5, 0.5))]  # harm left
    text = gate_sentences(rows, 0.01)
    assert len(text) == 4
    assert text[0] == ("On strong gating removes the harm of refinement: ungated -0.040 [-0.050..-0.030], gated "
                       "+0.002 [+0.001..+0.002] AP, within the resolution 0.010 of the input; the gate took 15% "
                       "[10%..20%] of the refinable keypoints.")
    assert text[1].startswith("On weak refinement gains and gating keeps 80% of the gain (ungated +0.100")
    assert text[2].startswith("On mid refinement makes things worse and gating does not remove the harm")
    assert text[3] == ("Gating removes the harm on 1 of the 2 sources where ungated refinement made things worse; it "
                       "remains on mid; where refinement gained, the gate keeps 80% of the gain on average.")
    clean = gate_sentences(rows[:2], 0.01)[-1]
    assert clean.startswith("Gating removes the harm on every source where ungated refinement made things worse "
                            "(strong)")
    new = gate_sentences([("s", st(0.002), st(-0.05), None)], 0.01)
    assert "ungated refinement changes AP by less than the resolution 0.010, and gated it makes things worse" in new[0]
    assert "took" not in new[0] and new[-1] == ("Ungated refinement made things worse on none of the 1 source; gated "
                                                "refinement makes things worse on s, where ungated it did not.")
    assert gate_sentences([], 0.01) == []


def test_absolute_paths_in_report_text_are_shown_relative():
    from posefix_bench.record.schema import REPO_ROOT, shown_text

    root = REPO_ROOT.parent / "shared" / "data" / "coco-mini"
    text = shown_text(f"training split train2017 of {root}, every image", "/nonexistent/cache")
    assert text == "training split train2017 of ../shared/data/coco-mini, every image"
    assert shown_text("/nonexistent/cache/train/ab/final.pth (seed 0)", "/nonexistent/cache") == \
        "<cache>/train/ab/final.pth (seed 0)"
    assert shown_text("AP 0.5 / 0.6, no path", None) == "AP 0.5 / 0.6, no path"


def test_report_paths_through_a_symlinked_shared_folder_and_data_root(tmp_path, monkeypatch):
    """``../shared`` as a link to another disk (a common layout for data), a data root that is itself a link, and a
    step cache behind a link: reports name them as the user laid them out, whichever form a path arrives in."""
    from posefix_bench.record import schema

    work, disk = tmp_path / "work", tmp_path / "disk"
    repo, real = work / "repo", disk / "shared" / "data" / "coco-mini"
    repo.mkdir(parents=True)
    real.mkdir(parents=True)
    (work / "shared").symlink_to(disk / "shared", target_is_directory=True)
    (disk / "cache").mkdir()
    (tmp_path / "cache-link").symlink_to(disk / "cache", target_is_directory=True)
    (tmp_path / "my-coco").symlink_to(real, target_is_directory=True)
    monkeypatch.setattr(schema, "REPO_ROOT", repo)
    for form in (work / "shared" / "data" / "coco-mini", real, tmp_path / "my-coco"):
        assert schema.shown_path(form) == "../shared/data/coco-mini", form
    assert schema.shown_text(f"training split train2017 of {real}, every image") == \
        "training split train2017 of ../shared/data/coco-mini, every image"
    assert schema.shown_path(disk / "cache" / "train" / "final.pth", tmp_path / "cache-link") == "<cache>/train/final.pth"
    assert schema.shown_path(repo / "reports" / "quick") == "reports/quick"
    assert schema.shown_path(tmp_path / "other" / "x.json") == "<elsewhere>/x.json"


def test_gain_plot_joins_each_family():
    from posefix_bench.reporting.bench_plots import gain_input_figure

    pts = [("a1", 0.2, 0.03), ("b", 0.5, 0.0), ("a2", 0.6, -0.01), ("a0", 0.1, 0.04)]
    fig = gain_input_figure(pts, "r", {"a0": "family A", "a1": "family A", "a2": "family A", "b": "b"})
    ax = fig.axes[0]
    joined = [ln for ln in ax.get_lines() if ln.get_label() == "family A"]
    assert len(joined) == 1 and list(joined[0].get_xdata()) == [0.1, 0.2, 0.6]  # weakest first
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["family A"]
    assert sorted(t.get_text() for t in ax.texts) == ["a0", "a1", "a2", "b"]
    assert gain_input_figure(pts[:1], "r") is None


# -- with the paired bootstrap's intervals (issue 27) ---------------------------------------------------------------
def test_judging_by_intervals_on_every_seed():
    from posefix_bench.record.stats import compare_ci, judge_ci

    assert judge_ci({"0": [0.01, 0.03], "1": [0.002, 0.02]}) == "gain"
    assert judge_ci({"0": [-0.03, -0.01]}) == "worse"
    assert judge_ci({"0": [-0.01, 0.03], "1": [-0.02, 0.01]}) == "no difference"
    assert judge_ci({"0": [0.01, 0.03], "1": [-0.01, 0.02]}) == "unclear"  # a gain on one seed only
    assert judge_ci(None) is None and judge_ci({"0": [0.01, 0.02], "1": None}) is None
    assert compare_ci(0.004, [-0.002, 0.01]) == "tied" and compare_ci(0.02, [0.01, 0.03]) == "ahead"
    assert compare_ci(-0.02, [-0.03, -0.01]) == "behind"


def test_sentences_quote_the_interval_and_keep_the_seed_spread():
    delta = seed_stat({0: 0.004, 1: 0.006})
    per_seed = {"0": [0.001, 0.008], "1": [0.002, 0.01]}
    # below the old resolution 0.023, but both seeds' intervals exclude 0: a gain
    text = verdict_sentence("It", 0.5, seed_stat({0: 0.504, 1: 0.506}), delta, 0.023, "src", [0.002, 0.008], per_seed)
    assert text == ("It gains on src: AP 0.500 -> 0.505 [0.504..0.506], delta +0.005 [+0.004..+0.006] (2 seeds; "
                    "95% interval [+0.002, +0.008] (per seed s0 [+0.001, +0.008], s1 [+0.002, +0.010]) over "
                    "validation images); the interval excludes 0 on every seed.")
    tie = verdict_sentence("It", 0.5, seed_stat({0: 0.54}), seed_stat({0: 0.04}), 0.001, "src", [-0.01, 0.09],
                           {"0": [-0.01, 0.09]})
    assert "makes no difference on src that this validation set resolves" in tie and "contains 0" in tie
    # old records (no interval): the resolution heuristic
    assert "below the resolution 0.023" in verdict_sentence("It", 0.5, seed_stat({0: 0.504, 1: 0.506}), delta,
                                                            0.023, "src")
    a, b = seed_stat({0: 0.05, 1: 0.06}), seed_stat({0: 0.01, 1: 0.02})
    tied = relation_sentence("a", a, "b", b, 0.001, {"delta": 0.04, "ci95": [-0.01, 0.08]})
    assert tied.startswith("a and b are tied: a - b = +0.040 AP, 95% interval [-0.010, +0.080]")
    assert "seed spread 0.010" in tied and "contains 0" in tied
    ahead = relation_sentence("a", a, "b", b, 0.5, {"delta": 0.04, "ci95": [0.01, 0.07]})
    assert ahead.startswith("a is ahead of b by 0.040 AP (95% interval [+0.010, +0.070]") and "excludes 0" in ahead


def test_a_ranking_and_the_default_by_intervals():
    items = [("a", seed_stat({0: 0.05})), ("b", seed_stat({0: 0.01})), ("c", seed_stat({0: 0.002}))]
    cis = {"a": {"0": [0.03, 0.07]}, "b": {"0": [-0.01, 0.03]}, "c": {"0": [-0.01, 0.012]}}
    diffs = {("a", "b"): {"delta": 0.04, "ci95": [-0.005, 0.09]}, ("a", "c"): {"delta": 0.048, "ci95": [0.02, 0.08]}}
    text = " ".join(ranking_sentences(items, 0.02, "src", cis, lambda x, y: diffs.get((x, y))))
    assert "a and b are tied: a - b = +0.040 AP" in text and "Also tied with" not in text
    assert "No difference from the input (the interval of the change contains 0): b (+0.010), c (+0.002)" in text
    labels = {n: n for n in ("none", "pk")}
    sums = {"none": _summary("none", "posefix", [0.00, 0.02]), "pk": _summary("pk", "prior+skip", [0.12, 0.14])}
    rec = {("none", "pk"): {"delta": -0.12, "ci95": [-0.2, 0.01]}, ("pk", "none"): {"delta": 0.12, "ci95": [0.05, 0.2]}}
    tied = " ".join(default_sentences(sums, labels, "none", ["s"], 0.005, paired=lambda x, y: rec.get((x, y))))
    assert "tied" in tied and "WARNING" not in tied and "95% interval [-0.200, +0.010]" in tied
    assert "support the default" in " ".join(default_sentences(sums, labels, "pk", ["s"], 0.005,
                                                               paired=lambda x, y: rec.get((x, y))))
    rec[("none", "pk")] = {"delta": -0.12, "ci95": [-0.2, -0.05]}
    assert "WARNING" in " ".join(default_sentences(sums, labels, "none", ["s"], 0.005,
                                                   paired=lambda x, y: rec.get((x, y))))


def test_a_free_baseline_against_the_refiner_by_interval():
    tie = free_baseline_sentence("s", "flip-test", 0.01, "R", 0.03, 0.001, {"delta": -0.02, "ci95": [-0.05, 0.01]})
    assert tie == ("On s, flip-test changes AP by +0.010 and the refiner R by +0.030: a tie (flip-test - refiner "
                   "-0.020 AP, 95% interval [-0.050, +0.010], same draws).")
    more = free_baseline_sentence("s", "dark", 0.01, "R", 0.03, 0.5, {"delta": -0.02, "ci95": [-0.03, -0.01]})
    assert more.endswith("the refiner R does more, by 0.020 AP (95% interval [-0.030, -0.010] of the difference, "
                         "same draws).")


def test_gate_readings_judged_by_their_intervals():
    ungated, gated = seed_stat({0: -0.004}), seed_stat({0: 0.001})
    rows = [("s", ungated, gated, seed_stat({0: 0.5}))]
    # below the resolution 0.01 either way, but the ungated interval lies below 0: harm, which the gate removes
    text = gate_sentences(rows, 0.01, {"s": ({"0": [-0.008, -0.001]}, {"0": [-0.002, 0.004]})})
    assert text[0] == ("On s gating removes the harm of refinement: ungated -0.004 (95% interval [-0.008, -0.001]), "
                       "gated +0.001 (95% interval [-0.002, +0.004]) AP, no change the validation set resolves; the "
                       "gate took 50% of the refinable keypoints.")
    assert "changes AP by less than the resolution 0.010" in gate_sentences(rows, 0.01)[0]  # no intervals


def test_method_sentence_names_the_best_and_holds_posefix_against_its_rivals():
    from posefix_bench.reporting.method_verdicts import beats, method_sentence

    one = lambda v: seed_stat({0: v})  # noqa: E731
    # an old record (no intervals): the noise bound
    assert beats(one(0.05), one(0.01), 0.02) == {"beats": True, "state": "ahead", "diff": pytest.approx(0.04),
                                                 "bound": 0.02, "ci95": None}
    assert not beats(one(0.02), one(0.01), 0.02)["beats"]  # within the resolution
    assert not beats(seed_stat({0: 0.05, 1: 0.0}), one(0.01), 0.02)["beats"]  # within the seed spread 0.05
    methods = [("posefix", "posefix", one(0.05)), ("re-estimate", "re-estimate", one(0.01)),
               ("pose-prior", "pose-prior", one(0.04)), ("identity", "identity", one(0.0))]
    text = method_sentence("src", methods, 0.02)
    assert text.startswith("On src, the best method is posefix (+0.050 AP), ahead of pose-prior by 0.010 AP, not "
                           "resolved (noise bound 0.020)")
    assert "posefix beats re-estimate (+0.050 vs +0.010 AP; noise bound 0.020)" in text
    assert "posefix is tied with pose-prior (+0.050 vs +0.040 AP; noise bound 0.020)" in text
    text = method_sentence("src", [methods[0], methods[3]], 0.02)
    assert "posefix (+0.050 AP), ahead of identity" in text and "no re-estimate or pose-prior method" in text
    assert method_sentence("src", [methods[3]], 0.02).endswith("; no posefix method ran.")
    assert method_sentence("src", [("x", "identity", None)], 0.02) is None

    # with the paired bootstrap (issue 27): the interval of the difference on the same draws decides, whatever the
    # resolution says: a 0.010 lead below the resolution is resolved when its interval excludes 0, and a 0.040 lead
    # above it is not when its interval contains 0
    intervals = {("posefix", "pose-prior"): {"delta": 0.01, "ci95": [0.004, 0.016]},
                 ("posefix", "re-estimate"): {"delta": 0.04, "ci95": [-0.01, 0.09]}}
    assert beats(one(0.05), one(0.04), 0.02, intervals[("posefix", "pose-prior")]) == {
        "beats": True, "state": "ahead", "diff": 0.01, "bound": None, "ci95": [0.004, 0.016]}
    text = method_sentence("src", methods, 0.02, lambda a, b: intervals.get((a, b)))
    assert text.startswith("On src, the best method is posefix (+0.050 AP), ahead of pose-prior by 0.010 AP, "
                           "resolved (95% interval [+0.004, +0.016] of the difference over validation images, "
                           "same draws)")
    assert ("posefix is tied with re-estimate (+0.050 vs +0.010 AP; 95% interval [-0.010, +0.090] of the difference "
            "over validation images, same draws)") in text
    assert "posefix beats pose-prior (+0.050 vs +0.040 AP; 95% interval [+0.004, +0.016]" in text
    behind = method_sentence("src", methods, 0.02, lambda a, b: {"delta": -0.02, "ci95": [-0.03, -0.01]}
                             if (a, b) == ("posefix", "re-estimate") else None)
    assert "posefix is behind re-estimate (+0.050 vs +0.010 AP; 95% interval [-0.030, -0.010]" in behind
