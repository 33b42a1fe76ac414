"""Sentences on low-confidence keypoints: does a refiner fix them, and does one ablation fix more than another?

The question comes from the PyTorch re-implementation of PoseFix, which fixed high-confidence keypoints but not
low-confidence ones (issue 27). The numbers are the per-source metrics' fixed / broken keypoints per input-confidence
bin (Ronchi & Perona's transitions, :func:`posefix_bench.evaluation.diagnosis.transitions`) with the paired
bootstrap's 95% intervals over validation images (:mod:`posefix_bench.record.intervals`); the rule is that of
:mod:`posefix_bench.reporting.verdicts`: a bin's keypoints count as fixed when the interval of the net fixed
keypoints (fixed - broken) lies above 0, and two ablations differ when the interval of their difference excludes 0.
Without intervals (old records) no sentence is made.
"""

from __future__ import annotations

from typing import Mapping

from posefix_bench.reporting.verdicts import fmt_stat

__all__ = ["low_confidence_sentence", "confidence_pair_sentence", "confidence_lines"]


def _count_ci(ci) -> str:
    return "no interval" if ci is None else f"95% interval [{ci[0]:+.1f}, {ci[1]:+.1f}]"


def _net_state(ci) -> str | None:
    """'fixed' (net fixed interval above 0), 'broken' (below), 'unchanged' (contains 0) or None (no interval)."""
    if ci is None:
        return None
    return "fixed" if ci[0] > 0 else ("broken" if ci[1] < 0 else "unchanged")


def low_confidence_sentence(label: str, where: str, per_conf: Mapping) -> str | None:
    """Whether ``label`` fixes low-confidence keypoints on ``where`` (the PyTorch re-implementation of PoseFix fixed
    high-confidence keypoints but not low-confidence ones): the net fixed keypoints (fixed - broken, input
    confidence bins of the per-source metrics) of the lowest and the highest bin, each with its 95% interval; a bin
    counts as fixed when its interval lies above 0. None without intervals (old records) or with one bin."""
    bins = [b for b, r in per_conf.items() if r.get("net_fixed") and (r.get("counts_ci95") or {}).get("net")]
    if len(bins) < 2:
        return None
    low, high = bins[0], bins[-1]

    def part(b):
        r = per_conf[b]
        fixed, broken = fmt_stat(r["fixed_total"], as_count=True), fmt_stat(r["broken"]["broken"], as_count=True)
        return (f"{fmt_stat(r['net_fixed'], as_count=True)} net in bin {b} ({fixed} fixed, {broken} broken; "
                f"{_count_ci(r['counts_ci95']['net'])})")

    lo, hi = _net_state(per_conf[low]["counts_ci95"]["net"]), _net_state(per_conf[high]["counts_ci95"]["net"])
    verbs = {"fixed": "fixes", "unchanged": "neither fixes nor breaks (beyond what this validation set resolves)",
             "broken": "breaks more than it fixes of"}
    answer = f"it {verbs[lo]} the low-confidence keypoints and {verbs[hi]} the high-confidence ones"
    if hi == "fixed" and lo != "fixed":
        answer += ", as the PyTorch re-implementation of PoseFix observed (high-confidence fixed, low-confidence not)"
    else:
        answer += ("; the PyTorch re-implementation's observation (high-confidence fixed, low-confidence not) does "
                   "not hold here")
    return f"Does {label} fix low-confidence keypoints on {where}? {part(low)}; {part(high)}: {answer}."


def confidence_pair_sentence(a_label: str, b_label: str, where: str, per_conf: Mapping | None) -> str | None:
    """``a`` against ``b`` in net fixed keypoints of the lowest input-confidence bin on ``where`` (``per_conf``:
    {bin: {"net": {"delta", "ci95"}, ...}} of a - b on shared draws): more, fewer, or no difference resolved."""
    if not per_conf:
        return None
    low = next(iter(per_conf))
    net = per_conf[low]["net"]
    if net.get("ci95") is None:
        return None
    state = _net_state(net["ci95"])
    word = {"fixed": f"{a_label} nets more fixed keypoints than {b_label}",
            "broken": f"{a_label} nets fewer fixed keypoints than {b_label}",
            "unchanged": f"{a_label} and {b_label} do not differ beyond what this validation set resolves"}[state]
    return (f"In the lowest input-confidence bin ({low}) of {where}, {a_label} - {b_label} = {net['delta']:+.1f} net "
            f"fixed keypoints ({_count_ci(net['ci95'])}, same draws): {word}.")


def confidence_lines(summaries: Mapping[str, Mapping], labels: Mapping[str, str], names, sources) -> list[str]:
    """The sentences of a comparison (the lower-body one): per source, whether each ablation fixes low-confidence
    keypoints, and for two ablations whether the first nets more in the lowest bin than the second; on the
    dedicated occluded split where the source has one (its occluded persons), else on all persons."""
    out = []
    for src in sources:
        occ = {n: summaries[n]["sources"][src].get("occluded") or {} for n in names}
        dedicated = all(o.get("per_confidence") for o in occ.values())
        where = (f"the {occ[names[0]]['persons']} occluded persons of {src} (dedicated split)" if dedicated else src)
        for n in names:
            per = occ[n]["per_confidence"] if dedicated else summaries[n]["sources"][src].get("per_confidence")
            t = low_confidence_sentence(labels[n], where, per or {})
            if t:
                out.append(t)
        if len(names) == 2:
            a, b = names
            key = "occluded_per_confidence" if dedicated else "per_confidence"
            rec = (((summaries[a].get("paired") or {}).get(b) or {}).get(key) or {}).get(src)
            t = confidence_pair_sentence(labels[a], labels[b], where, rec)
            if t:
                out.append(t)
    return out
