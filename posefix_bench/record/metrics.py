"""Per-ablation metrics (``metrics.json``): the runs of one ablation aggregated over its seeds.

For every source: AP before (the input does not depend on the refiner's seed) and after, the AP delta, every COCO
metric, class counts, and the Ronchi & Perona fixed/broken transitions (:func:`posefix_bench.evaluation.diagnosis.
transitions`) overall, per confidence bin and per body-part group, and the lower-body-occluded subset; each
quantity that varies with the seed is a seed stat (:func:`~posefix_bench.record.stats.seed_stat`). Beside each
delta (all persons, occluded subset, confidence bins) the paired bootstrap's 95% interval over validation images
(``ci95`` of the seed mean, ``ci95_per_seed``; :mod:`posefix_bench.record.intervals`). Plus the training times and
the refiner's FPS record.

The default ablation's record also holds a ``gate`` section (:func:`gate_metrics`): per source the AP delta of the
ungated and of the gated reading of the same refinement pass, the accepted share and the share of the gain the
gate kept; every other number of every ablation is ungated.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from posefix_bench.codecs.taxonomy import ERROR_TYPES
from posefix_bench.evaluation.coco_eval import METRIC_KEYS
from posefix_bench.record.intervals import PARTS, overall_interval, source_intervals
from posefix_bench.record.stats import seed_stat

__all__ = ["METRICS_FORMAT", "FIXABLE", "ap_value", "best_fps", "ablation_metrics", "baseline_metrics", "gate_metrics",
           "method_metrics", "overall_delta", "mean_over_sources", "gain_kept", "bootstrap_cost"]

METRICS_FORMAT = "posefix-bench/bench-metrics/v1"
FIXABLE = ERROR_TYPES[1:]  # the error types a refiner can fix (absent keypoints stay absent)
TRAIN_KEYS = ("iterations", "trained_iterations", "resumed_from", "seconds", "wall_seconds", "samples_per_s",
              "final_loss", "world_size", "precision")


def ap_value(metrics: Mapping | None, key: str = "AP") -> float | None:
    """A COCO metric, None where undefined (pycocotools writes -1)."""
    v = None if metrics is None else metrics.get(key)
    return None if v is None or v < 0 else float(v)


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _rate(num: float, den: float) -> float | None:
    return num / den if den else None


def _fix_break_stats(recs: Mapping[int, dict]) -> dict:
    """Seed stats of transition records ({seed: diagnosis ``_fix_break`` record}): fixed per error type, pooled
    fixed over the fixable types, broken."""
    fixed = {t: {"input": seed_stat({s: r["fixed"][t]["input"] for s, r in recs.items()}),
                 "fixed": seed_stat({s: r["fixed"][t]["fixed"] for s, r in recs.items()}),
                 "rate": seed_stat({s: r["fixed"][t]["rate"] for s, r in recs.items()})} for t in FIXABLE}
    errors = {s: sum(r["fixed"][t]["input"] for t in FIXABLE) for s, r in recs.items()}
    pooled = {s: _rate(sum(r["fixed"][t]["fixed"] for t in FIXABLE), errors[s]) for s, r in recs.items()}
    return {
        "fixed": fixed,
        "errors": seed_stat(errors),
        "fixed_rate": seed_stat(pooled),
        "broken": {"input": seed_stat({s: r["broken"]["input"] for s, r in recs.items()}),
                   "broken": seed_stat({s: r["broken"]["broken"] for s, r in recs.items()}),
                   "rate": seed_stat({s: r["broken"]["rate"] for s, r in recs.items()})},
    }


def _occluded_metrics(runs: Mapping[int, object]) -> dict | None:
    occ = {s: r.occluded for s, r in runs.items() if r.occluded}
    if not occ:
        return None
    first = occ[min(occ)]
    out = {"persons": first["persons"], "ap_before": first.get("ap_before"),
           "ap_after": seed_stat({s: o.get("ap_after") for s, o in occ.items()}),
           "delta": seed_stat({s: _delta(o.get("ap_before"), o.get("ap_after")) for s, o in occ.items()})}
    for key in ("lower_keypoints", "lower_good_before", "lower_ks_before"):
        out[key] = first.get(key)
    for key in ("lower_good_after", "lower_fixed", "lower_broken", "lower_ks_after"):
        out[key] = seed_stat({s: o.get(key) for s, o in occ.items()})
    if first.get("split"):  # the dedicated occluded split (issue 27): its size and its confidence-bin transitions
        out.update(split=first["split"], images=first.get("images"))
        if all(o.get("per_confidence") for o in occ.values()):
            out["per_confidence"] = {b: _bin_stats({s: o["per_confidence"][b] for s, o in occ.items()})
                                     for b in first["per_confidence"]}
    return out


def _bin_stats(recs: Mapping[int, dict]) -> dict:
    """:func:`_fix_break_stats` of one confidence bin plus all fixed keypoints and net fixed (fixed - broken)."""
    out = _fix_break_stats(recs)
    out["fixed_total"] = seed_stat({s: r["fixed_total"] for s, r in recs.items()})
    out["net_fixed"] = seed_stat({s: r["net_fixed"] for s, r in recs.items()})
    return out


def _source_metrics(runs: Mapping[int, object], samples: Mapping[int, object] | None = None) -> dict:
    """Aggregate one source's runs ({seed: Run}) over the seeds; ``samples`` ({seed: the run's bootstrap samples})
    give the intervals of the seed means (:mod:`posefix_bench.record.intervals`)."""
    first = runs[min(runs)]
    ci = source_intervals(runs, samples)
    per_conf = {b: _bin_stats({s: r.per_confidence[b] for s, r in runs.items()}) for b in (first.per_confidence or {})}
    for b, rec in per_conf.items():
        rec["counts_ci95"] = (ci["per_confidence"] or {}).get(b)  # fixed, broken, net keypoints (seed means)
    occluded = _occluded_metrics(runs)
    if occluded is not None:
        occ_bins = ci["occluded"].pop("per_confidence")
        occluded.update(ci["occluded"])
        for b, rec in (occluded.get("per_confidence") or {}).items():
            rec["counts_ci95"] = (occ_bins or {}).get(b)
    return {
        "ap_before": ap_value(first.ap_before),
        "ap_after": seed_stat({s: ap_value(r.ap_after) for s, r in runs.items()}),
        "delta": seed_stat({s: _delta(ap_value(r.ap_before), ap_value(r.ap_after)) for s, r in runs.items()}),
        **ci["all"],
        "metrics_before": {k: ap_value(first.ap_before, k) for k in METRIC_KEYS},
        "metrics_after": {k: seed_stat({s: ap_value(r.ap_after, k) for s, r in runs.items()}) for k in METRIC_KEYS},
        "counts_before": first.counts_before,
        "counts_after": {c: seed_stat({s: (r.counts_after or {}).get(c) for s, r in runs.items()})
                         for c in (first.counts_after or {})},
        **_fix_break_stats({s: {"fixed": r.fixed, "broken": r.broken} for s, r in runs.items()}),
        "per_confidence": per_conf,
        "per_group": {g: _fix_break_stats({s: r.per_group[g] for s, r in runs.items()})
                      for g in (first.per_group or {})},
        "occluded": occluded,
        "untrained": any(bool(r.untrained) for r in runs.values()),
        "refine_precision": sorted({r.refine_precision for r in runs.values() if r.refine_precision}),
    }


def _train_metrics(runs_by_seed: Mapping[int, object]) -> dict:
    per_seed = {str(seed): {k: (run.train or {}).get(k) for k in TRAIN_KEYS} for seed, run in runs_by_seed.items()}
    return {"per_seed": per_seed,
            "seconds": seed_stat({int(s): t["seconds"] for s, t in per_seed.items()}),
            "samples_per_s": seed_stat({int(s): t["samples_per_s"] for s, t in per_seed.items()})}


def best_fps(fps: Mapping | None) -> dict | None:
    """The FPS row with the most samples/s (None without measured rows)."""
    rows = [r for r in (fps or {}).get("rows", []) if r.get("samples_per_s")]
    return max(rows, key=lambda r: r["samples_per_s"]) if rows else None


def gain_kept(ungated: Mapping | None, gated: Mapping | None) -> float | None:
    """The share of the ungated AP gain the gate kept: gated / ungated seed-mean delta, None unless the ungated mean
    is a gain (positive)."""
    if ungated is None or gated is None or ungated["mean"] is None or gated["mean"] is None:
        return None
    return float(gated["mean"] / ungated["mean"]) if ungated["mean"] > 0 else None


def _share_stats(runs: Mapping[int, object], key: str) -> dict:
    """{bin or joint: seed stat of its accepted share} of the runs' gated readings."""
    first = getattr(runs[min(runs)].gate, key)
    return {b: seed_stat({s: getattr(r.gate, key)[b]["accepted_share"] for s, r in runs.items()}) for b in first}


def _cis(boots: Mapping[int, dict | None]) -> dict | None:
    """{seed: 95% interval of the AP delta} from each run's bootstrap record (None unless every run has one)."""
    out = {str(s): (b or {}).get("all", {}).get("ci95") for s, b in boots.items()}
    return out if out and all(v is not None for v in out.values()) else None


def _gate_source(runs: Mapping[int, object]) -> dict:
    """One source's gate metrics over the seeds ({seed: Run with its gated reading})."""
    first = runs[min(runs)]
    before = ap_value(first.ap_before)
    ungated = seed_stat({s: _delta(ap_value(r.ap_before), ap_value(r.ap_after)) for s, r in runs.items()})
    gated = seed_stat({s: _delta(ap_value(r.ap_before), ap_value(r.gate.ap_after)) for s, r in runs.items()})
    return {
        "ap_before": before,
        "ap_after_ungated": seed_stat({s: ap_value(r.ap_after) for s, r in runs.items()}),
        "ap_after_gated": seed_stat({s: ap_value(r.gate.ap_after) for s, r in runs.items()}),
        "delta_ungated": ungated,
        "delta_gated": gated,
        "ci95_ungated_per_seed": _cis({s: r.bootstrap for s, r in runs.items()}),
        "ci95_gated_per_seed": _cis({s: r.gate.bootstrap for s, r in runs.items()}),
        "gain_kept": gain_kept(ungated, gated),
        "accepted_share": seed_stat({s: r.gate.accepted_share for s, r in runs.items()}),
        "per_confidence": _share_stats(runs, "per_confidence"),
        "per_keypoint": _share_stats(runs, "per_keypoint"),
        "outcomes": {k: seed_stat({s: r.gate.outcomes.get(k) for s, r in runs.items()})
                     for k in first.gate.outcomes if k != "accepted_share"},
    }


def gate_metrics(gate, runs: Sequence, sources: Sequence[str]) -> dict:
    """The default ablation's ``gate`` section: its state (``calibrated`` / ``off`` and why), each seed's
    calibration, and per source (calibrated only) the ungated and gated AP delta, the accepted share (overall, per
    input-confidence bin, per joint), the share of the gain kept and the fix / break outcomes, as seed stats.
    ``gate`` is the ablation's :class:`~posefix_bench.record.schema.GateInfo`, ``runs`` its runs."""
    out = {"state": gate.state, "reason": gate.reason, "calibrations": dict(gate.calibrations), "sources": {},
           "note": ("gated and ungated are two readings of one refinement pass of this ablation; the other "
                    "ablations are ungated, and every other number of this record is the ungated reading")}
    if gate.state != "calibrated":
        return out
    by_source: dict[str, dict[int, object]] = {}
    for r in runs:
        by_source.setdefault(r.source, {})[int(r.seed)] = r
    out["sources"] = {n: _gate_source(by_source[n]) for n in sources}
    return out


def bootstrap_cost(runs: Sequence) -> dict | None:
    """The paired bootstrap's settings and its cost over ``runs`` (seconds of the analyses' bootstraps, summed over
    the runs: worker time inside the analysis steps); None when no run has one."""
    boots = [r.bootstrap for r in runs if getattr(r, "bootstrap", None)]
    if not boots:
        return None
    return {"resamples": boots[0]["resamples"], "seed": boots[0]["seed"], "runs": len(boots),
            "seconds": float(sum(b.get("seconds") or 0.0 for b in boots))}


def ablation_metrics(*, profile: str, name: str, config: str, seeds: Sequence[int], tags: Sequence[str],
                     default: bool, factors: Mapping, model: Mapping, mix: str, runs: Sequence, sources: Sequence[str],
                     fps: Mapping | None, learning_curve: list | None = None, gate=None,
                     samples: Mapping[str, Mapping[int, object]] | None = None,
                     occluded_sources: Sequence[str] | None = None) -> dict:
    """The per-ablation record (``metrics.json``): factors, training, per source the AP before/after and delta,
    fixed/broken per error type, confidence bins, body-part groups and occluded subset, each as seed stats, and
    the FPS record. ``runs`` are the ablation's :class:`~posefix_bench.record.schema.Run` records;
    ``learning_curve`` ([{iterations, ap: {source: AP}, per_seed}], the runner's) is kept as it is; ``gate`` (the
    default ablation's :class:`~posefix_bench.record.schema.GateInfo`) adds the ``gate`` section
    (:func:`gate_metrics`; None for the ungated ablations). ``samples`` ({source: {seed: bootstrap samples}}, the
    runner's) give each delta its ``ci95`` (seed mean) beside ``ci95_per_seed`` (each run's own), and
    ``overall_ci95`` (the delta averaged over the sources, as :func:`overall_delta`); ``paired`` (comparisons with
    other ablations on the same draws) is the runner's to fill, ``bootstrap`` the bootstrap's settings and cost;
    ``occluded_sources``: the sources of a dedicated occluded split, which the occluded mean is over."""
    by_source: dict[str, dict[int, object]] = {}
    for r in runs:
        by_source.setdefault(r.source, {})[int(r.seed)] = r
    samples = samples or {}
    per_source = {n: _source_metrics(by_source[n], samples.get(n)) for n in sources}
    have = {n: samples[n] for n in sources if n in samples}
    return {
        "format": METRICS_FORMAT,
        "profile": profile,
        "ablation": name,
        "config": config,
        "seeds": list(seeds),
        "tags": list(tags),
        "default": bool(default),
        "factors": dict(factors),
        "model": dict(model),
        "mix": mix,
        "untrained": any(s["untrained"] for s in per_source.values()),
        "train": _train_metrics(by_source[sources[0]]),
        "sources": per_source,
        "fps": fps,
        "fps_best": best_fps(fps),
        "learning_curve": learning_curve,
        "gate": None if gate is None else gate_metrics(gate, runs, sources),
        "overall_ci95": {"all": overall_interval(have) if len(have) == len(sources) else None,
                         "occluded": overall_interval({n: have[n] for n in (occluded_sources or sources) if n in have},
                                                      "occluded")},
        "paired": {},
        "bootstrap": bootstrap_cost(runs),
    }


def baseline_metrics(*, profile: str, name: str, source: str, method: str, card: str, run, throughput: Mapping | None,
                     samples: object | None = None) -> dict:
    """The ``metrics.json`` of a free baseline: an mmpose source with a test-time post-processing ``method`` (flip
    test, DARK) judged like a refiner against the same source's plain output. ``run`` is the
    :class:`~posefix_bench.record.schema.Run` of (plain, with method); ``throughput`` the source's
    :func:`~posefix_bench.sources.post_processing.post_processing_throughput` record (samples/s per method)."""
    speed = None
    if throughput:
        methods = throughput.get("methods", {})
        speed = {"plain_samples_per_s": (methods.get("plain") or {}).get("samples_per_s"),
                 "samples_per_s": (methods.get(method) or {}).get("samples_per_s"),
                 "relative_speed": (methods.get(method) or {}).get("relative_speed"),
                 "persons": throughput.get("persons"), "threads": throughput.get("threads"),
                 "untrained": throughput.get("untrained")}
    per_source = {source: _source_metrics({int(run.seed): run}, {int(run.seed): samples} if samples else None)}
    return {
        "format": METRICS_FORMAT,
        "kind": "free-baseline",
        "profile": profile,
        "ablation": name,
        "factors": {"method": method, "source": source, "card": card},
        "untrained": per_source[source]["untrained"],
        "sources": per_source,
        "speed": speed,
        "bootstrap": bootstrap_cost([run]),
    }


def method_metrics(*, profile: str, name: str, type: str, options: Mapping, runs: Sequence, speed: Mapping
                   ) -> dict:
    """The ``metrics.json`` of a refinement method (:mod:`posefix_bench.methods`): per source the same numbers as an
    ablation's (AP before, after and delta, fixed / broken per error type, confidence bins, body-part groups,
    occluded subset; one run, so seed stats of one value), the per-keypoint diagnosis before and after, and the
    method's own samples/s on that source's validation persons. ``runs``: one
    :class:`~posefix_bench.record.schema.Run` per source; ``speed``: {source: {"seconds", "persons",
    "samples_per_s"}}."""
    per_source = {}
    for r in runs:
        rec = _source_metrics({int(r.seed): r})
        rec["per_keypoint"] = {"before": r.per_keypoint_before, "after": r.per_keypoint_after}
        rec.update({k: (speed.get(r.source) or {}).get(k) for k in ("samples_per_s", "seconds", "persons")})
        per_source[r.source] = rec
    return {
        "format": METRICS_FORMAT,
        "kind": "method",
        "profile": profile,
        "method": name,
        "type": type,
        "options": dict(options),
        "untrained": any(s["untrained"] for s in per_source.values()),
        "sources": per_source,
    }


def overall_delta(summary: Mapping, sources: Sequence[str], subset: str | None = None) -> dict | None:
    """Seed stat of the AP delta averaged over the sources (per seed); ``subset='occluded'`` uses the occluded
    subset's delta (None where it does not exist)."""
    per_seed: dict[int, list] = {}
    for name in sources:
        rec = summary["sources"][name]
        st = (rec.get("occluded") or {}).get("delta") if subset == "occluded" else rec["delta"]
        if st is None:
            return None
        for seed, v in st["per_seed"].items():
            per_seed.setdefault(int(seed), []).append(v)
    return seed_stat({s: float(np.mean(v)) for s, v in per_seed.items() if len(v) == len(sources)})


def mean_over_sources(summary: Mapping, sources: Sequence[str], key: str) -> float | None:
    """Mean over the sources of a per-source seed stat's mean (None where no source has it)."""
    vals = [summary["sources"][n][key]["mean"] for n in sources if summary["sources"][n].get(key)]
    return float(np.mean(vals)) if vals else None
