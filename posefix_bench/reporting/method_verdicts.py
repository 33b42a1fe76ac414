"""Verdict sentences on the refinement methods of a profile (issue 26): on each source, the best method and whether
the (first) posefix method beats the simplest alternatives, re-estimating each pose with a top-down estimator and an
image-free pose prior (:data:`RIVALS`).

Two methods on one source are compared by the paired bootstrap (issue 27): the interval of the difference of their
refined AP on the same draws of validation images (``metrics["paired"]`` of a method,
:func:`posefix_bench.record.intervals.method_comparisons`); one beats the other when that interval lies above 0,
and they are tied when it contains 0. Without intervals (an old record) the rule is
:func:`posefix_bench.record.stats.compare`'s noise bound (the larger seed spread, at least the resolution).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from posefix_bench.record.stats import compare, compare_ci
from posefix_bench.reporting.verdicts import ci_text, f3

__all__ = ["RIVALS", "beats", "method_sentence"]

RIVALS = ("re-estimate", "pose-prior")  # the method types posefix is held against

Paired = Callable[[str, str], "Mapping | None"]


def beats(a: Mapping, b: Mapping, resolution: float, paired: Mapping | None = None) -> dict:
    """Whether a method's AP delta ``a`` beats ``b`` (seed stats): ``{"beats", "state", "diff", "bound", "ci95"}``.

    With ``paired`` (``{"delta", "ci95"}``: a's refined AP minus b's on the same bootstrap draws) the interval
    decides (``state`` ahead / tied / behind, ``bound`` None); otherwise the noise bound of
    :func:`~posefix_bench.record.stats.compare` does (``ci95`` None)."""
    if paired and paired.get("ci95") is not None and paired.get("delta") is not None:
        state = compare_ci(paired["delta"], paired["ci95"])
        return {"beats": state == "ahead", "state": state, "diff": float(paired["delta"]), "bound": None,
                "ci95": list(paired["ci95"])}
    c = compare(a, b, resolution)
    return {"beats": c["state"] == "ahead", "state": c["state"], "diff": c["diff"], "bound": c["bound"], "ci95": None}


def _margin(judged: dict) -> str:
    """How a comparison was judged, as a phrase: the interval of the difference, or the noise bound."""
    if judged["ci95"] is not None:
        return f"{ci_text(judged['ci95'])} of the difference over validation images, same draws"
    return f"noise bound {judged['bound']:.3f}"


def method_sentence(source: str, methods: Sequence[tuple[str, str, Mapping | None]], resolution: float,
                    paired: Paired | None = None) -> str | None:
    """One sentence on a source's refinement methods (``(name, type, AP delta seed stat)``): the best one and
    whether its lead over the next is resolved, and whether the (first) posefix method beats each method of the
    :data:`RIVALS` types (or that the profile has none). ``paired(a, b)``: the paired record of method ``a`` against
    ``b`` on this source (None without one: the noise bound decides)."""
    scored = [(n, t, st) for n, t, st in methods if st is not None]
    if not scored:
        return None

    def judge(x, y) -> dict:
        return beats(x[2], y[2], resolution, paired(x[0], y[0]) if paired else None)

    ranked = sorted(scored, key=lambda m: -m[2]["mean"])
    best = ranked[0]
    text = f"On {source}, the best method is {best[0]} ({f3(best[2]['mean'], True)} AP)"
    if len(ranked) > 1:
        lead = judge(best, ranked[1])
        resolved = "resolved" if lead["beats"] else "not resolved"
        text += f", ahead of {ranked[1][0]} by {abs(lead['diff']):.3f} AP, {resolved} ({_margin(lead)})"
    posefix = next((m for m in scored if m[1] == "posefix"), None)
    if posefix is None:
        return text + "; no posefix method ran."
    parts, absent = [], []
    for rival in RIVALS:
        found = next((m for m in scored if m[1] == rival), None)
        if found is None:
            absent.append(rival)
            continue
        b = judge(posefix, found)
        verb = {"ahead": "beats", "tied": "is tied with", "behind": "is behind"}[b["state"]]
        parts.append(f"{posefix[0]} {verb} {found[0]} ({f3(posefix[2]['mean'], True)} vs "
                     f"{f3(found[2]['mean'], True)} AP; {_margin(b)})")
    if absent:
        parts.append(f"the profile has no {' or '.join(absent)} method to hold {posefix[0]} against")
    return text + "; " + "; ".join(parts) + "."
