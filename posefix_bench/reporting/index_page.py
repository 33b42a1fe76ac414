"""The bench index (``index.md``): every ablation side by side, the comparisons in words, sources, speed.

Sections: setup (data, device, versions, evaluator, time, data checks), caveats, how to read, headline (the default
refiner per source), the refinement gate (the default refiner gated beside ungated), default choice, all ablations,
sources (baseline AP, error shares, AP impact; Ronchi & Perona, ICCV 2017, Sec. 4.1), gain vs input strength and
the free baselines (:mod:`~posefix_bench.reporting.inputs_section`), the refinement methods
(:mod:`~posefix_bench.reporting.methods_section`), one section per comparison of the profile
(ranking sentences, head-component effects, lower-body subset), measured error profile vs paper mix, speed. Judging sentences come from :mod:`posefix_bench.reporting.verdicts`.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np

from posefix_bench.codecs.taxonomy import ERROR_TYPES
from posefix_bench.record.metrics import FIXABLE, ap_value, mean_over_sources, overall_delta
from posefix_bench.record.schema import BENCH_FORMAT, shown_path, shown_text
from posefix_bench.record.stats import NOISE_PERSONS, judge
from posefix_bench.reporting.context import SMALL_DATA_PERSONS, ReportContext, label, source_label
from posefix_bench.reporting.inputs_section import free_baselines_section, input_strength_section
from posefix_bench.reporting.methods_section import methods_section
from posefix_bench.reporting.tables import markdown_table
from posefix_bench.reporting.confidence_sentences import confidence_lines
from posefix_bench.reporting.gate_verdicts import gate_sentences
from posefix_bench.reporting.verdicts import (
    component_sentences, curve_means, curve_sources, default_sentences, deficit_sentence, f3, fmt_stat,
    num, paired_record, pct, ranking_sentences, relation_sentence, verdict_sentence,
)

__all__ = ["HOW_TO_READ", "index_markdown", "setup_lines", "gate_table", "gate_lines", "link", "profile_text"]

HOW_TO_READ = (
    "**AP** is COCO keypoint AP (0..1) of the input poses (\"before\") and of the same poses after refinement "
    "(\"after\"); **delta** = after - before in AP units (0.010 = 1 AP point). With several seeds a number is the "
    "seed mean followed by the min..max over seeds in brackets. Keypoints are classified with Ronchi & Perona's "
    "taxonomy as their coco-analyze code defines it (rule `{taxonomy}`): keypoint similarity KS > 0.85 to the own "
    "joint is good, KS >= 0.5 to the own joint jitter, to its mirrored joint inversion, to another person's joint "
    "(measured with that person's area) swap, anything else miss. "
    "**Fixed** is the share of input keypoints of an error type that ended good after refinement; **broken** the "
    "share of good input keypoints that ended in an error type. Transitions count only detections matched to the "
    "same person before and after refinement (detections whose match changed are excluded). **Intervals**: "
    "`95% interval [lo, hi]` is the paired bootstrap over validation images (images drawn with replacement, "
    "both sides of a comparison computed on the same draws, the 2.5 and 97.5 percentiles of the difference). "
    "Rules of the sentences: a change is a gain (or makes things worse) when its interval lies above (below) 0 on "
    "every seed; two results are tied when the interval of their difference contains 0; the seed spread is "
    "quoted beside it. Where a record has no interval (an older run), a change is a gain when it is positive on "
    "every seed and larger than the *resolution* {res} of the validation set ({n} persons' worth of AP: {k} / "
    "persons), and two ablations are tied when their means differ by no more than the *noise bound*, the larger "
    "of their seed spreads (max - min over seeds) and the resolution; a single seed cannot separate two results "
    "that differ by less than the resolution."
)


def link(summary: Mapping) -> str:
    return f"[{label(summary)}]({summary['ablation']}/report.md)"


def setup_lines(ctx: ReportContext) -> list[str]:
    """Data, device, versions and time: the bullet lines every report starts with."""
    rec = ctx.record
    data, env, t = rec.data, rec.environment, rec.timings
    versions = ", ".join(f"{k} {env[k]}" for k in ("posefix_bench", "python", "torch", "torchvision", "numpy",
                                                     "mmpose", "cuda") if env.get(k))
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in t.items() if k not in ("total", "bootstrap") and v is not None)
    if t.get("bootstrap") is not None:  # worker time inside the analyses, not a phase of its own (issue 27)
        stages += (f"; of which the paired bootstrap's intervals {t['bootstrap']:.0f} s of worker time, inside the "
                   "analyses and the comparisons")
    where = "" if data.kind == "sandbox" else f" at `{shown_path(data.root, rec.cache_root)}`"
    return [
        f"- **Data**: {shown_text(data.description, rec.cache_root)}{where}. Validation: {data.val_images} images, "
        f"{data.val_persons} persons, {data.val_occluded_persons} of them tagged lower-body occluded (schema "
        f"{data.schema}).",
        f"- **Device**: {env.get('device_name', env.get('device', '-'))} (device {env.get('device', '-')}, CPU "
        f"capability {env.get('cpu_capability', '-')}); {env.get('jobs', '-')} job(s) at a time x "
        f"{env.get('threads_per_job', '-')} torch thread(s) each; 1-minute load average at the start "
        f"{env.get('load_average_1min', '-')}.",
        f"- **Versions**: {versions}.",
        f"- **Evaluator**: COCO keypoint AP computed by {rec.evaluator}.",
        f"- **Machine**: {(env.get('peaks') or {}).get('sentence', 'matmul peak not measured')} (measured at the "
        "start of this run).",
        f"- **Precision**: {_precision_text(ctx)}.",
        f"- **Time**: total {t.get('total', 0):.0f} s ({stages}){_budget_text(env.get('budget'), t.get('total'))}"
        f"{_rerun_text(rec.rerun_timings)}. Cached steps cost nothing in a rerun; training times below are those of "
        "the run that trained each refiner.",
    ] + ([f"- **Data checks**: {'; '.join(rec.data_warnings)}."] if rec.data_warnings else []) + _split_line(data)


def _split_line(data) -> list[str]:
    """The dedicated lower-body-occluded validation split, where the profile has one (issue 27)."""
    o = data.occluded_split
    if not o:
        return []
    return [f"- **Occluded split**: a dedicated validation split of {o['images']} generated images (seed {o['seed']}, "
            f"every person behind a lower-body occluder): {o['persons']} persons, {o['occluded_persons']} tagged "
            f"lower-body occluded; the lower-body comparison's occluded numbers on {', '.join(o['sources'])} come "
            f"from it" + (f" (generated in {o['seconds']:.0f} s)." if o.get("seconds") is not None else ".")]


def _rerun_text(rerun: Mapping | None) -> str:
    """The time of a rerun that took every number from the cache, beside the computing run's own time."""
    if not rerun:
        return ""
    return (f"; the time of the run that computed these numbers (this rerun: {rerun.get('total', 0):.0f} s, every "
            "number reused from the step cache)")


def _budget_text(budget: Mapping | None, total: float | None) -> str:
    if not budget or not budget.get("allowance_minutes"):
        return ""
    within = "within" if total is not None and total <= 60 * budget["allowance_minutes"] else "over"
    return (f"; {within} this profile's allowance of {budget['allowance_minutes']:.1f} min on this machine "
            f"({budget['minutes']:.0f} min at a {budget['reference_gflops']:.0f} GFLOP/s fp32 peak, scaled by the "
            f"measured {budget['peak_gflops']:.0f} GFLOP/s)")


def _precision_text(ctx: ReportContext) -> str:
    """Which precisions the trainings and refinements ran in (counts), from the per-ablation metrics."""
    train: dict[str, int] = {}
    refine: set[str] = set()
    for s in ctx.summaries:
        for t in s["train"]["per_seed"].values():
            train[str(t.get("precision") or "-")] = train.get(str(t.get("precision") or "-"), 0) + 1
        refine |= {p for src in s["sources"].values() for p in src.get("refine_precision") or ()}
    trained = ", ".join(f"{p} ({n})" for p, n in sorted(train.items()))
    override = ctx.record.environment.get("precision_override")
    how = (f"`POSEFIX_PRECISION={override}` was set: every `auto` ran in {override}" if override not in (None, "auto")
           else "`auto`: the fastest precision the device runs natively, by a short probe")
    return (f"trainings {trained}; refinements {', '.join(sorted(refine)) or '-'}; each FPS row names its own "
            f"({how}; posefix_bench.engine.precision; `POSEFIX_PRECISION=fp32` gives fp32 on any machine)")


def _caveats(ctx: ReportContext) -> list[str]:
    """What the numbers can and cannot show at this data size, and whether the occluded subset exists."""
    data, out = ctx.record.data, []
    n = data.val_persons
    seeds = max(len(a.seeds) for a in ctx.record.ablations)
    if data.kind == "coco-mini" or ctx.record.profile == "coco-mini" or n < SMALL_DATA_PERSONS:
        out.append(
            f"**What these numbers can and cannot show**: the validation set has only {n} persons and the ablations "
            f"ran with at most {seeds} seed(s). One person moving from matched to unmatched changes AP by about "
            f"{1 / max(1, n):.3f}, so differences of a few AP points (below about {ctx.resolution:.3f}) are within "
            "noise here. These numbers check that the real-image path works end to end (sources, refinement, "
            "evaluation, diagnosis); they cannot rank ablations whose AP differs by a few points, and they do not "
            "predict the refiner's effect on full COCO.")
    if not data.val_occluded_persons:
        out.append("**Occluded subset**: no validation person is tagged lower-body occluded (real COCO carries no "
                   "such tag), so the occluded-subset numbers do not exist for this data; lower-body comparisons "
                   "use all persons only.")
    if any(s["untrained"] for s in ctx.summaries):
        names = ", ".join(s["ablation"] for s in ctx.summaries if s["untrained"])
        out.append(f"**UNTRAINED**: the refined results of {names} come from untrained weights; their numbers say "
                   "nothing about what the method can do.")
    bad = [source_label(s) for s in ctx.record.sources if s.untrained]
    if bad:
        out.append(f"**UNTRAINED sources**: {', '.join(bad)} ran with random weights.")
    return out


def _headline(ctx: ReportContext) -> str:
    """The default ablation's effect per source, with the error types it fixed."""
    if ctx.default is None:
        return ""
    s = ctx.summary(ctx.default)
    lines = ["## Headline", "", f"The profile's default refiner is {link(s)}.", ""]
    for name in ctx.sources:
        rec = s["sources"][name]
        verdict = verdict_sentence("It", rec["ap_before"], rec["ap_after"], rec["delta"], ctx.resolution, name,
                                   rec.get("ci95"), rec.get("ci95_per_seed"))
        fixed = ", ".join(f"{fmt_stat(rec['fixed'][t]['rate'], as_pct=True)} of {t}" for t in FIXABLE
                          if rec["fixed"][t]["rate"] is not None)
        lines.append(f"- {verdict} It fixed {fixed or 'no'} keypoints and broke "
                     f"{fmt_stat(rec['broken']['rate'], as_pct=True)} of the good ones.")
    return "\n".join(lines)


def gate_table(gate: Mapping, sources, resolution: float) -> str:
    """The default refiner per source, the two readings of one refinement pass side by side: AP before, AP delta
    ungated and gated, the share of the gain kept (where the ungated change is a gain) and the share of refinable
    keypoints the gate accepted."""
    rows = []
    for name in sources:
        g = gate["sources"][name]
        kept = pct(g["gain_kept"]) if judge(g["delta_ungated"], resolution) == "gain" else "-"
        rows.append([name, f3(g["ap_before"]), fmt_stat(g["delta_ungated"], signed=True),
                     fmt_stat(g["delta_gated"], signed=True), kept, fmt_stat(g["accepted_share"], as_pct=True)])
    return markdown_table(["source", "AP before", "delta AP ungated", "delta AP gated", "gain kept",
                           "accepted keypoints"], rows)


def _threshold(t) -> str:
    return "-" if t is None else (f"{t:.2f}" if t <= 1 else "above 1 (accepts nothing)")


def gate_lines(ctx: ReportContext) -> list[str]:
    """The default refiner gated beside ungated (issue 17): how the gate was calibrated, :func:`gate_table` and the
    sentences of :func:`~posefix_bench.reporting.gate_verdicts.gate_sentences`; empty without a gate record."""
    if ctx.default is None or not ctx.summary(ctx.default).get("gate"):
        return []
    s = ctx.summary(ctx.default)
    gate = s["gate"]
    if gate["state"] != "calibrated":
        return [f"The gate of the default refiner {link(s)} is off: {gate['reason']}. Its refinement is ungated, as "
                "every other ablation's."]
    cals = gate["calibrations"]
    first = next(iter(cals.values()))
    data = first.get("data") or {}
    root = ctx.record.data.root
    where = str(data.get("selection", "held-out training images")).replace(root, shown_path(root,
                                                                                             ctx.record.cache_root))
    thresholds = ", ".join(f"seed {seed}: {_threshold(c.get('threshold'))}" for seed, c in cals.items())
    inputs = ""
    if first.get("mixes"):
        inputs = (f"; calibration inputs: poses synthesised with the mixes {', '.join(first['mixes'])} "
                  f"({first.get('draws', '?')} draws each)")
        if first.get("sources"):
            inputs += f" and the predictions of {', '.join(first['sources'])} on those images"
    lines = [f"The default refiner {link(s)} with its per-keypoint gate, calibrated after training on {where} "
             f"({data.get('persons', '?')} persons; never the validation split){inputs}; gate threshold {thresholds}. "
             "One refinement pass gives both readings: ungated (every refinable keypoint refined) and gated (a refined "
             "keypoint replaces the input one only where the gate accepts it). Only the default refiner is gated: "
             "every other ablation, and every other number of these reports, is ungated.", "",
             gate_table(gate, ctx.sources, ctx.resolution), ""]
    rows = [(n, gate["sources"][n]["delta_ungated"], gate["sources"][n]["delta_gated"],
             gate["sources"][n]["accepted_share"]) for n in ctx.sources]
    cis = {n: (gate["sources"][n].get("ci95_ungated_per_seed"), gate["sources"][n].get("ci95_gated_per_seed"))
           for n in ctx.sources}
    return lines + [f"- {t}" for t in gate_sentences(rows, ctx.resolution, cis)]


def _gate_section(ctx: ReportContext) -> str:
    lines = gate_lines(ctx)
    return "\n".join(["## Refinement gate", ""] + lines) if lines else ""


def _default_choice(ctx: ReportContext, names: Sequence[str], subset: str | None = None) -> list[str]:
    res = ctx.occluded_resolution if subset == "occluded" else ctx.resolution
    sums, split = ctx.summaries_of(names), ctx.record.data.occluded_split
    sources = split["sources"] if subset == "occluded" and split else ctx.sources  # the dedicated split's
    return default_sentences(sums, ctx.labels(), ctx.default, sources, res, subset,
                             lambda a, b: paired_record(sums, a, b, subset or "all"))


def _varying_factors(summaries: Sequence[Mapping]) -> tuple[list[str], dict]:
    keys = list(summaries[0]["factors"])
    varying = [k for k in keys if len({s["factors"][k] for s in summaries}) > 1]
    return varying, {k: summaries[0]["factors"][k] for k in keys if k not in varying}


def _fps_text(best: Mapping | None) -> str:
    if best is None:
        return "-"
    return f"{best['samples_per_s']:.0f} (b{best['batch']} {best['precision']})"


def _summary_section(ctx: ReportContext) -> str:
    varying, constant = _varying_factors(ctx.summaries)
    headers = ["ablation"] + varying + ["seeds"] + [f"delta AP {n}" for n in ctx.sources] + [
        "fixed (mean over sources)", "good broken", "occluded delta AP", "train s", "train samples/s", "FPS"]
    rows = []
    for s in ctx.summaries:
        occ = overall_delta(s, ctx.sources, "occluded")
        fixed = mean_over_sources(s, ctx.sources, "fixed_rate")
        broken = np.mean([s["sources"][n]["broken"]["rate"]["mean"] for n in ctx.sources
                          if s["sources"][n]["broken"]["rate"]])
        rows.append([link(s) + (" **(default)**" if s["default"] else "")] + [s["factors"][k] for k in varying]
                    + [", ".join(map(str, s["seeds"]))]
                    + [fmt_stat(s["sources"][n]["delta"], signed=True) for n in ctx.sources]
                    + [pct(fixed), pct(float(broken)) if np.isfinite(broken) else "-",
                       fmt_stat(occ, signed=True), fmt_stat(s["train"]["seconds"], as_count=True),
                       fmt_stat(s["train"]["samples_per_s"], as_count=True), _fps_text(s["fps_best"])])
    const = ", ".join(f"{k} {v}" for k, v in constant.items())
    return "\n".join([
        "## All ablations", "",
        f"Common to all: {const or '-'}. Fixed and broken are seed means averaged over the sources; the occluded "
        "delta is averaged over the sources; train s and samples/s are per training run (seed mean [min..max]); "
        "FPS is refiner inference samples/s at the best measured batch and precision.", "",
        markdown_table(headers, rows), "",
        "![AP delta per ablation and source](ap_delta.png)", "",
        "![Fixed and broken per error type](fixed_broken.png)", "",
        "![Speed vs gain](speed_gain.png)" if any(s["fps_best"] for s in ctx.summaries) else "",
    ]).rstrip()


def _sources_section(ctx: ReportContext) -> str:
    rows, impact_rows, notes = [], [], []
    for src in ctx.record.sources:
        b = src.baseline
        fr = b["fractions"]
        rows.append([source_label(src), src.type or src.meta.get("type"), src.poses,
                     ap_value(b["ap"]), ap_value(b["ap"], "AP50"), ap_value(b["ap"], "AP75")]
                    + [pct(fr.get(c)) for c in (*ERROR_TYPES, "absent")]
                    + [ap_value((b.get("occluded") or {}), "ap_before")])
        imp = b.get("ap_impact") or {}
        impact_rows.append([source_label(src)] + [f3((imp.get(c) or {}).get("delta_AP"), True)
                                                  for c in (*FIXABLE, "absent", "all")])
        meta = src.meta
        if meta.get("train_seconds") is not None:
            notes.append(f"- {src.name}: {meta.get('card')} trained here with mmpose's own training in "
                         f"{meta['train_seconds']:.0f} s on {meta.get('trained_on', 'the training split')}.")
        elif meta.get("mix") is not None:
            notes.append(f"- {src.name}: ground truth with synthetic errors (mix {meta['mix']}, seed "
                         f"{meta.get('seed')}), the PoseFix input-pose synthesis applied to the validation set.")
    headers = ["source", "type", "poses", "AP", "AP50", "AP75", *ERROR_TYPES, "absent", "AP occluded"]
    return "\n".join([
        "## Sources (the refiners' inputs)", "",
        "Baseline of every upstream source on the validation set: AP, the share of matched keypoints in each error "
        "type, and the AP on the lower-body-occluded persons.", "",
        markdown_table(headers, rows), "", *notes, "",
        "AP impact (Ronchi & Perona Sec. 4.1): the AP gained when the keypoints of one error type are moved onto "
        "their own joint, everything else unchanged (\"all\": every non-good keypoint).", "",
        markdown_table(["source"] + [f"{c}" for c in (*FIXABLE, "absent", "all")], impact_rows),
    ])


# -- comparisons ---------------------------------------------------------------------------------------------------
def _comparison_table(ctx: ReportContext, names: Sequence[str], speed: bool = False) -> str:
    """AP delta and fixed/broken per error type of each ablation on each source; with ``speed`` also what it costs:
    training seconds and inference FPS (best measured batch and precision)."""
    rows = []
    for n in names:
        s = ctx.summary(n)
        cost = [fmt_stat(s["train"]["seconds"], as_count=True), _fps_text(s["fps_best"])] if speed else []
        for src in ctx.sources:
            r = s["sources"][src]
            rows.append([label(s), src, f3(r["ap_before"]), fmt_stat(r["ap_after"]), fmt_stat(r["delta"], True)]
                        + [fmt_stat(r["fixed"][t]["rate"], as_pct=True) for t in FIXABLE]
                        + [fmt_stat(r["broken"]["rate"], as_pct=True)] + cost)
    headers = ["ablation", "source", "AP before", "AP after", "delta AP"] + [f"fixed {t}" for t in FIXABLE] + [
        "good broken"] + (["train s", "FPS"] if speed else [])
    return markdown_table(headers, rows)


def _occluded_table(ctx: ReportContext, names: Sequence[str]) -> str:
    rows = []
    for n in names:
        s = ctx.summary(n)
        for src in ctx.sources:
            o = s["sources"][src].get("occluded")
            if not o:
                continue
            good = f"{o['lower_good_before']} -> {fmt_stat(o['lower_good_after'], as_count=True)}"
            rows.append([label(s), src, o["persons"], f3(o["ap_before"]), fmt_stat(o["ap_after"]),
                         fmt_stat(o["delta"], True), o.get("lower_keypoints"), good,
                         fmt_stat(o["lower_fixed"], as_count=True), fmt_stat(o["lower_broken"], as_count=True),
                         fmt_stat(s["sources"][src]["delta"], True)])
    headers = ["ablation", "source", "occluded persons", "AP before", "AP after", "delta AP", "lower-body keypoints",
               "good before -> after", "fixed", "broken", "all persons: delta AP"]
    return markdown_table(headers, rows)


def _lower_body_sentences(ctx: ReportContext, names: Sequence[str]) -> list[str]:
    out = []
    for src in ctx.sources:
        parts = []
        for n in names:
            o = ctx.summary(n)["sources"][src].get("occluded")
            if o and o.get("lower_fixed"):
                parts.append(f"{label(ctx.summary(n))} fixed {fmt_stat(o['lower_fixed'], as_count=True)} and broke "
                             f"{fmt_stat(o['lower_broken'], as_count=True)} of {o['lower_keypoints']} (good "
                             f"{o['lower_good_before']} -> {fmt_stat(o['lower_good_after'], as_count=True)})")
        if parts:
            out.append(f"Lower-body keypoints of the occluded persons of {src}: " + "; ".join(parts) + ".")
    return out


def _comparison_section(ctx: ReportContext, comp: Mapping) -> str:
    names = [s["ablation"] for s in ctx.summaries if comp.get("tag") in s["tags"]]
    lines = [f"### {comp.get('name', comp.get('tag'))}", "", f"*Question*: {comp.get('question', '-')}", ""]
    if not names:
        return "\n".join(lines + [f"No ablation of this run carries the tag `{comp.get('tag')}`."])
    occluded = comp.get("subset") == "occluded" and ctx.occluded_resolution is not None
    lines += [f"Ablations tagged `{comp.get('tag')}`: " + ", ".join(link(ctx.summary(n)) for n in names) + ".", ""]
    if comp.get("subset") == "occluded" and not occluded:
        lines += ["The occluded subset does not exist on this data (no person is tagged lower-body occluded; real "
                  "COCO carries no such tag): this comparison uses all persons only.", ""]
    lines += [_occluded_table(ctx, names) if occluded else _comparison_table(ctx, names, bool(comp.get("speed"))), ""]
    if comp.get("speed") and any(ctx.summary(n)["fps_best"] for n in names):
        lines += ["![Speed vs gain](speed_gain.png)", ""]
    sentences = []
    sums, by_label = ctx.summaries_of(names), {label(ctx.summary(n)): n for n in names}

    def paired(part, src):  # a - b on shared draws, by the labels the ranking shows
        return lambda a, b: paired_record(sums, by_label[a], by_label[b], part, src)

    for src in ctx.sources:
        if occluded:
            recs = {label(ctx.summary(n)): ctx.summary(n)["sources"][src].get("occluded") or {} for n in names}
            sentences += ranking_sentences([(lab, r.get("delta")) for lab, r in recs.items()],
                                           ctx.occluded_resolution, f"the occluded persons of {src}",
                                           {lab: r.get("ci95_per_seed") for lab, r in recs.items()},
                                           paired("occluded", src))
        recs = {label(ctx.summary(n)): ctx.summary(n)["sources"][src] for n in names}
        sentences += ranking_sentences([(lab, r["delta"]) for lab, r in recs.items()], ctx.resolution,
                                       f"all persons of {src}" if occluded else src,
                                       {lab: r.get("ci95_per_seed") for lab, r in recs.items()}, paired("all", src))
    if occluded:
        sentences += _lower_body_sentences(ctx, names)
        sentences += confidence_lines(sums, {n: label(ctx.summary(n)) for n in names}, names, ctx.sources)
    lines += [f"- {s}" for s in sentences]
    extra = (component_sentences(ctx.summaries_of(names), ctx.sources, ctx.resolution)
             + _default_choice(ctx, names, "occluded" if occluded else None))
    return "\n".join(lines + ([""] + extra if extra else []))


# -- measured error profiles ---------------------------------------------------------------------------------------
def _paper_counterpart(ctx: ReportContext, s: Mapping) -> str | None:
    """The paper-mix ablation with the same other factors (the default when it qualifies)."""
    key = {k: v for k, v in s["factors"].items() if k != "mix"}
    cands = [o["ablation"] for o in ctx.summaries
             if o["factors"]["mix"] == "paper" and {k: v for k, v in o["factors"].items() if k != "mix"} == key]
    return ctx.default if ctx.default in cands else (cands[0] if cands else None)


def profile_text(ctx: ReportContext, name: str) -> str:
    """What the measured error profile behind ablation ``name``'s mix holds."""
    mix = ctx.ablation(name).mix
    prof = mix.profile_summary or {}
    meta = prof.get("meta") or {}
    where = shown_path(mix.profile, ctx.record.cache_root)
    fr = ", ".join(f"{c} {pct(v)}" for c, v in prof["fractions"].items())
    return (f"The mix of {name} is the error profile measured from {meta.get('source', '?')}'s poses on "
            f"{meta.get('images', '?')} images of the {meta.get('split', '?')} split (never the validation split): "
            f"{prof['keypoints']} matched keypoints, {fr}; {prof['absent']} not predicted (`{where}`).")


def _measured_section(ctx: ReportContext) -> str:
    measured = [a for a in ctx.record.ablations if a.mix.measured]
    if not measured:
        return ""
    lines = ["## Measured error profile vs paper mix", ""]
    for a in measured:
        name = a.name
        s, paper = a.metrics, _paper_counterpart(ctx, a.metrics)
        lines += [f"### {link(s)}", "", profile_text(ctx, name), "",
                  f"![measured error profile of {name}](profile_{name}.png)", ""]
        if paper is None:
            lines.append("No paper-mix ablation with the same other factors ran, so there is nothing to compare with.")
            continue
        p = ctx.summary(paper)
        rows, sentences = [], []
        for src in ctx.sources:
            x, b = s["sources"][src], p["sources"][src]
            rows.append([src + (" (profiled)" if src == a.mix.source else ""), f3(x["ap_before"]),
                         fmt_stat(b["ap_after"]), fmt_stat(b["delta"], True), fmt_stat(x["ap_after"]),
                         fmt_stat(x["delta"], True), f3(x["delta"]["mean"] - b["delta"]["mean"], True)])
            first, second = sorted([(name, x["delta"]), (paper, b["delta"])], key=lambda t: -t[1]["mean"])
            sentences.append(f"On {src}: " + relation_sentence(*first, *second, ctx.resolution))
        lines += [markdown_table(["source", "AP before", f"paper ({paper}) AP after", "paper delta",
                                  "measured AP after", "measured delta", "measured - paper"], rows), ""]
        lines += [f"- {t}" for t in sentences] + [""]
    return "\n".join(lines).rstrip()


def _budget_section(ctx: ReportContext) -> str:
    """The learning curves (refined AP at the training's checkpoints) and whether the published head's deficit is
    the head's or the budget's."""
    sums = [s for s in ctx.summaries if s.get("learning_curve")]
    if not sums:
        return ""
    iters = sorted({p["iterations"] for s in sums for p in s["learning_curve"]})
    names = curve_sources(sums, ctx.sources)
    over = "the sources" if list(names) == list(ctx.sources) else (
        f"the source {names[0]}" if len(names) == 1 else f"the sources {', '.join(names)}")
    rows = []
    for s in sums:
        means = curve_means(s, names)
        rows.append([label(s)] + [f3(means.get(i), True) for i in iters])
    lines = ["## Training budget", "",
             f"AP delta (refined - input, mean over {over}; refined AP the seed mean) at the checkpoints of each "
             "training run: the same runs as above, evaluated part-way through their schedule (no extra training).",
             "", markdown_table(["ablation"] + [f"{i} it" for i in iters], rows), "",
             "![Learning curves](learning_curve.png)", ""]
    published = [s for s in sums if s["factors"].get("head") == "posefix"]
    ref = next((s for s in sums if s["ablation"] == ctx.default), None) or next(
        (s for s in sums if s["factors"].get("head") != "posefix"), None)
    if published and ref is not None:
        text = deficit_sentence(f"The published head ({label(published[0])})", curve_means(published[0], names),
                                label(ref), curve_means(ref, names), ctx.resolution, over)
        if text:
            lines.append(f"- {text}")
    return "\n".join(lines).rstrip()


def _fps_section(ctx: ReportContext) -> str:
    groups: dict[str, list] = {}
    for s in ctx.summaries:
        if s.get("fps"):
            groups.setdefault(json.dumps(s["model"], sort_keys=True), []).append(s)
    if not groups:
        return "## Speed\n\nNo FPS record in this run."
    rows = []
    for sums in groups.values():
        fps = sums[0]["fps"]
        for r in fps["rows"]:
            rows.append([f"{r['backbone']} {r['head']} {r['input_size'][1]}x{r['input_size'][0]}", len(sums),
                         r["batch"], r["precision"], num(r["samples_per_s"], 1), num(r["forward_ms"], 2),
                         num(r["gflop_per_sample"], 3), num(r["achieved_gflops"], 1),
                         pct(r["roofline_fraction"]), fps.get("threads")])
    return "\n".join([
        "## Speed (refiner inference)", "",
        "Measured once per distinct network (random weights: speed does not depend on them), BatchNorm folded, "
        "channels-last; the roofline fraction is the achieved GFLOP/s over the matrix-multiply peak measured in the "
        "same run on the same device and precision.", "",
        markdown_table(["network", "ablations", "batch", "precision", "samples/s", "forward ms", "GFLOP/sample",
                        "GFLOP/s", "roofline", "threads"], rows),
    ])


def index_markdown(ctx: ReportContext, date: str) -> str:
    """The whole index page."""
    rec = ctx.record
    seeds: dict[tuple, list] = {}
    for s in ctx.summaries:
        seeds.setdefault(tuple(s["seeds"]), []).append(s["ablation"])
    seed_text = "; ".join(f"seeds {', '.join(map(str, k))}: {len(v)} ablation(s)" for k, v in seeds.items())
    head = [f"# Bench report: profile `{rec.profile}`", "", rec.description or "", "",
            f"Written {date} from the bench record ({BENCH_FORMAT}); every number below is in `bench.json` and the "
            "per-ablation `metrics.json`, and every sentence is generated from them.", "",
            *setup_lines(ctx), f"- **Seeds**: {seed_text}.", ""]
    head += [c + "\n" for c in _caveats(ctx)]
    rules = sorted({str(s.baseline.get("taxonomy")) for s in rec.sources})
    how = ["## How to read this", "", HOW_TO_READ.format(res=f"{ctx.resolution:.3f}", n=NOISE_PERSONS,
                                                           k=NOISE_PERSONS, taxonomy=", ".join(rules))]
    default = ["## Default choice", ""] + (
        _default_choice(ctx, [s["ablation"] for s in ctx.summaries]) or
        ["The profile names no default ablation among those that ran." if ctx.default is None else
         "Only one ablation ran: nothing to compare the default with."])
    comps = ["## Comparisons"] + [_comparison_section(ctx, c) for c in rec.comparisons]
    links = ["## Ablation reports", ""] + [f"- {link(s)}: " + ", ".join(f"{k} {v}" for k, v in s["factors"].items())
                                           for s in ctx.summaries]
    parts = ["\n".join(head).rstrip(), "\n".join(how), _headline(ctx), _gate_section(ctx), "\n".join(default),
             _summary_section(ctx), _sources_section(ctx), input_strength_section(ctx), free_baselines_section(ctx),
             methods_section(ctx), "\n\n".join(comps), _budget_section(ctx), _measured_section(ctx),
             _fps_section(ctx), "\n".join(links)]
    return "\n\n".join(p for p in parts if p) + "\n"
