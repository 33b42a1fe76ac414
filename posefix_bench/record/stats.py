"""Statistics over training seeds and the fixed rules that judge them.

A *stat* is the JSON record ``{"mean", "min", "max", "n", "per_seed"}`` of one quantity over the seeds an ablation was
trained with (:func:`seed_stat`). The rules (the index's "How to read this" states them in words):

- :func:`judge`: a change is a gain (makes things worse) when it is positive (negative) on every seed and its mean
  exceeds the *resolution* of the validation set; below the resolution it makes no difference; seeds that disagree
  on the sign make it unclear.
- :func:`compare`: two stats are tied when their means differ by no more than the *noise bound*, the larger of
  their seed spreads (max - min) and the resolution.
- :func:`resolution`: the AP that :data:`NOISE_PERSONS` persons switching from matched to unmatched would move
  (``NOISE_PERSONS / persons``).

Where a record carries bootstrap intervals (issue 27: the paired bootstrap over validation images,
:mod:`posefix_bench.evaluation.bootstrap`), they replace the resolution heuristic, which stays for old records only:

- :func:`judge_ci`: a change is a gain (makes things worse) when its 95% interval excludes 0 on every seed, above
  (below) it; no difference when every seed's interval contains 0; unclear when the seeds' intervals disagree.
- :func:`compare_ci`: two results are tied when the interval of their difference (on the same draws) contains 0.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["NOISE_PERSONS", "seed_stat", "spread", "resolution", "judge", "compare", "judge_ci", "compare_ci",
           "contains_zero"]

# A change of AP smaller than what this many persons switching from fully matched to unmatched would cause
# (NOISE_PERSONS / number of evaluated persons) is below the resolution of the validation set.
NOISE_PERSONS = 3


def seed_stat(values: Mapping[int, float | None]) -> dict | None:
    """{seed: value} -> {"mean", "min", "max", "n", "per_seed"} over the values that are not None (None if none)."""
    vals = {int(s): float(v) for s, v in values.items() if v is not None}
    if not vals:
        return None
    arr = np.asarray(list(vals.values()), dtype=np.float64)
    return {"mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max()), "n": len(vals),
            "per_seed": {str(s): v for s, v in vals.items()}}


def spread(stat: Mapping | None) -> float:
    """max - min over the seeds (0 for None or one seed)."""
    return 0.0 if stat is None else stat["max"] - stat["min"]


def resolution(persons: int) -> float:
    """The AP resolution of a validation set of ``persons`` evaluated persons."""
    return NOISE_PERSONS / max(1, int(persons))


def judge(stat: Mapping | None, res: float) -> str:
    """'gain', 'worse', 'no difference' (|mean| below the resolution), 'unclear' (seeds disagree on the sign) or
    'n/a' for a change over seeds (:func:`seed_stat`)."""
    if stat is None:
        return "n/a"
    if abs(stat["mean"]) < res:
        return "no difference"
    if stat["min"] > 0:
        return "gain"
    if stat["max"] < 0:
        return "worse"
    return "unclear"


def compare(a: Mapping, b: Mapping, res: float) -> dict:
    """How ``a`` relates to ``b`` (seed stats of the same quantity): ``diff`` = mean a - mean b, ``bound`` = the noise
    bound max(seed spreads, resolution), ``state`` 'ahead' | 'behind' | 'tied', ``single`` when neither has a
    seed spread (one seed each)."""
    diff = a["mean"] - b["mean"]
    sp = max(spread(a), spread(b))
    bound = max(sp, res)
    state = "tied" if abs(diff) <= bound else ("ahead" if diff > 0 else "behind")
    return {"diff": diff, "spread": sp, "bound": bound, "state": state, "single": a["n"] == 1 and b["n"] == 1}


def contains_zero(ci) -> bool:
    """Whether an interval [lo, hi] contains 0."""
    return ci[0] <= 0.0 <= ci[1]


def judge_ci(per_seed: Mapping | None) -> str | None:
    """'gain', 'worse', 'no difference' or 'unclear' from each seed's 95% interval of a change ({seed: [lo, hi]}):
    gain (worse) when every seed's interval lies above (below) 0, no difference when every one contains 0, unclear
    otherwise; None without intervals (an old record: judge by :func:`judge`)."""
    cis = [ci for ci in (per_seed or {}).values() if ci is not None]
    if not cis or len(cis) != len(per_seed):
        return None
    if all(ci[0] > 0 for ci in cis):
        return "gain"
    if all(ci[1] < 0 for ci in cis):
        return "worse"
    if all(contains_zero(ci) for ci in cis):
        return "no difference"
    return "unclear"


def compare_ci(diff: float, ci) -> str:
    """'tied' when the interval of a difference a - b contains 0, else 'ahead' (a above b) or 'behind'."""
    if contains_zero(ci):
        return "tied"
    return "ahead" if diff > 0 else "behind"
