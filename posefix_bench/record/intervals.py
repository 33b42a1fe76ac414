"""Bootstrap intervals of the per-ablation metrics: seed means, means over sources and paired comparisons.

Every refinement analysis of a bench run draws the same validation images (the same images, number of draws and seed
give the same draws: :func:`posefix_bench.evaluation.bootstrap.resample_counts`), so the samples of different runs
(``bootstrap.npz`` of each analysis: :func:`posefix_bench.evaluation.pair.pair_bootstrap`) line up draw by draw. A
quantity built from several runs (the mean over seeds of an AP delta, the mean over sources, the difference between
two ablations' refined AP on one source) is computed on each draw from the runs' values on that draw, and its 95%
interval read from those values (the paired bootstrap: Koehn, EMNLP 2004; the percentile interval: Efron &
Tibshirani 1993, ch. 13). Nothing here reads a file: the runner loads the samples.

``samples`` arguments are one analysis' arrays (``{"all_before", "all_after", "all_image_ids", "all_ap_before",
..., "fixed", "broken", "resamples", "seed"}``) or None where a run has none (an old record, no bootstrap).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from posefix_bench.evaluation.bootstrap import interval

__all__ = ["PARTS", "same_draws", "delta_interval", "source_intervals", "overall_interval", "comparison",
           "confidence_comparison", "paired_comparisons", "baseline_comparisons", "method_comparisons"]

PARTS = ("all", "occluded")
Samples = Mapping[str, np.ndarray]


def same_draws(samples: Sequence[Samples | None], part: str = "all") -> bool:
    """Whether every run has samples of ``part`` on the same draws (same images, number of draws and seed)."""
    if not samples or any(s is None or f"{part}_after" not in s for s in samples):
        return False
    first = samples[0]
    return all(np.array_equal(s[f"{part}_image_ids"], first[f"{part}_image_ids"])
               and int(s["resamples"]) == int(first["resamples"]) and int(s["seed"]) == int(first["seed"])
               for s in samples)


def _delta(s: Samples, part: str) -> np.ndarray:
    return np.asarray(s[f"{part}_after"]) - np.asarray(s[f"{part}_before"])


def delta_interval(by_seed: Mapping[int, Samples | None], part: str = "all") -> list | None:
    """The interval of the seed-mean AP delta (refined - input) of ``part`` (None without samples on shared draws)."""
    runs = list(by_seed.values())
    if not same_draws(runs, part):
        return None
    return interval(np.mean([_delta(s, part) for s in runs], axis=0))


def _per_seed(runs: Mapping[int, object], part: str) -> dict | None:
    """{seed: the run's own interval of its delta} from the runs' bootstrap records (None where a run has none)."""
    out = {}
    for seed, r in runs.items():
        boot = getattr(r, "bootstrap", None) or {}
        rec = boot.get(part)
        if not rec or rec.get("ci95") is None:
            return None
        out[str(seed)] = rec["ci95"]
    return out


def source_intervals(runs: Mapping[int, object], samples: Mapping[int, Samples | None] | None) -> dict:
    """One source's intervals over the seeds: ``ci95`` (of the seed-mean delta; with one seed, that seed's) and
    ``ci95_per_seed`` for ``all`` and ``occluded``, and per input-confidence bin the intervals of the seed-mean
    fixed, broken and net (fixed - broken) keypoints. ``runs``: {seed: Run}; ``samples``: {seed: samples}."""
    out: dict = {}
    for part in PARTS:
        per_seed = _per_seed(runs, part)
        ci = delta_interval(samples, part) if samples else None
        if ci is None and per_seed is not None and len(per_seed) == 1:
            ci = next(iter(per_seed.values()))
        out[part] = {"ci95": ci, "ci95_per_seed": per_seed}
    first = next(iter(runs.values()))
    labels = list(((getattr(first, "bootstrap", None) or {}).get("per_confidence") or {}))
    out["per_confidence"] = _bin_intervals(samples, labels, "", "all")
    out["occluded"]["per_confidence"] = _bin_intervals(samples, labels, "occluded_", "occluded")
    return out


def _bin_intervals(samples, labels, prefix: str, part: str) -> dict | None:
    """{bin: {"fixed", "broken", "net"}} intervals of the seed-mean counts (``prefix`` "occluded_": the dedicated
    occluded split's, where the samples have them)."""
    runs = list((samples or {}).values())
    if not labels or not same_draws(runs, part) or any(f"{prefix}fixed" not in s for s in runs):
        return None
    fixed = np.mean([s[f"{prefix}fixed"] for s in runs], axis=0)  # (B, bins)
    broken = np.mean([s[f"{prefix}broken"] for s in runs], axis=0)
    if fixed.shape[1] != len(labels):
        return None
    return {lab: {"fixed": interval(fixed[:, i]), "broken": interval(broken[:, i]),
                  "net": interval(fixed[:, i] - broken[:, i])} for i, lab in enumerate(labels)}


def overall_interval(samples: Mapping[str, Mapping[int, Samples | None]], part: str = "all") -> list | None:
    """The interval of the AP delta averaged over the seeds and then the sources ({source: {seed: samples}}; the
    sources share the validation images, so their draws line up too), as
    :func:`posefix_bench.record.metrics.overall_delta` averages it."""
    if not samples:
        return None
    means = []
    for by_seed in samples.values():
        runs = list(by_seed.values())
        if not same_draws(runs, part):
            return None
        means.append(np.mean([_delta(s, part) for s in runs], axis=0))
    if not same_draws([next(iter(b.values())) for b in samples.values()], part):
        return None
    return interval(np.mean(means, axis=0))


def comparison(a: Mapping[str, Mapping[int, Samples | None]], b: Mapping[str, Mapping[int, Samples | None]],
               part: str = "all") -> dict | None:
    """Ablation (or method) ``a`` against ``b`` on the same sources and draws: the refined AP of ``a`` minus that of
    ``b`` (each averaged over its seeds) per source and averaged over the sources, with its interval, and per seed
    both share the interval of that seed's difference. ``a``, ``b``: {source: {seed: samples}}. Returns
    ``{"sources": {source: {"delta", "ci95", "ci95_per_seed"}}, "overall": {"delta", "ci95"}}`` (sources without
    samples on shared draws left out; ``overall`` None unless every source is in and all share the draws) or None
    where no source is."""
    sources = [n for n in a if n in b]
    out, draws, values = {}, [], []
    for n in sources:
        runs = list(a[n].values()) + list(b[n].values())
        if not same_draws(runs, part):
            continue
        mean_a = np.mean([np.asarray(s[f"{part}_after"]) for s in a[n].values()], axis=0)
        mean_b = np.mean([np.asarray(s[f"{part}_after"]) for s in b[n].values()], axis=0)
        point = (float(np.mean([float(s[f"{part}_ap_after"]) for s in a[n].values()]))
                 - float(np.mean([float(s[f"{part}_ap_after"]) for s in b[n].values()])))
        common = sorted(set(a[n]) & set(b[n]))
        per_seed = {str(seed): interval(np.asarray(a[n][seed][f"{part}_after"])
                                        - np.asarray(b[n][seed][f"{part}_after"])) for seed in common}
        out[n] = {"delta": point if np.isfinite(point) else None, "ci95": interval(mean_a - mean_b),
                  "ci95_per_seed": per_seed}
        draws.append(mean_a - mean_b)
        values.append(point)
    if not out:
        return None
    if len(out) != len(sources) or not same_draws([next(iter(a[n].values())) for n in out], part):
        return {"sources": out, "overall": None}  # sources on different draws (a dedicated split for some)
    overall = float(np.mean(values))
    return {"sources": out, "overall": {"delta": overall if np.isfinite(overall) else None,
                                        "ci95": interval(np.mean(draws, axis=0))}}


def confidence_comparison(a: Mapping[str, Mapping[int, Samples | None]], b: Mapping[str, Mapping[int, Samples | None]],
                          labels: Sequence[str], prefix: str = "") -> dict | None:
    """Per source and input-confidence bin, ``a`` against ``b`` in fixed, broken and net (fixed - broken) keypoints
    (each averaged over its seeds): ``{source: {bin label: {"fixed" | "broken" | "net": {"delta", "ci95"}}}}`` on
    shared draws; None where samples are missing or not on shared draws. ``prefix`` "occluded_": the counts of the
    dedicated occluded split (its draws)."""
    out = {}
    part = "occluded" if prefix else "all"
    for n in [n for n in a if n in b]:
        runs = list(a[n].values()) + list(b[n].values())
        if not same_draws(runs, part) or any(f"{prefix}fixed_identity" not in s for s in runs):
            continue
        rec = {}
        for what, get in (("fixed", lambda s, k: s[prefix + k.format("fixed")]),
                          ("broken", lambda s, k: s[prefix + k.format("broken")]),
                          ("net", lambda s, k: s[prefix + k.format("fixed")] - s[prefix + k.format("broken")])):
            draws = (np.mean([get(s, "{}") for s in a[n].values()], axis=0)
                     - np.mean([get(s, "{}") for s in b[n].values()], axis=0))  # (B, bins)
            point = (np.mean([get(s, "{}_identity") for s in a[n].values()], axis=0)
                     - np.mean([get(s, "{}_identity") for s in b[n].values()], axis=0))  # (bins,)
            rec[what] = [{"delta": float(point[i]), "ci95": interval(draws[:, i])} for i in range(len(labels))]
        out[n] = {lab: {what: rec[what][i] for what in rec} for i, lab in enumerate(labels)}
    return out or None


def paired_comparisons(ablations: Sequence, comparisons, samples: dict, occluded_sources: Sequence | None = None
                       ) -> None:
    """Fill each ablation's ``metrics["paired"]``: for every other ablation that shares a comparison's tag with it,
    the refined AP difference per source and over the sources with its interval on shared draws
    (:func:`posefix_bench.record.intervals.comparison`; ``all`` persons, and ``occluded`` where the comparison is
    on that subset; ``occluded_sources``: the sources of a dedicated occluded split, the only ones its occluded
    comparison is over)."""
    for c in comparisons:
        members = [a for a in ablations if c.get("tag") in a.tags]
        parts = ["all"] + (["occluded"] if c.get("subset") == "occluded" else [])
        for a in members:
            for b in members:
                if a is b:
                    continue
                sa, sb = samples.get(a.name) or {}, samples.get(b.name) or {}
                entry = a.metrics["paired"].setdefault(b.name, {})
                keep = (lambda s: {n: v for n, v in s.items() if n in occluded_sources}) if occluded_sources else dict
                entry.update({part: comparison(*((sa, sb) if part == "all" else (keep(sa), keep(sb))), part)
                              for part in parts if part not in entry})
                labels = _bin_labels(a)
                if c.get("subset") == "occluded" and labels and "per_confidence" not in entry:  # the lower-body
                    entry["per_confidence"] = confidence_comparison(sa, sb, labels)  # question: confidence bins
                    entry["occluded_per_confidence"] = confidence_comparison(
                        sa, sb, labels, "occluded_")  # on the dedicated occluded split, where there is one


def _bin_labels(ablation) -> list:
    """The input-confidence bins of an ablation's bootstrap records (its first run's)."""
    boot = next((r.bootstrap for r in ablation.runs if getattr(r, "bootstrap", None)), None) or {}
    return list(boot.get("per_confidence") or {})


def baseline_comparisons(baselines: Sequence, default: str | None, samples: dict, own: dict) -> None:
    """Fill each free baseline's ``metrics["paired"]`` with the default refiner on its source: the method's AP
    minus the refiner's on shared draws (``samples``: {ablation: {source: {seed: samples}}}, ``own``: {baseline:
    {source: {seed: samples}}})."""
    for b in baselines:
        mine, theirs = (own.get(b.name) or {}).get(b.source), (samples.get(default) or {}).get(b.source)
        if default and mine and theirs:
            b.metrics["paired"] = {default: {"all": comparison({b.source: mine}, {b.source: theirs})}}


def method_comparisons(methods: Sequence, samples: dict) -> None:
    """Fill each refinement method's ``metrics["paired"]`` with every other method of the profile: its refined AP
    minus the other's per source on shared draws (:func:`comparison`; ``samples``: {method: {source: {seed:
    samples}}}), so that "posefix beats re-estimate" is read from the interval of their difference (issue 26)."""
    for m in methods:
        mine = samples.get(m.name) or {}
        m.metrics["paired"] = {o.name: comparison(mine, samples.get(o.name) or {}) for o in methods
                               if o is not m and mine and samples.get(o.name)}
