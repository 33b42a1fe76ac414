"""Index sections about the refiner's inputs: how the gain depends on the input's strength, and the free baselines.

- *Input strength*: PoseFix's own results shrink with a stronger input (Moon et al., CVPR 2019, refining the results of
  other methods on COCO test-dev: +7.3 AP on an input at 56.6, +2.5 at 71.1). The section plots the default refiner's
  AP delta against each source's input AP (a point per source) and states the trend in a generated sentence
  (:func:`~posefix_bench.reporting.verdicts.gain_trend_sentence`), and within each family of sources that differ
  only in strength (one estimator's checkpoints, the synthetic source's error scales:
  :func:`~posefix_bench.reporting.verdicts.family_trend_sentences`), since a pooled trend across families can point
  the other way.
- *Free baselines*: mmpose's test-time post-processing, flip test (Xiao et al., ECCV 2018, Sec. 4) and DARK
  decoding for heatmap heads (Zhang et al., CVPR 2020), judged against the same source's plain output exactly as a
  refinement is (:class:`~posefix_bench.record.schema.FreeBaseline`), beside the default refiner on that source,
  with the estimator's samples/s plain and with the method.
"""

from __future__ import annotations

from typing import Sequence

from posefix_bench.record.metrics import FIXABLE
from posefix_bench.reporting.context import ReportContext, label
from posefix_bench.reporting.tables import markdown_table
from posefix_bench.reporting.verdicts import (
    f3, family_trend_sentences, free_baseline_sentence, gain_trend_sentence, num, pct,
)

__all__ = ["GAIN_PLOT", "input_strength_points", "input_strength_section", "source_families",
           "free_baselines_section"]

GAIN_PLOT = "gain_vs_input.png"


def input_strength_points(ctx: ReportContext) -> list[tuple[str, float, float]]:
    """(source, input AP, the default refiner's AP delta, seed mean) for every source; empty without a default."""
    if ctx.default is None:
        return []
    s = ctx.summary(ctx.default)
    return [(name, s["sources"][name]["ap_before"], s["sources"][name]["delta"]["mean"]) for name in ctx.sources
            if s["sources"][name]["ap_before"] is not None and s["sources"][name]["delta"] is not None]


def input_strength_section(ctx: ReportContext) -> str:
    points = input_strength_points(ctx)
    if len(points) < 2:
        return ""
    s = ctx.summary(ctx.default)
    rows = [[name, f3(ap), f3(d, True)] for name, ap, d in sorted(points, key=lambda p: p[1])]
    lines = ["## Gain vs input strength", "",
             f"The default refiner {label(s)} on each source, weakest input first (PoseFix's published gain shrinks "
             "from +7.3 AP on a 56.6 input to +2.5 on a 71.1 input on COCO test-dev).", "",
             markdown_table(["source", "input AP", "AP delta"], rows), "", f"![Gain vs input AP]({GAIN_PLOT})", ""]
    families = source_families(ctx)
    within = family_trend_sentences(points, families, ctx.resolution)
    text = gain_trend_sentence(points, ctx.resolution)
    if text and within and len({families.get(p[0], p[0]) for p in points}) > 1:
        text = (f"Pooled over every source, across families that differ in more than strength (what their errors "
                f"are, not only how many): {text[0].lower()}{text[1:]} The within-family trends above are the "
                "controlled reading.")
    lines += [f"- {t}" for t in within + ([text] if text else [])]
    return "\n".join(lines).rstrip()


def source_families(ctx: ReportContext) -> dict[str, str]:
    """source -> the label of its family of sources that differ only in strength
    (:attr:`~posefix_bench.record.schema.SourceRun.family`)."""
    by_family: dict[tuple, list[str]] = {}
    for src in ctx.record.sources:
        by_family.setdefault(src.family, []).append(src.name)
    out = {}
    for (kind, what), names in by_family.items():
        if kind == "card":
            text = f"the checkpoints of one {what} training"
        elif kind == "synthetic":
            text = f"the synthetic {what}-mix source at {len(names)} error scales"
        else:
            text = what
        out.update({n: text for n in names})
    return out


def _pooled(rec: dict, key: str) -> str:
    st = rec.get(key)
    return pct(st["mean"]) if st and st.get("mean") is not None else "-"


def free_baselines_section(ctx: ReportContext) -> str:
    baselines: Sequence = ctx.record.baselines
    if not baselines:
        return ""
    ref = ctx.summary(ctx.default) if ctx.default else None
    ref_sps = (ref or {}).get("fps_best") or {}
    rows, sentences = [], []
    for b in baselines:
        m = b.metrics["sources"][b.source]
        speed = b.metrics.get("speed") or {}
        r = (ref or {}).get("sources", {}).get(b.source)
        name = b.name + (" (UNTRAINED)" if b.untrained else "")
        rows.append([f"[{name}]({b.name}/metrics.json)", b.method, f3(m["ap_before"]), f3(m["ap_after"]["mean"]),
                     f3(m["delta"]["mean"], True), f3(r["delta"]["mean"], True) if r else "-",
                     _pooled(m, "fixed_rate"), _pooled(m["broken"], "rate"),
                     _pooled(r, "fixed_rate") if r else "-", _pooled(r["broken"], "rate") if r else "-",
                     f"{num(speed.get('plain_samples_per_s'), 1)} -> {num(speed.get('samples_per_s'), 1)}"])
        if r:
            pair = (((b.metrics.get("paired") or {}).get(ctx.default) or {}).get("all") or {}).get("sources", {})
            text = free_baseline_sentence(b.source, b.method, m["delta"]["mean"], label(ref), r["delta"]["mean"],
                                          ctx.resolution, pair.get(b.source))
            if text:
                sentences.append(f"- {text}")
    fixed_types = ", ".join(FIXABLE)
    lines = ["## Free baselines (mmpose test-time post-processing)", "",
             "Each mmpose source with mmpose's flip test, and with DARK decoding where its head is a heatmap head, "
             "analysed against the same source's plain output exactly as a refinement is (one pass: AP, fixed and "
             f"broken over {fixed_types}); beside them the default refiner on the same source. Estimator samples/s: "
             "the whole prediction (image reading, crops, network, decoding) on the same validation persons, plain "
             f"-> with the method, measured in this run; the refiner adds its own cost on top "
             f"({num(ref_sps.get('samples_per_s'), 1)} samples/s at batch {ref_sps.get('batch', '-')}, "
             f"{ref_sps.get('precision', '-')}).", "",
             markdown_table(["baseline", "method", "input AP", "AP with method", "delta", "refiner delta",
                             "fixed", "broken", "refiner fixed", "refiner broken", "estimator samples/s"], rows), ""]
    return "\n".join(lines + sentences).rstrip()
