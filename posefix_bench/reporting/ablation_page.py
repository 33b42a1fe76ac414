"""One ablation's report (``<ablation>/report.md``): verdict, setup, AP before/after, error types, occluded subset,
confidence bins, diagnosis plots, crop panel, measured error profile, speed, and how to reproduce it.

The numbers are the ablation's metrics (:mod:`posefix_bench.record.metrics`); the error types are Ronchi & Perona's
(ICCV 2017, Sec. 3.1), "fixed" an input keypoint of an error type that ended good after refinement and "broken" a
good one that ended in an error type.
"""

from __future__ import annotations

import re
from typing import Mapping

from posefix_bench.codecs.taxonomy import ERROR_TYPES
from posefix_bench.record.metrics import FIXABLE
from posefix_bench.record.schema import shown_path
from posefix_bench.record.stats import compare
from posefix_bench.reporting.bench_plots import CROP_COLOR_NAMES
from posefix_bench.reporting.context import ReportContext
from posefix_bench.reporting.index_page import gate_lines, profile_text, setup_lines
from posefix_bench.reporting.tables import markdown_table
from posefix_bench.reporting.verdicts import (
    count, f3, fmt_stat, num, paired_record, pct, relation_sentence, source_verdict, verdict_sentence,
)  # fmt: skip

__all__ = ["ablation_markdown", "slug"]


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)


def _vs_default(ctx: ReportContext, s: Mapping, src: str) -> str:
    d = ctx.summary(ctx.default)
    a, b = s["sources"][src]["delta"], d["sources"][src]["delta"]
    rec = paired_record({s["ablation"]: s}, s["ablation"], ctx.default, "all", src)
    if rec and rec.get("ci95") is not None and rec.get("delta") is not None:
        return f"Against the default {ctx.default} on {src}: " + relation_sentence("this refiner", a, "the default", b,
                                                                                  ctx.resolution, rec)
    c = compare(a, b, ctx.resolution)
    if c["single"] and c["state"] == "tied":
        word = "a single seed cannot separate it from the default"
    else:
        word = {"tied": "no different from the default (within the noise bound)", "ahead": "better than the default",
                "behind": "worse than the default"}[c["state"]] + (" on one seed each" if c["single"] else "")
    return (f"Against the default {ctx.default} on {src}: delta {fmt_stat(a, True)} vs {fmt_stat(b, True)}, "
            f"{c['diff']:+.3f} AP (noise bound {c['bound']:.3f}): {word}.")


def _verdict(ctx: ReportContext, s: Mapping) -> str:
    lines = ["## Verdict", ""]
    for src in ctx.sources:
        r = s["sources"][src]
        sentence = verdict_sentence("This refiner", r["ap_before"], r["ap_after"], r["delta"], ctx.resolution, src,
                                    r.get("ci95"), r.get("ci95_per_seed"))
        lines.append(f"- {sentence}")
        o = r.get("occluded")
        if o and o.get("ap_after"):
            where = f"the {o['persons']} occluded persons of {src}"
            sentence = verdict_sentence("This refiner", o["ap_before"], o["ap_after"], o["delta"],
                                        ctx.occluded_resolution, where, o.get("ci95"), o.get("ci95_per_seed"))
            lines.append(f"- {sentence}")
    if ctx.default is not None and s["ablation"] != ctx.default:
        lines += [f"- {_vs_default(ctx, s, src)}" for src in ctx.sources]
    if s["untrained"]:
        lines.append("- **UNTRAINED**: these refined results come from untrained weights.")
    return "\n".join(lines)


def _setup(ctx: ReportContext, s: Mapping) -> str:
    rows = []
    for seed, t in s["train"]["per_seed"].items():
        resumed = t.get("resumed_from")
        rows.append([seed, t.get("iterations"), t.get("precision") or "-", num(t.get("seconds"), 1),
                     num(t.get("samples_per_s"), 1), num(t.get("final_loss"), 4),
                     "-" if resumed is None else f"iteration {resumed} (time covers the rest)"])
    refine = sorted({p for src in s["sources"].values() for p in src.get("refine_precision") or ()})
    return "\n".join([
        "## Setup", "", *setup_lines(ctx), f"- **Seeds**: {', '.join(map(str, s['seeds']))}.", "",
        "Training (one run per seed; samples/s include data loading):", "",
        markdown_table(["seed", "iterations", "precision", "seconds", "samples/s", "final loss", "resumed from"],
                       rows), "",
        f"Refinement precision: {', '.join(refine) or '-'} (chosen by the precision probe unless the profile sets "
        "one; the FPS rows below name their own).",
    ])


def _ap(ctx: ReportContext, s: Mapping) -> str:
    rows = []
    for src in ctx.sources:
        r = s["sources"][src]
        per_seed = ", ".join(f"s{k} {f3(v)}" for k, v in r["ap_after"]["per_seed"].items()) if r["ap_after"] else "-"
        ci = r.get("ci95")
        rows.append([src, f3(r["ap_before"]), fmt_stat(r["ap_after"]), fmt_stat(r["delta"], True),
                     "-" if ci is None else f"[{f3(ci[0], True)}, {f3(ci[1], True)}]",
                     source_verdict(r, ctx.resolution), per_seed]
                    + [f"{f3(r['metrics_before'][k])} -> {f3((r['metrics_after'][k] or {}).get('mean'))}"
                       for k in ("AP50", "AP75", "APm", "APl")])
    return "\n".join([
        "## AP before / after", "",
        markdown_table(["source", "AP before", "AP after", "delta AP", "95% interval", "verdict", "AP after per seed",
                        "AP50", "AP75", "APm", "APl"], rows), "",
        "![AP before and after refinement](ap_before_after.png)",
    ])


def _error_types(ctx: ReportContext, s: Mapping) -> str:
    lines = ["## Error types before / after", "",
             "Matched keypoints per class (input, and refined as a seed mean), and what refinement did to them: "
             "input keypoints of each error type that ended good (fixed), good ones that ended in an error (broken)."]
    for src in ctx.sources:
        r = s["sources"][src]
        before, after = r["counts_before"] or {}, r["counts_after"]
        rows = []
        for c in (*ERROR_TYPES, "absent"):
            aft = (after.get(c) or {}).get("mean")
            if c == "good":
                trans = ("broken (-> error)", fmt_stat(r["broken"]["broken"], as_count=True),
                         fmt_stat(r["broken"]["rate"], as_pct=True))
            elif c in FIXABLE:
                f = r["fixed"][c]
                trans = ("fixed (-> good)", fmt_stat(f["fixed"], as_count=True), fmt_stat(f["rate"], as_pct=True))
            else:
                trans = ("stays absent", "-", "-")
            rows.append([c, before.get(c), "-" if aft is None else count(aft), *trans])
        table = markdown_table(["class", "input", "refined", "transition", "keypoints", "rate"], rows)
        lines += ["", f"### {src}", "", table]
    return "\n".join(lines)


def _occluded(ctx: ReportContext, s: Mapping) -> str:
    rows = []
    for src in ctx.sources:
        o = s["sources"][src].get("occluded")
        if o:
            rows.append([src, o["persons"], f3(o["ap_before"]), fmt_stat(o["ap_after"]), fmt_stat(o["delta"], True),
                         o.get("lower_keypoints"), o.get("lower_good_before"),
                         fmt_stat(o["lower_good_after"], as_count=True), fmt_stat(o["lower_fixed"], as_count=True),
                         fmt_stat(o["lower_broken"], as_count=True), f3(o.get("lower_ks_before")),
                         fmt_stat(o["lower_ks_after"])])
    if not rows:
        return ("## Occluded subset\n\nThe occluded subset does not exist on this data: no validation person is "
                "tagged lower-body occluded (real COCO carries no such tag).")
    return "\n".join([
        "## Occluded subset", "",
        "AP on the persons tagged lower-body occluded (the others are ignore regions), and what refinement did to "
        "their lower-body keypoints (hips, knees, ankles) matched to the same person before and after.", "",
        markdown_table(["source", "persons", "AP before", "AP after", "delta AP", "lower-body keypoints",
                        "good before", "good after", "fixed", "broken", "mean KS before", "mean KS after"], rows),
    ])


def _confidence(ctx: ReportContext, s: Mapping) -> str:
    lines = ["## By estimator confidence", "",
             "Fixed and broken rates per bin of the input keypoint confidence (seed means; counts are input "
             "keypoints)."]
    for src in ctx.sources:
        rows = [[b, fmt_stat(r["errors"], as_count=True), fmt_stat(r["fixed_rate"], as_pct=True),
                 fmt_stat(r["broken"]["input"], as_count=True), fmt_stat(r["broken"]["rate"], as_pct=True)]
                for b, r in s["sources"][src]["per_confidence"].items()]
        lines += ["", f"### {src}", "", markdown_table(["confidence", "error keypoints", "fixed", "good keypoints",
                                                         "broken"], rows)]
    return "\n".join(lines)


def _plots(ctx: ReportContext, s: Mapping) -> str:
    from posefix_bench.reporting.diagnosis_plots import PLOT_FILES

    seed = s["seeds"][0]
    lines = ["## Diagnosis plots", "",
             f"Seed {seed}. Error types before/after (refined hatched), AP impact of each error type of the input "
             "(measured once per source), error types per keypoint, and fixed/broken rates per confidence bin."]
    for src in ctx.sources:
        lines += ["", f"### {src}", ""]
        lines += [f"![{src} {name}]({slug(src)}_{fname})" for name, fname in PLOT_FILES.items()
                  if name != "ap_impact" or ctx.diags[(s["ablation"], src)].get("ap_impact")]
    return "\n".join(lines)


def _crops(ctx: ReportContext, s: Mapping) -> str:
    a = ctx.ablation(s["ablation"])
    src = ctx.sources[0]
    items = a.run(a.seeds[0], src).crops
    if not items:
        return f"## Crops\n\nNo detection of {src} matched the same person before and after refinement."
    colors = ", ".join(f"{name} {color}" for name, color in CROP_COLOR_NAMES.items())
    rows = [[i + 1, it["kind"], it["image_id"], it["ann_id"], f3(it["ks_before"]), f3(it["ks_after"]),
             f3(it["ks_after"] - it["ks_before"], True)] for i, it in enumerate(items)]
    return "\n".join([
        "## Crops: input vs refined", "",
        f"Persons of {src} (seed {s['seeds'][0]}) whose mean keypoint similarity over their labelled joints rose "
        "most (fix) and fell most (break) under refinement (persons with at least 6 labelled joints). Skeletons: "
        + colors + "; left limbs lighter, right limbs darker; left joints circles, right joints squares, centre "
        "joints diamonds; hollow ground-truth joints are labelled occluded. Captions: mean KS input -> refined."
        + (" **UNTRAINED refiner.**" if s["untrained"] else ""),
        "", "![input vs refined crops](crops.png)", "",
        markdown_table(["crop", "kind", "image", "person", "KS input", "KS refined", "change"], rows),
    ])


def _fps(s: Mapping) -> str:
    fps = s.get("fps")
    if not fps:
        return "## Speed\n\nNo FPS record."
    rows = [[r["batch"], r["precision"], num(r["samples_per_s"], 1), num(r["forward_ms"], 2),
             num(r["achieved_gflops"], 1), pct(r["roofline_fraction"])] for r in fps["rows"]]
    return "\n".join([
        "## Speed (refiner inference)", "",
        f"{fps.get('gflop_per_sample', 0):.3f} GFLOP/sample, device {fps.get('device')}, {fps.get('threads')} "
        "threads; random weights (speed does not depend on them), BatchNorm folded.", "",
        markdown_table(["batch", "precision", "samples/s", "forward ms", "GFLOP/s", "roofline"], rows),
    ])


def _reproduce(ctx: ReportContext, s: Mapping) -> str:
    rec, abl = ctx.record, ctx.ablation(s["ablation"])
    seed, src = s["seeds"][0], rec.sources[0]
    run = abl.run(seed, src.name)
    cache = rec.cache_root
    root = shown_path(rec.data.root, cache)
    gt, split = shown_path(src.gt, cache), rec.data.val_split
    env = rec.environment
    options = (f"data.root={root} data.train_split={rec.data.train_split} data.val_split={split} "
               f"train.seed={seed} train.threads={env.get('threads_per_job', 1)} "
               f"train.device={env.get('device', 'cpu')}"
               + (f" data.mix={shown_path(abl.mix.profile, cache)}" if abl.mix.measured else ""))
    work = f"work_dirs/{s['ablation']}-s{seed}"
    return "\n".join([
        "## Reproduce", "",
        "The whole bench for this ablation (cached steps are reused; only what changed is recomputed):", "",
        "```bash", f"make bench PROFILE={rec.profile} BENCH_ARGS=\"--only {s['ablation']}\"",
        f".venv/bin/posefix-bench bench --profile {rec.profile} --only '{s['ablation']}' "
        f"--jobs {env.get('jobs', 2)} --threads {env.get('threads_per_job', 1)}", "```", "",
        f"Step by step, seed {seed}, source {src.name}. The bench refines with the profile's `refine` settings "
        "(batch size, precision), so the refine command may differ in the last digits; the diagnose command on the "
        "bench's own files reproduces the numbers above exactly.", "",
        "```bash",
        f".venv/bin/posefix-bench train --config {s['config']} --work-dir {work} --cfg-options {options}",
        f".venv/bin/posefix-bench refine --checkpoint {work}/final.pth --images {root}/{split} --gt {gt} "
        f"--results {shown_path(src.results, cache)} --out refined.json",
        f".venv/bin/posefix-bench diagnose --gt {gt} --results {shown_path(src.results, cache)} "
        f"--refined {shown_path(run.refined, cache)} "
        f"--out diagnosis-{s['ablation']}-s{seed}", "```",
    ])


def ablation_markdown(ctx: ReportContext, name: str) -> str:
    """The whole report of ablation ``name``."""
    s = ctx.summary(name)
    factors = ", ".join(f"{k} {v}" for k, v in s["factors"].items())
    head = [f"# Ablation `{name}`" + (" (UNTRAINED)" if s["untrained"] else ""), "",
            f"[Back to the {ctx.record.profile} index](../index.md). Config `{s['config']}`; factors: {factors}; "
            f"seeds {', '.join(map(str, s['seeds']))}; tags {', '.join(s['tags']) or '-'}"
            + ("; **the profile's default**." if s["default"] else ".")]
    gate = gate_lines(ctx) if s["default"] else []
    if not gate and ctx.default is not None and ctx.summary(ctx.default).get("gate"):
        head[-1] += " Its refinement is ungated (only the profile's default refiner is gated)."
    parts = [head, [_verdict(ctx, s)], [_setup(ctx, s)], [_ap(ctx, s)]]
    parts += [["## Refinement gate", ""] + gate] if gate else []
    parts += [[_error_types(ctx, s)], [_occluded(ctx, s)], [_confidence(ctx, s)], [_plots(ctx, s)], [_crops(ctx, s)]]
    if ctx.ablation(name).mix.measured:
        parts.append(["## Measured error profile", "", profile_text(ctx, name), "",
                      "![measured error profile](profile.png)"])
    parts += [[_fps(s)], [_reproduce(ctx, s)]]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"
