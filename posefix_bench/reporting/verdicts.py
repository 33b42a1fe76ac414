"""Verdict sentences: every sentence of the bench reports that judges a result, generated from the numbers by fixed
rules (:mod:`posefix_bench.record.stats`: :func:`~posefix_bench.record.stats.judge` and
:func:`~posefix_bench.record.stats.compare`).

Where the record carries the paired bootstrap's 95% intervals (issue 27), a change is a gain (or "makes things
worse") when its interval excludes 0 on every seed, and two results are tied when the interval of their difference
(both on the same draws of validation images) contains 0; the sentences quote the interval and keep the seed spread
beside it. Older records without intervals keep the resolution heuristic: a gain when every seed agrees on the sign
and the change exceeds the *resolution* of the validation set; tied when the means differ by less than the noise
bound (the larger seed spread, at least the resolution). One seed gives no spread: a difference on one seed is
reported as such, without a claim that it repeats.

The inputs are seed stats (``{"mean", "min", "max", "n", "per_seed"}``) and per-ablation metrics
(:func:`posefix_bench.record.metrics.ablation_metrics`); labels are the names reports show.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from posefix_bench.record.metrics import overall_delta
from posefix_bench.record.stats import compare, compare_ci, judge, judge_ci, spread

__all__ = [
    "COMPONENT_NAMES", "f3", "num", "pct", "count", "fmt_stat", "seeds_text", "plural", "ci_text", "source_verdict",
    "paired_record", "relation_sentence",
    "verdict_sentence", "ranking_sentences", "default_sentences", "component_effects", "component_sentences",
    "curve_sources", "curve_means", "deficit_sentence", "family_groups", "family_trend_sentences",
    "free_baseline_sentence", "gain_trend_sentence",
]  # fmt: skip

COMPONENT_NAMES = {"prior": "the identity prior", "skip": "the stride-4 skip"}


# -- numbers as text -----------------------------------------------------------------------------------------------
def f3(v: float | None, signed: bool = False) -> str:
    """An AP-like value with 3 decimals ('-' for None)."""
    if v is None:
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def num(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def count(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def fmt_stat(stat: Mapping | None, signed: bool = False, as_pct: bool = False, as_count: bool = False) -> str:
    """'mean [min..max]' (several seeds) or 'mean' (one seed); AP-like values with 3 decimals (``signed``: with
    a sign), ``as_pct`` as percentages, ``as_count`` as counts (a mean of counts may have one decimal)."""
    if stat is None:
        return "-"
    fmt = pct if as_pct else (count if as_count else (lambda v: f3(v, signed)))
    if stat["n"] == 1:
        return fmt(stat["mean"])
    return f"{fmt(stat['mean'])} [{fmt(stat['min'])}..{fmt(stat['max'])}]"


def ci_text(ci, per_seed: Mapping | None = None) -> str:
    """'95% interval [+0.010, +0.030]' (AP-like, signed), with each seed's where there are several."""
    if ci is None:
        return "no interval"
    text = f"95% interval [{f3(ci[0], True)}, {f3(ci[1], True)}]"
    if per_seed and len(per_seed) > 1:
        text += " (per seed " + ", ".join(f"s{k} [{f3(v[0], True)}, {f3(v[1], True)}]" for k, v in per_seed.items()
                                          if v is not None) + ")"
    return text


def seeds_text(stat: Mapping) -> str:
    return "one seed" if stat["n"] == 1 else f"{stat['n']} seeds"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


# -- one change, two changes, a ranking ----------------------------------------------------------------------------
def source_verdict(rec: Mapping, resolution: float) -> str:
    """The word for a per-source (or subset) metrics record's delta: from its seeds' intervals
    (:func:`~posefix_bench.record.stats.judge_ci`) where it has them, else :func:`~posefix_bench.record.stats.judge`."""
    return judge_ci(rec.get("ci95_per_seed")) or judge(rec.get("delta"), resolution)


def paired_record(summaries: Mapping[str, Mapping], a: str, b: str, part: str = "all",
                  source: str | None = None) -> Mapping | None:
    """Ablation ``a`` against ``b`` on shared draws from ``a``'s metrics (``paired``, filled by the bench): on one
    ``source`` or (None) averaged over the sources; None where the record has no such comparison."""
    rec = ((summaries.get(a) or {}).get("paired") or {}).get(b) or {}
    rec = rec.get(part) or {}
    return (rec.get("sources") or {}).get(source) if source is not None else rec.get("overall")

def _paired_relation(a_label: str, a: Mapping, b_label: str, b: Mapping, paired: Mapping) -> str:
    """How ``a`` relates to ``b`` by the interval of their difference on shared draws (``paired``: {"delta",
    "ci95", "ci95_per_seed"?} of a - b)."""
    d, ci = paired["delta"], paired["ci95"]
    seeds = f"seed spread {max(spread(a), spread(b)):.3f}" if a["n"] > 1 or b["n"] > 1 else "one seed each"
    where = f"{ci_text(ci, paired.get('ci95_per_seed'))} over validation images, both on the same draws; {seeds}"
    if compare_ci(d, ci) == "tied":
        return (f"{a_label} and {b_label} are tied: {a_label} - {b_label} = {f3(d, True)} AP, {where}: the interval "
                "contains 0.")
    word = "ahead of" if d > 0 else "behind"
    return f"{a_label} is {word} {b_label} by {abs(d):.3f} AP ({where}): the interval excludes 0."


def relation_sentence(a_label: str, a: Mapping, b_label: str, b: Mapping, resolution: float,
                      paired: Mapping | None = None) -> str:
    """One sentence on how ``a`` (the better mean) relates to ``b``; by the interval of their difference where
    ``paired`` (a - b on shared draws: ``{"delta", "ci95"}``) has one, else by the noise bound."""
    if paired and paired.get("ci95") is not None and paired.get("delta") is not None:
        return _paired_relation(a_label, a, b_label, b, paired)
    c = compare(a, b, resolution)
    d = abs(c["diff"])
    if c["single"]:
        if c["state"] == "tied":
            return (f"{a_label} and {b_label} differ by {d:.3f} AP on one seed each, below the resolution "
                    f"{resolution:.3f}: a single seed cannot separate them.")
        return (f"{a_label} is ahead of {b_label} by {d:.3f} AP on one seed each (above the resolution "
                f"{resolution:.3f}; one seed gives no spread to tell whether it repeats).")
    if c["state"] == "tied":
        return (f"{a_label} and {b_label} are tied: their means differ by {d:.3f} AP, within the noise bound "
                f"{c['bound']:.3f} (seed spread {c['spread']:.3f}, resolution {resolution:.3f}).")
    return (f"{a_label} is ahead of {b_label} by {d:.3f} AP, more than the noise bound {c['bound']:.3f} "
            f"(seed spread {c['spread']:.3f}, resolution {resolution:.3f}).")


def verdict_sentence(label: str, before: float | None, after: Mapping | None, delta: Mapping | None,
                     resolution: float, where: str, ci=None, ci_per_seed: Mapping | None = None) -> str:
    """'<label> ... on <where>: AP a -> b, delta d' with the word :func:`~posefix_bench.record.stats.judge_ci`
    gives from the seeds' intervals (``ci``: the seed mean's, quoted; ``ci_per_seed``), or without them the word
    :func:`~posefix_bench.record.stats.judge` gives."""
    word = judge(delta, resolution)
    if word == "n/a":
        return f"{label}: no AP on {where}."
    by_ci = judge_ci(ci_per_seed)
    if by_ci is not None and ci is not None:
        nums = (f"AP {f3(before)} -> {fmt_stat(after)}, delta {fmt_stat(delta, signed=True)} ({seeds_text(delta)}; "
                f"{ci_text(ci, ci_per_seed)} over validation images)")
        every = " on every seed" if delta["n"] > 1 else ""
        return {"gain": f"{label} gains on {where}: {nums}; the interval excludes 0{every}.",
                "worse": f"{label} makes things worse on {where}: {nums}; the interval lies below 0{every}.",
                "no difference": f"{label} makes no difference on {where} that this validation set resolves: {nums}; "
                                 f"the interval contains 0{every}.",
                "unclear": f"{label} makes no clear difference on {where}: {nums}; the seeds' intervals disagree."
                }[by_ci]
    nums = f"AP {f3(before)} -> {fmt_stat(after)}, delta {fmt_stat(delta, signed=True)} ({seeds_text(delta)})"
    if word == "gain":
        return f"{label} gains on {where}: {nums}."
    if word == "worse":
        return f"{label} makes things worse on {where}: {nums}."
    if word == "no difference":
        return f"{label} makes no difference on {where}: {nums}, below the resolution {resolution:.3f}."
    return (f"{label} makes no clear difference on {where}: {nums}; the seeds disagree on the sign "
            f"({f3(delta['min'], True)}..{f3(delta['max'], True)}).")


def ranking_sentences(items: Sequence[tuple[str, Mapping | None]], resolution: float, where: str,
                      cis: Mapping[str, Mapping | None] | None = None, paired=None) -> list[str]:
    """Rank (label, delta stat) by mean; say how the leader relates to the runner-up, which others are tied with it
    (within its noise bound), which make things worse and which make no difference. With intervals: ``cis``
    ({label: {seed: [lo, hi]}} of each delta) judge each change, ``paired(a, b)`` (the record of a - b on shared
    draws, or None) relates two labels."""
    ranked = sorted([(lab, st) for lab, st in items if st is not None], key=lambda t: -t[1]["mean"])
    if not ranked:
        return []
    cis = cis or {}
    pair = (lambda a, b: paired(a, b) if paired else None)  # noqa: E731
    out = [f"On {where}, by mean AP delta: " + "; ".join(f"{lab} {fmt_stat(st, signed=True)}" for lab, st in ranked)
           + "."]
    if len(ranked) > 1:
        lead = ranked[0]
        out.append(relation_sentence(*lead, *ranked[1], resolution, pair(lead[0], ranked[1][0])))
        tied, by_ci = [], False
        for lab, st in ranked[2:]:
            p = pair(lead[0], lab)
            if p and p.get("ci95") is not None and p.get("delta") is not None:
                by_ci = True
                if compare_ci(p["delta"], p["ci95"]) == "tied":
                    tied.append(f"{lab} ({ci_text(p['ci95'])} of the difference)")
            elif compare(lead[1], st, resolution)["state"] == "tied":
                tied.append(lab)
        if tied:
            what = "tied with" if by_ci else "within the noise bound of"
            out.append(f"Also {what} {lead[0]}: {', '.join(tied)}.")

    def word(lab, st):
        return judge_ci(cis.get(lab)) or judge(st, resolution)

    worse = [f"{lab} ({fmt_stat(st, signed=True)})" for lab, st in ranked if word(lab, st) == "worse"]
    if worse:
        out.append("Makes things worse than the input: " + ", ".join(worse) + ".")
    same = [f"{lab} ({fmt_stat(st, signed=True)})" for lab, st in ranked if word(lab, st) == "no difference"]
    if same:
        rule = ("the interval of the change contains 0" if any(judge_ci(cis.get(lab)) for lab, _ in ranked)
                else f"below the resolution {resolution:.3f}")
        out.append(f"No difference from the input ({rule}): " + ", ".join(same) + ".")
    return out


# -- the default among alternatives --------------------------------------------------------------------------------
def _default_by_ci(lab, default, d, other, o, what, rec) -> list[str]:
    """The default against the best other ablation (or the runner-up) by the interval of their difference."""
    diff, ci = rec["delta"], rec["ci95"]
    nums = (f"{what}: {lab[default]} {fmt_stat(d, signed=True)}, {lab[other]} {fmt_stat(o, signed=True)}; "
            f"{lab[default]} - {lab[other]} = {f3(diff, True)} AP, {ci_text(ci)} over validation images (same draws)")
    state = compare_ci(diff, ci)
    if state == "tied":
        return [f"The default and the best alternative are tied on the {nums}: the interval contains 0, so the "
                "measurements neither support nor contradict the default."]
    if state == "ahead":
        return [f"The default has the best {nums}: the interval excludes 0. The measurements support the default."]
    seeds = " on one seed" if o["n"] == 1 else ""
    return [f"**WARNING: {lab[other]} measured better than the default{seeds} on the {nums}: the interval excludes 0. "
            "These measurements do not support the default.**"]


def default_sentences(summaries: Mapping[str, Mapping], labels: Mapping[str, str], default: str | None,
                      sources: Sequence[str], resolution: float | None, subset: str | None = None,
                      paired=None) -> list[str]:
    """Whether the measurements support the ``default`` among the ablations of ``summaries`` ({name: metrics}):
    AP delta averaged over the sources (on the occluded subset with ``subset='occluded'``). ``paired(a, b)``: the
    record of a - b averaged over the sources on shared draws (``{"delta", "ci95"}``) or None; with one, the
    interval decides (tied when it contains 0), else the noise bound."""
    names = list(summaries)
    if default is None or default not in names or len(names) < 2:
        return []
    scored = [(n, overall_delta(summaries[n], sources, subset)) for n in names]
    scored = sorted([(n, st) for n, st in scored if st is not None], key=lambda t: -t[1]["mean"])
    if len(scored) < 2 or resolution is None or default not in dict(scored):
        return []
    res = resolution
    what = "AP delta" + (" on the occluded subset" if subset == "occluded" else "")
    what += f" (mean over {plural(len(sources), 'source')})"
    lab = labels
    d = dict(scored)[default]
    best, best_st = scored[0]
    other, other_st = (scored[1] if best == default else (best, best_st))
    rec = paired(default, other) if paired else None
    if rec and rec.get("ci95") is not None and rec.get("delta") is not None:
        return _default_by_ci(lab, default, d, other, other_st, what, rec)
    if best == default:
        runner, runner_st = scored[1]
        c = compare(d, runner_st, res)
        head = (f"The default {lab[default]} has the best {what}, {fmt_stat(d, signed=True)}; the runner-up "
                f"{lab[runner]} has {fmt_stat(runner_st, signed=True)}, {c['diff']:.3f} AP less")
        if c["single"] and c["state"] == "tied":
            return [head + f", below the resolution {res:.3f} on one seed each: a single seed cannot separate them."]
        if c["state"] == "tied":
            return [head + f", within the noise bound {c['bound']:.3f}: the measurements do not separate them."]
        return [head + f", more than the noise bound {c['bound']:.3f}" + (" (one seed each)" if c["single"] else "")
                + ". The measurements support the default."]
    c = compare(best_st, d, res)
    if c["state"] == "tied":
        return [f"The default {lab[default]} ({fmt_stat(d, signed=True)}) does not have the best {what}: "
                f"{lab[best]} has {fmt_stat(best_st, signed=True)}, {c['diff']:.3f} AP more, within the noise bound "
                f"{c['bound']:.3f}, so the measurements do not contradict the default."]
    if best_st["n"] == 1:  # one seed: a difference, without a claim that it repeats
        return [f"{lab[best]} measured better than the default {lab[default]} on its only seed: {what} "
                f"{fmt_stat(best_st, signed=True)} vs {fmt_stat(d, signed=True)}, {c['diff']:.3f} AP, more than the "
                f"noise bound {c['bound']:.3f}. One seed does not show that this repeats: run it with a second seed "
                "before changing the default."]
    return [f"**WARNING: {lab[best]} measured clearly better than the default {lab[default]}: {what} "
            f"{fmt_stat(best_st, signed=True)} vs {fmt_stat(d, signed=True)}, {c['diff']:.3f} AP more than the noise "
            f"bound {c['bound']:.3f}" + (" (one seed each)" if c["single"] else "")
            + ". These measurements do not support the default.**"]


# -- head components -----------------------------------------------------------------------------------------------
def component_effects(summaries: Mapping[str, Mapping], sources: Sequence[str], resolution: float) -> list[dict]:
    """Effect of each head component (``prior+skip`` = prior and skip; ``posefix`` = neither) on the AP delta
    averaged over the sources: the change when it is added, averaged over the pairs of heads differing only by it.
    Empty when the ablations differ in anything but the head (no clean pairs)."""
    sums = list(summaries.values())
    if len({tuple(v for k, v in s["factors"].items() if k != "head") for s in sums}) != 1:
        return []
    parts = {s["ablation"]: frozenset(p for p in s["factors"]["head"].split("+") if p != "posefix") for s in sums}
    by_parts = {p: a for a, p in parts.items()}
    overall = {n: overall_delta(summaries[n], sources) for n in summaries}
    effects = []
    for c in sorted(set().union(*parts.values())):
        pairs = [(by_parts[p - {c}], a) for a, p in parts.items() if c in p and (p - {c}) in by_parts]
        pairs = [(lo, hi) for lo, hi in pairs if overall[lo] and overall[hi]]
        if not pairs:
            continue
        diffs = [overall[hi]["mean"] - overall[lo]["mean"] for lo, hi in pairs]
        bound = max([resolution] + [spread(overall[n]) for pair in pairs for n in pair])
        effects.append({"component": c, "effect": float(np.mean(diffs)), "pairs": pairs, "diffs": diffs,
                        "bound": bound, "single": all(overall[n]["n"] == 1 for pair in pairs for n in pair)})
    return effects


def component_sentences(summaries: Mapping[str, Mapping], sources: Sequence[str], resolution: float) -> list[str]:
    """Which head component carries the gain, with each component's effect and where the pairs disagree."""
    effects = component_effects(summaries, sources, resolution)
    if not effects:
        return []
    out = [f"Head components (AP delta averaged over the {len(sources)} source(s); a component's effect is the "
           "change of that mean when it is added, averaged over the pairs of heads that differ only by it):"]
    for e in effects:
        pairs = "; ".join(f"{hi} vs {lo} {d:+.3f}" for (lo, hi), d in zip(e["pairs"], e["diffs"]))
        out.append(f"- {COMPONENT_NAMES.get(e['component'], e['component'])}: {e['effect']:+.3f} AP ({pairs}; "
                   f"noise bound {e['bound']:.3f}).")
    beyond = sorted([e for e in effects if abs(e["effect"]) > e["bound"]], key=lambda e: -e["effect"])
    carriers = [e for e in beyond if e["effect"] > 0]

    def name(e):
        return COMPONENT_NAMES.get(e["component"], e["component"])

    if not carriers:
        out.append("No head component raises the gain by more than its noise bound on this data.")
    elif len(carriers) == 1:
        out.append(f"{name(carriers[0]).capitalize()} carries the gain ({carriers[0]['effect']:+.3f} AP).")
    else:
        out.append(" and ".join(name(e) for e in carriers).capitalize() + " both carry part of the gain; "
                   f"{name(carriers[0])} the larger part ({carriers[0]['effect']:+.3f} AP).")
    for e in effects:
        if e not in beyond:
            out.append(f"{name(e).capitalize()} changes it by {e['effect']:+.3f} AP, within its noise bound.")
        elif e["effect"] < 0:
            out.append(f"{name(e).capitalize()} lowers it by {-e['effect']:.3f} AP, beyond its noise bound.")
    for e in effects:  # an average over pairs hides an interaction: say where the pairs disagree
        signs = {(d > e["bound"]) - (d < -e["bound"]) for d in e["diffs"]}
        if len(e["diffs"]) > 1 and len(signs) > 1:
            detail = "; ".join(f"{d:+.3f} AP from {lo} to {hi}" for (lo, hi), d in zip(e["pairs"], e["diffs"]))
            out.append(f"The effect of {name(e)} depends on the rest of the head ({detail}; noise bound "
                       f"{e['bound']:.3f}): the average above hides that.")
    if any(e["single"] for e in effects):
        out.append("(Some of these pairs ran with one seed each: their differences carry no seed spread.)")
    return out


# -- training budget -----------------------------------------------------------------------------------------------
def curve_sources(summaries: Sequence[Mapping], sources: Sequence[str]) -> list[str]:
    """The sources that every point of every learning curve has (in ``sources`` order): a profile may evaluate its
    curves on some of its sources only (``learning_curve.sources``)."""
    points = [p for s in summaries for p in (s.get("learning_curve") or ())]
    return [n for n in sources if points and all(n in p["ap"] for p in points)]


def curve_means(summary: Mapping, sources: Sequence[str]) -> dict[int, float]:
    """{iterations: AP delta averaged over the sources} of an ablation's learning curve (refined AP of the seed
    mean minus the input AP)."""
    out = {}
    for point in summary.get("learning_curve") or ():
        deltas = [point["ap"][n] - summary["sources"][n]["ap_before"] for n in sources
                  if n in point["ap"] and summary["sources"][n]["ap_before"] is not None]
        if len(deltas) == len(sources):
            out[int(point["iterations"])] = float(np.mean(deltas))
    return out


def deficit_sentence(label_a: str, a: Mapping[int, float], label_b: str, b: Mapping[int, float],
                     resolution: float, over: str = "the sources") -> str | None:
    """Whether ``a``'s deficit against ``b`` (AP delta means per iteration over ``over``, :func:`curve_means`)
    closes, narrows, stays or widens over the schedule: the gap at the first and the last common checkpoint, with
    the resolution as the smallest change that counts, and the last step's direction: a deficit still narrowing at
    the last checkpoint may be partly the budget's (more training would tell), whatever it did before."""
    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return None
    gaps = [a[i] - b[i] for i in common]
    first, last = gaps[0], gaps[-1]
    path = ", ".join(f"{g:+.3f} at {i}" for i, g in zip(common, gaps))
    head = f"{label_a} against {label_b} (AP delta, mean over {over}): {path} iterations"
    if first >= -resolution:
        return head + f"; {label_a} has no deficit to close at the first checkpoint."
    if last >= -resolution:
        return head + f": the deficit closes (within the resolution {resolution:.3f} at the last checkpoint)."
    still = abs(gaps[-1]) < abs(gaps[-2]) - resolution
    if abs(last) < abs(first) - resolution:
        return head + (f": the deficit narrows but stays at {last:+.3f}"
                       + ("; it was still narrowing at the last checkpoint, so a longer schedule could narrow it "
                          "further." if still else ", and it no longer narrowed over the last checkpoints."))
    if abs(last) > abs(first) + resolution:
        text = ": the deficit is wider at the last checkpoint than at the first"
    else:
        text = f": the deficit stays (it changes by less than the resolution {resolution:.3f} from first to last)"
    if still:
        return head + (text + f", but it narrowed over the last step ({gaps[-2]:+.3f} -> {last:+.3f}): a longer "
                       "schedule could narrow it further, so this budget does not settle whether it is the head's.")
    return head + text + "; the budget does not explain it."


def free_baseline_sentence(source: str, method: str, method_delta: float | None, refiner: str,
                           refiner_delta: float | None, resolution: float, paired: Mapping | None = None) -> str | None:
    """Whether a free post-processing method or the refiner moves a source's AP more: by the interval of method -
    refiner on shared draws where ``paired`` (``{"delta", "ci95"}``) has one (a tie when it contains 0), else
    (one seed each) a difference within the resolution is a tie."""
    if method_delta is None or refiner_delta is None:
        return None
    head = (f"On {source}, {method} changes AP by {f3(method_delta, True)} and the refiner {refiner} by "
            f"{f3(refiner_delta, True)}")
    if paired and paired.get("ci95") is not None and paired.get("delta") is not None:
        ci = ci_text(paired["ci95"])
        if compare_ci(paired["delta"], paired["ci95"]) == "tied":
            return f"{head}: a tie ({method} - refiner {f3(paired['delta'], True)} AP, {ci}, same draws)."
        better = method if paired["delta"] > 0 else f"the refiner {refiner}"
        return f"{head}: {better} does more, by {abs(paired['delta']):.3f} AP ({ci} of the difference, same draws)."
    if abs(method_delta - refiner_delta) <= resolution:
        return f"{head}: a tie at this resolution ({resolution:.3f})."
    better = method if method_delta > refiner_delta else f"the refiner {refiner}"
    return f"{head}: {better} does more, by {abs(method_delta - refiner_delta):.3f} AP."


def gain_trend_sentence(points: Sequence[tuple[str, float, float]], resolution: float) -> str | None:
    """Whether the refiner's gain shrinks as its input gets stronger: ``points`` are (source, input AP, AP delta).
    The trend is the sign of the least-squares slope of delta on input AP, stated with the delta of the weakest
    and the strongest input; with fewer than 3 sources, or when the weakest and strongest deltas differ by no more
    than the resolution, no trend is claimed."""
    pts = sorted((p for p in points if p[1] is not None and p[2] is not None), key=lambda p: p[1])
    if len(pts) < 2:
        return None
    weak, strong = pts[0], pts[-1]
    span = (f"from {f3(weak[2], True)} on {weak[0]} (input AP {f3(weak[1])}) to {f3(strong[2], True)} on "
            f"{strong[0]} (input AP {f3(strong[1])})")
    if len(pts) < 3:
        return f"The gain goes {span}; two inputs are too few to call a trend."
    x = np.array([p[1] for p in pts])
    y = np.array([p[2] for p in pts])
    slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else 0.0
    if abs(strong[2] - weak[2]) <= resolution:
        return f"The gain does not change with input strength beyond the resolution ({resolution:.3f}): {span}."
    trend = "shrinks" if slope < 0 else "grows"
    return (f"The gain {trend} as inputs get stronger ({len(pts)} inputs; slope {slope:+.2f} AP per AP of input): "
            f"{span}.")


def family_groups(points: Sequence[tuple[str, float, float]],
                  families: Mapping[str, str] | None) -> dict[str, list[tuple[str, float, float]]]:
    """(source, input AP, AP delta) points grouped by family label (``families``: source -> label; a source
    without one is its own family), each group weakest input first; points without both numbers are left out."""
    groups: dict[str, list] = {}
    for p in points:
        if p[1] is not None and p[2] is not None:
            groups.setdefault((families or {}).get(p[0], p[0]), []).append(p)
    return {fam: sorted(pts, key=lambda p: p[1]) for fam, pts in groups.items()}


def family_trend_sentences(points: Sequence[tuple[str, float, float]], families: Mapping[str, str],
                           resolution: float) -> list[str]:
    """The gain-vs-input trend within each family of sources that differ only in strength (``families``: source ->
    the family's label, e.g. one estimator's checkpoints or the synthetic source's error scales), for families of
    at least two sources, weakest input first. Across families the inputs also differ in what their errors are
    (a synthetic paper mix at AP 0.62 is not an estimator at 0.62), so a pooled trend can point the other way than
    every family's (Simpson's paradox); within a family only the strength changes. Two points of one family do
    show a direction; whether it is a trend beyond them is for more rungs to say."""
    out = []
    for fam, pts in family_groups(points, families).items():
        if len(pts) < 2:
            continue
        steps = ", ".join(f"{f3(p[2], True)} on {p[0]} (input AP {f3(p[1])})" for p in pts)
        change = pts[-1][2] - pts[0][2]
        if abs(change) <= resolution:
            out.append(f"Within {fam} the gain does not change with strength beyond the resolution "
                       f"({resolution:.3f}): {steps}.")
        else:
            out.append(f"Within {fam} the gain {'shrinks' if change < 0 else 'grows'} as the input gets stronger: "
                       f"{steps}.")
    return out
