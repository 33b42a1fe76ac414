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
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["NOISE_PERSONS", "seed_stat", "spread", "resolution", "judge", "compare"]

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
