"""Verdict sentences on the refinement gate: whether gating removes the harm of refinement on each source and what
share of the gain it keeps (issue 17), judged by the rules of :mod:`posefix_bench.reporting.verdicts`: by each
reading's 95% interval where the record has one (issue 27), else by the resolution.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from posefix_bench.record.stats import judge, judge_ci
from posefix_bench.reporting.verdicts import ci_text, fmt_stat, pct, plural

__all__ = ["gate_sentences"]


def _gate_one(src: str, ungated: Mapping | None, gated: Mapping | None, share: Mapping | None,
              resolution: float, cis: tuple | None = None) -> tuple[str, str, str]:
    """(sentence, ungated word, gated word) for one source; ``cis``: each reading's {seed: interval} or None."""
    u_ci, g_ci = cis or (None, None)
    u, g = judge(ungated, resolution), judge(gated, resolution)
    if u == "n/a" or g == "n/a":
        return f"On {src} there is no AP to compare the gated and ungated refinement with.", u, g
    u, g = judge_ci(u_ci) or u, judge_ci(g_ci) or g

    def reading(stat, per_seed):
        one = next(iter(per_seed.values())) if per_seed and len(per_seed) == 1 else None
        return fmt_stat(stat, signed=True) + (f" ({ci_text(one)})" if one else "")

    nums = f"ungated {reading(ungated, u_ci)}, gated {reading(gated, g_ci)} AP"
    took = f"; the gate took {fmt_stat(share, as_pct=True)} of the refinable keypoints" if share else ""
    if u == "worse":
        if g == "worse":
            text = f"On {src} refinement makes things worse and gating does not remove the harm ({nums}{took})."
        else:
            after = "a gain" if g == "gain" else ("no change the validation set resolves" if g_ci
                                                  else f"within the resolution {resolution:.3f} of the input")
            text = f"On {src} gating removes the harm of refinement: {nums}, {after}{took}."
    elif u == "gain":
        kept = gated["mean"] / ungated["mean"]
        if g == "worse":
            text = f"On {src} refinement gains ungated, but gated it makes things worse ({nums}{took})."
        else:
            text = f"On {src} refinement gains and gating keeps {pct(kept)} of the gain ({nums}{took})."
    else:
        what = ("seeds disagree on the sign of the ungated change" if u == "unclear"
                else "the interval of the ungated change contains 0" if u_ci
                else f"ungated refinement changes AP by less than the resolution {resolution:.3f}")
        if g == "worse":
            text = f"On {src} {what}, and gated it makes things worse ({nums}{took})."
        elif g == "gain":
            text = f"On {src} {what}; gated it gains ({nums}{took})."
        else:
            text = f"On {src} {what}, and gated it makes no clear difference either ({nums}{took})."
    return text, u, g


def gate_sentences(rows: Sequence[tuple[str, Mapping | None, Mapping | None, Mapping | None]],
                   resolution: float, cis: Mapping[str, tuple] | None = None) -> list[str]:
    """Whether gating removes the harm of refinement on each source and what share of the gain it keeps.

    ``rows``: (source, ungated AP delta, gated AP delta, accepted share), seed stats of the two readings of the same
    refinement pass. A source is harmed when the ungated delta makes things worse (:func:`judge`); the gate removes
    the harm when the gated delta does not; the share kept is the gated over the ungated mean delta where the
    ungated one is a gain. The last sentence sums up over the sources.
    ``cis``: {source: (ungated, gated) {seed: 95% interval}} judge the
    readings by their intervals (:func:`~posefix_bench.record.stats.judge_ci`) where a record has them.
    """
    out, harmed, removed, kept, new_harm = [], [], [], [], []
    for src, ungated, gated, share in rows:
        text, u, g = _gate_one(src, ungated, gated, share, resolution, (cis or {}).get(src))
        out.append(text)
        if u == "worse":
            harmed.append(src)
            if g != "worse":
                removed.append(src)
        elif g == "worse":
            new_harm.append(src)
        if u == "gain" and g != "worse":
            kept.append(gated["mean"] / ungated["mean"])
    if not rows:
        return out
    n = len(rows)
    if not harmed:
        summary = f"Ungated refinement made things worse on none of the {plural(n, 'source')}"
    elif len(removed) == len(harmed):
        summary = ("Gating removes the harm on every source where ungated refinement made things worse "
                   f"({', '.join(harmed)})")
    else:
        left = [h for h in harmed if h not in removed]
        summary = (f"Gating removes the harm on {len(removed)} of the {len(harmed)} sources where ungated refinement "
                   f"made things worse; it remains on {', '.join(left)}")
    if kept:
        summary += f"; where refinement gained, the gate keeps {pct(float(np.mean(kept)))} of the gain on average"
    if new_harm:
        summary += f"; gated refinement makes things worse on {', '.join(new_harm)}, where ungated it did not"
    out.append(summary + ".")
    return out

