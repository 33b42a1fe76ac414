"""Index section on the refinement methods (issue 26): every method of the profile on every source, side by side.

A method (:mod:`posefix_bench.methods`: PoseFix, re-estimating each pose with a top-down estimator, an image-free
pose prior, the identity control, any external refiner) is analysed against the source's results exactly as a
refinement of an ablation is; the table shows its AP delta, the share of fixable input errors it fixed and of good
keypoints it broke, and its own samples/s (the refinement pass alone, the estimator's time apart). One generated
sentence per source names the best method and says whether posefix beats re-estimate and pose-prior: by the paired
bootstrap interval of their difference on the same draws (:func:`~posefix_bench.reporting.method_verdicts.
method_sentence`), the noise bound for records without intervals.
"""

from __future__ import annotations

from posefix_bench.record.metrics import FIXABLE
from posefix_bench.reporting.context import ReportContext
from posefix_bench.reporting.tables import markdown_table
from posefix_bench.reporting.method_verdicts import method_sentence
from posefix_bench.reporting.verdicts import f3, num, pct

__all__ = ["methods_section"]


def _rate(stat) -> str:
    return pct(stat["mean"]) if stat and stat.get("mean") is not None else "-"


def _interval(ci) -> str:
    return f"[{f3(ci[0], True)}, {f3(ci[1], True)}]" if ci else "-"


def methods_section(ctx: ReportContext) -> str:
    methods = ctx.record.methods
    if not methods:
        return ""
    rows = []
    for src in ctx.sources:
        for m in methods:
            rec = m.metrics["sources"][src]
            name = m.name + (" (UNTRAINED)" if rec["untrained"] else "")  # random weights in this row's input or method
            rows.append([f"[{name}](methods/{m.name}/metrics.json)", m.type, src, f3(rec["ap_before"]),
                         f3(rec["delta"]["mean"] if rec["delta"] else None, True), _interval(rec.get("ci95")),
                         _rate(rec.get("fixed_rate")),
                         _rate(rec["broken"]["rate"]), num(rec.get("samples_per_s"), 1)])
    by_name = {m.name: m for m in methods}

    def paired(src):
        def get(a: str, b: str):
            rec = (by_name[a].metrics.get("paired") or {}).get(b) or {}
            return (rec.get("sources") or {}).get(src)
        return get

    sentences = [method_sentence(src, [(m.name, m.type, m.metrics["sources"][src]["delta"]) for m in methods],
                                 ctx.resolution, paired(src)) for src in ctx.sources]
    lines = ["## Refinement methods", "",
             "Every refinement method of the profile on every source, analysed against the source's results in the "
             "same one pass as the ablations (AP, fixed over " + ", ".join(FIXABLE) + ", broken good keypoints). "
             "samples/s: the method's own refinement pass over the source's validation persons (its loading and the "
             "estimator's time apart), one method at a time in this run. identity is the control: its delta must "
             "be exactly 0.", "",
             markdown_table(["method", "type", "source", "input AP", "delta AP", "95% interval", "fixed", "broken",
                             "samples/s"], rows), "",
             "95% interval: of the delta, by the paired bootstrap over validation images; two methods are compared "
             "on the same draws (`paired` in each method's metrics.json).", ""]
    return "\n".join(lines + [f"- {s}" for s in sentences if s]).rstrip()
