"""The bench reports: a profile run's record (``bench.json``) as Markdown, per-ablation metrics and PNG plots.

Layout written by :func:`write_reports` (issue 9, item 3)::

    <out>/index.md                     all ablations side by side, the comparisons in words, sources, speed
    <out>/*.png                        index plots (AP delta per source, fixed/broken per error type, speed vs gain,
                                       measured error profiles)
    <out>/<ablation>/report.md         one ablation: verdict, AP before/after, error types, occluded subset,
                                       confidence bins, diagnosis plots, crop panel, speed, how to reproduce
    <out>/<ablation>/metrics.json      its numbers, aggregated over seeds and per seed
    <out>/<ablation>/*.png             its plots

Pure presentation: the numbers come from the record of :mod:`posefix_bench.bench.runner` (COCO AP, the Ronchi &
Perona diagnosis with fixed/broken transitions, the occluded subset, FPS), plus the files it points to (the seed-0
diagnosis of each source, results and refined results and their images for the crop panel, measured error profiles).
Every sentence that judges a result is generated from the numbers with fixed rules (see :data:`HOW_TO_READ`): a
change is called a gain or "makes things worse" only when every seed agrees on its sign and it exceeds the
*resolution* of the validation set (:data:`NOISE_PERSONS` persons' worth of AP), and two ablations are called tied
when their means differ by less than the larger seed spread (min..max of the per-seed values). Untrained weights are
marked UNTRAINED wherever they appear.

Everything is read and checked before the first file is written; every file is written atomically
(:mod:`posefix_bench.structures.io`).
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from posefix_bench.codecs.taxonomy import ERROR_TYPES
from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.coco_eval import METRIC_KEYS
from posefix_bench.reporting.bench_plots import CROP_COLOR_NAMES, FIXABLE
from posefix_bench.reporting.tables import markdown_table
from posefix_bench.structures.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

__all__ = [
    "BENCH_FORMAT", "METRICS_FORMAT", "NOISE_PERSONS", "HOW_TO_READ", "check_record", "seed_stat", "factors_of",
    "ablation_metrics", "overall_delta", "judge", "compare", "write_reports",
]  # fmt: skip

BENCH_FORMAT = "posefix-bench/bench/v1"
METRICS_FORMAT = "posefix-bench/bench-metrics/v1"
# A change of AP smaller than what this many persons switching from fully matched to unmatched would cause
# (NOISE_PERSONS / number of evaluated persons) is below the resolution of the validation set.
NOISE_PERSONS = 3
SMALL_DATA_PERSONS = 200  # below this many validation persons the index warns that a few AP points are noise
COMPONENT_NAMES = {"prior": "the identity prior", "skip": "the stride-4 skip"}

HOW_TO_READ = (
    "**AP** is COCO keypoint AP (0..1) of the input poses (\"before\") and of the same poses after refinement "
    "(\"after\"); **delta** = after - before in AP units (0.010 = 1 AP point). With several seeds a number is the "
    "seed mean followed by the min..max over seeds in brackets. Keypoints are classified with Ronchi & Perona's "
    "taxonomy (good, jitter, inversion, swap, miss; keypoint similarity KS >= 0.85 on the own joint is good). "
    "**Fixed** is the share of input keypoints of an error type that ended good after refinement; **broken** the "
    "share of good input keypoints that ended in an error type. Transitions count only detections matched to the "
    "same person before and after refinement (detections whose match changed are excluded). Rules of the "
    "sentences: a change is a gain (or makes things worse) when it is positive (negative) on every seed and "
    "larger than the *resolution* {res} of the validation set ({n} persons' worth of AP: {k} / persons); two "
    "ablations are tied when their means differ by no more than the *noise bound*, the larger of their seed "
    "spreads (max - min over seeds) and the resolution. With one seed there is no spread: a single seed cannot "
    "separate two results that differ by less than the resolution, and a larger difference on one seed is "
    "reported as such, without a claim that it repeats."
)


# -- validation ----------------------------------------------------------------------------------------------------
def _need(rec: Mapping, keys: Sequence[str], where: str) -> None:
    if not isinstance(rec, Mapping):
        raise PosefixError(f"{where}: expected a record (JSON object), got {type(rec).__name__}")
    missing = [k for k in keys if k not in rec]
    if missing:
        raise PosefixError(f"{where}: lacks {', '.join(repr(k) for k in missing)}")


def check_record(record: Any) -> None:
    """Check a bench record's structure (format, sources, every ablation's run for every seed and source)."""
    _need(record, ("format", "profile", "data", "sources", "ablations", "environment", "timings"), "bench record")
    where = f"bench record (profile {record['profile']})"
    if record["format"] != BENCH_FORMAT:
        raise PosefixError(f"{where}: format {record['format']!r}, expected {BENCH_FORMAT!r}")
    _need(record["data"], ("description", "val_persons", "val_occluded_persons"), f"{where}: data")
    if not record["sources"] or not record["ablations"]:
        raise PosefixError(f"{where}: no sources or no ablations")
    names = []
    for s in record["sources"]:
        _need(s, ("name", "meta", "results", "gt", "baseline"), f"{where}: source")
        _need(s["baseline"], ("ap", "fractions", "ap_impact", "analysis"), f"{where}: source {s['name']} baseline")
        names.append(s["name"])
    for a in record["ablations"]:
        _need(a, ("name", "seeds", "runs", "model", "mix"), f"{where}: ablation")
        if not a["seeds"]:
            raise PosefixError(f"{where}: ablation {a['name']} has no seeds")
        have = {}
        for r in a["runs"]:
            _need(r, ("seed", "source", "ap_before", "ap_after", "fixed", "broken", "train", "analysis", "results",
                      "refined"), f"{where}: ablation {a['name']} run")
            have[(r["seed"], r["source"])] = r
        for seed in a["seeds"]:
            for name in names:
                if (seed, name) not in have:
                    raise PosefixError(f"{where}: ablation {a['name']} has no run for seed {seed} on source {name}")


# -- aggregation over seeds ----------------------------------------------------------------------------------------
def seed_stat(values: Mapping[int, float | None]) -> dict | None:
    """{seed: value} -> {"mean", "min", "max", "n", "per_seed"} over the values that are not None (None if none)."""
    vals = {int(s): float(v) for s, v in values.items() if v is not None}
    if not vals:
        return None
    arr = np.asarray(list(vals.values()), dtype=np.float64)
    return {"mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max()), "n": len(vals),
            "per_seed": {str(s): v for s, v in vals.items()}}


def _spread(stat: dict | None) -> float:
    return 0.0 if stat is None else stat["max"] - stat["min"]


def _ap(metrics: Mapping | None, key: str = "AP") -> float | None:
    v = None if metrics is None else metrics.get(key)
    return None if v is None or v < 0 else float(v)  # pycocotools writes -1 where a metric is undefined


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


def _occluded_metrics(runs: Mapping[int, dict]) -> dict | None:
    occ = {s: r["occluded"] for s, r in runs.items() if r.get("occluded")}
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
    return out


def _source_metrics(runs: Mapping[int, dict]) -> dict:
    """Aggregate one source's runs ({seed: run record}) over the seeds."""
    first = runs[min(runs)]
    before = _ap(first["ap_before"])
    rec = {
        "ap_before": before,
        "ap_after": seed_stat({s: _ap(r["ap_after"]) for s, r in runs.items()}),
        "delta": seed_stat({s: _delta(_ap(r["ap_before"]), _ap(r["ap_after"])) for s, r in runs.items()}),
        "metrics_before": {k: _ap(first["ap_before"], k) for k in METRIC_KEYS},
        "metrics_after": {k: seed_stat({s: _ap(r["ap_after"], k) for s, r in runs.items()}) for k in METRIC_KEYS},
        "counts_before": first.get("counts_before"),
        "counts_after": {c: seed_stat({s: (r.get("counts_after") or {}).get(c) for s, r in runs.items()})
                         for c in (first.get("counts_after") or {})},
        **_fix_break_stats(runs),
        "per_confidence": {b: _fix_break_stats({s: r["per_confidence"][b] for s, r in runs.items()})
                           for b in (first.get("per_confidence") or {})},
        "per_group": {g: _fix_break_stats({s: r["per_group"][g] for s, r in runs.items()})
                      for g in (first.get("per_group") or {})},
        "occluded": _occluded_metrics(runs),
        "untrained": any(bool(r.get("untrained")) for r in runs.values()),
    }
    return rec


def factors_of(ablation: Mapping, mix_label: str | None = None) -> dict:
    """The factors an ablation sets: backbone, input (H x W, as the ablation names write it), head, mix, lower
    body (from the ``lb-on`` / ``lb-off`` token of its name; "-" when the name carries none)."""
    from posefix_bench.bench.profile import describe

    model = ablation.get("model") or {}
    size = model.get("input_size")
    lb = re.search(r"(?:^|_)lb-(on|off)(?:_|$)", ablation["name"])
    return {"backbone": str(model.get("backbone", "-")), "input": f"{size[1]}x{size[0]}" if size else "-",
            "head": str(model.get("head", "-")), "mix": mix_label or describe(ablation.get("mix")),
            "lower body": lb.group(1) if lb else "-"}


def _train_metrics(runs_by_seed: Mapping[int, dict]) -> dict:
    per_seed = {}
    for seed, run in runs_by_seed.items():
        t = run.get("train") or {}
        per_seed[str(seed)] = {k: t.get(k) for k in ("iterations", "trained_iterations", "resumed_from", "seconds",
                                                      "wall_seconds", "samples_per_s", "final_loss", "world_size")}
    return {"per_seed": per_seed,
            "seconds": seed_stat({int(s): t["seconds"] for s, t in per_seed.items()}),
            "samples_per_s": seed_stat({int(s): t["samples_per_s"] for s, t in per_seed.items()})}


def _best_fps(fps: Mapping | None) -> dict | None:
    rows = [r for r in (fps or {}).get("rows", []) if r.get("samples_per_s")]
    return max(rows, key=lambda r: r["samples_per_s"]) if rows else None


def ablation_metrics(record: Mapping, ablation: Mapping, mix_label: str | None = None) -> dict:
    """The per-ablation record (``metrics.json``): factors, training, per source the AP before/after and delta,
    fixed/broken per error type, confidence bins, body-part groups and occluded subset, each as seed stats
    (:func:`seed_stat`), and the FPS record."""
    runs: dict[str, dict[int, dict]] = {}
    for r in ablation["runs"]:
        runs.setdefault(r["source"], {})[int(r["seed"])] = r
    sources = {s["name"]: _source_metrics(runs[s["name"]]) for s in record["sources"]}
    first_source = record["sources"][0]["name"]
    return {
        "format": METRICS_FORMAT,
        "profile": record["profile"],
        "ablation": ablation["name"],
        "config": ablation.get("config"),
        "seeds": list(ablation["seeds"]),
        "tags": list(ablation.get("tags", ())),
        "default": ablation["name"] == record.get("default_ablation"),
        "factors": factors_of(ablation, mix_label),
        "model": ablation.get("model"),
        "mix": ablation.get("mix"),
        "untrained": any(s["untrained"] for s in sources.values()),
        "train": _train_metrics(runs[first_source]),
        "sources": sources,
        "fps": ablation.get("fps"),
        "fps_best": _best_fps(ablation.get("fps")),
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


# -- judging numbers -----------------------------------------------------------------------------------------------
def judge(stat: Mapping | None, resolution: float) -> str:
    """'gain', 'worse', 'no difference' (|mean| below the resolution), 'unclear' (seeds disagree on the sign) or
    'n/a' for a change over seeds (:func:`seed_stat`)."""
    if stat is None:
        return "n/a"
    if abs(stat["mean"]) < resolution:
        return "no difference"
    if stat["min"] > 0:
        return "gain"
    if stat["max"] < 0:
        return "worse"
    return "unclear"


def compare(a: Mapping, b: Mapping, resolution: float) -> dict:
    """How ``a`` relates to ``b`` (seed stats of the same quantity): ``diff`` = mean a - mean b, ``bound`` = the noise
    bound max(seed spreads, resolution), ``state`` 'ahead' | 'behind' | 'tied', ``single`` when neither has a
    seed spread (one seed each)."""
    diff = a["mean"] - b["mean"]
    spread = max(_spread(a), _spread(b))
    bound = max(spread, resolution)
    state = "tied" if abs(diff) <= bound else ("ahead" if diff > 0 else "behind")
    return {"diff": diff, "spread": spread, "bound": bound, "state": state, "single": a["n"] == 1 and b["n"] == 1}


def _f(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def _num(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _count(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def fmt_stat(stat: Mapping | None, signed: bool = False, pct: bool = False, count: bool = False) -> str:
    """'mean [min..max]' (several seeds) or 'mean' (one seed); AP-like values with 3 decimals (``signed``: with
    a sign), ``pct`` as percentages, ``count`` as counts (a mean of counts may have one decimal)."""
    if stat is None:
        return "-"
    fmt = _pct if pct else (_count if count else (lambda v: _f(v, signed)))
    if stat["n"] == 1:
        return fmt(stat["mean"])
    return f"{fmt(stat['mean'])} [{fmt(stat['min'])}..{fmt(stat['max'])}]"


def _seeds_text(stat: Mapping) -> str:
    return "one seed" if stat["n"] == 1 else f"{stat['n']} seeds"


def relation_sentence(a_label: str, a: Mapping, b_label: str, b: Mapping, resolution: float) -> str:
    """One sentence on how ``a`` (the better mean) relates to ``b``."""
    c = compare(a, b, resolution)
    d = abs(c["diff"])
    if c["single"]:
        if c["state"] == "tied":
            return (f"{a_label} and {b_label} differ by {d:.3f} AP on one seed each, below the resolution "
                    f"{resolution:.3f}: a single seed cannot separate them.")
        return (f"{a_label} is ahead of {b_label} by {d:.3f} AP on one seed each (above the resolution "
                f"{resolution:.3f}; one seed gives no spread to tell whether it repeats).")
    if c["state"] == "tied":
        return (f"{a_label} and {b_label} are tied: their means differ by {d:.3f} AP, within the noise bound "
                f"{c['bound']:.3f} (seed spread {c['spread']:.3f}, resolution {resolution:.3f}).")
    return (f"{a_label} is ahead of {b_label} by {d:.3f} AP, more than the noise bound {c['bound']:.3f} "
            f"(seed spread {c['spread']:.3f}, resolution {resolution:.3f}).")


def verdict_sentence(label: str, before: float | None, after: Mapping | None, delta: Mapping | None,
                     resolution: float, where: str) -> str:
    """'<label> ... on <where>: AP a -> b, delta d' with the word :func:`judge` gives."""
    word = judge(delta, resolution)
    if word == "n/a":
        return f"{label}: no AP on {where}."
    nums = f"AP {_f(before)} -> {fmt_stat(after)}, delta {fmt_stat(delta, signed=True)} ({_seeds_text(delta)})"
    if word == "gain":
        return f"{label} gains on {where}: {nums}."
    if word == "worse":
        return f"{label} makes things worse on {where}: {nums}."
    if word == "no difference":
        return f"{label} makes no difference on {where}: {nums}, below the resolution {resolution:.3f}."
    return (f"{label} makes no clear difference on {where}: {nums}; the seeds disagree on the sign "
            f"({_f(delta['min'], True)}..{_f(delta['max'], True)}).")


def ranking_sentences(items: Sequence[tuple[str, Mapping | None]], resolution: float, where: str) -> list[str]:
    """Rank (label, delta stat) by mean; say how the leader relates to the runner-up, which others are within its
    noise bound, which make things worse and which make no difference."""
    ranked = sorted([(lab, st) for lab, st in items if st is not None], key=lambda t: -t[1]["mean"])
    if not ranked:
        return []
    out = [f"On {where}, by mean AP delta: " + "; ".join(f"{lab} {fmt_stat(st, signed=True)}" for lab, st in ranked)
           + "."]
    if len(ranked) > 1:
        out.append(relation_sentence(*ranked[0], *ranked[1], resolution))
        tied = [lab for lab, st in ranked[2:] if compare(ranked[0][1], st, resolution)["state"] == "tied"]
        if tied:
            out.append(f"Also within the noise bound of {ranked[0][0]}: {', '.join(tied)}.")
    worse = [f"{lab} ({fmt_stat(st, signed=True)})" for lab, st in ranked if judge(st, resolution) == "worse"]
    if worse:
        out.append("Makes things worse than the input: " + ", ".join(worse) + ".")
    same = [f"{lab} ({fmt_stat(st, signed=True)})" for lab, st in ranked if judge(st, resolution) == "no difference"]
    if same:
        out.append(f"No difference from the input (below the resolution {resolution:.3f}): " + ", ".join(same) + ".")
    return out


# -- reading everything first --------------------------------------------------------------------------------------
@dataclass
class _Inputs:
    """Everything the reports show, read and checked before anything is written."""

    record: dict
    sources: list[str]
    summaries: list[dict]
    diags: dict  # (ablation, source) -> seed-0 diagnosis, AP impact of the input merged in from the baseline
    baselines: dict  # source -> baseline diagnosis (with AP impact)
    crops: dict  # ablation -> [CropItem]
    profiles: dict  # ablation -> measured-profile info
    schema: Any
    resolution: float
    occluded_resolution: float | None

    @property
    def default(self) -> str | None:
        names = {s["ablation"] for s in self.summaries}
        d = self.record.get("default_ablation")
        return d if d in names else None

    def summary(self, name: str) -> dict:
        return next(s for s in self.summaries if s["ablation"] == name)


def _first_run(ablation: Mapping, source: str) -> dict:
    seed = ablation["seeds"][0]
    return next(r for r in ablation["runs"] if r["seed"] == seed and r["source"] == source)


def _measured_profile(ablation: Mapping) -> dict | None:
    """Where the measured error profile of a ``measured profile (<step>)`` mix lives, and what it holds."""
    mix = ablation.get("mix")
    m = re.fullmatch(r"measured profile \((.+)\)", mix) if isinstance(mix, str) else None
    if m is None:
        return None
    cache = Path(ablation["runs"][0]["checkpoint"]).parents[2]  # <cache>/train/<key>/final.pth
    folder = cache / "profile" / m.group(1)
    info: dict[str, Any] = {"step": m.group(1), "json": str(folder / "profile.json"), "png": None, "meta": {},
                            "fractions": None}
    if (folder / "profile.json").is_file():
        data = read_json(folder / "profile.json", "error profile")
        counts = np.asarray(data["counts"], dtype=np.float64).sum(axis=(0, 1, 2))
        info.update(meta=dict(data.get("meta", {})), absent=int(np.asarray(data["absent"]).sum()),
                    keypoints=int(counts.sum()),
                    fractions={c: float(n / counts.sum()) if counts.sum() else None
                               for c, n in zip(data["classes"], counts)})
    if (folder / "profile.png").is_file():
        info["png"] = (folder / "profile.png").read_bytes()
    return info


def _crops(record: Mapping, gt) -> dict:
    """Crop-panel items of every ablation, on the first source, first seed."""
    from posefix_bench.reporting.bench_plots import crop_items, select_crops
    from posefix_bench.structures.results import load_results

    src = record["sources"][0]
    results = load_results(src["results"], gt)
    out = {}
    for a in record["ablations"]:
        refined = load_results(_first_run(a, src["name"])["refined"], gt)
        out[a["name"]] = crop_items(gt, results, refined, select_crops(gt, results, refined))
    return out


def _prepare(record: dict) -> _Inputs:
    from posefix_bench.structures.coco import CocoDataset

    sources = [s["name"] for s in record["sources"]]
    baselines = {s["name"]: read_json(s["baseline"]["analysis"], "analysis")["diagnosis"] for s in record["sources"]}
    profiles, diags, summaries = {}, {}, []
    for a in record["ablations"]:
        prof = _measured_profile(a)
        if prof is not None:
            profiles[a["name"]] = prof
        src_label = (prof or {}).get("meta", {}).get("source")
        summaries.append(ablation_metrics(record, a, f"measured ({src_label})" if src_label else None))
        for name in sources:
            d = read_json(_first_run(a, name)["analysis"], "analysis")["diagnosis"]
            if d.get("ap_impact") is None:  # the bench measures AP impact once per source, on the input
                d = dict(d, ap_impact=baselines[name].get("ap_impact"))
            diags[(a["name"], name)] = d
    gt = CocoDataset(record["sources"][0]["gt"])
    data = record["data"]
    occl = data.get("val_occluded_persons") or 0
    return _Inputs(record, sources, summaries, diags, baselines, _crops(record, gt), profiles, gt.schema,
                   NOISE_PERSONS / max(1, data["val_persons"]), NOISE_PERSONS / occl if occl else None)


# -- Markdown pieces -----------------------------------------------------------------------------------------------
def _label(summary: Mapping) -> str:
    return summary["ablation"] + (" (UNTRAINED)" if summary.get("untrained") else "")


def _link(summary: Mapping) -> str:
    return f"[{_label(summary)}]({summary['ablation']}/report.md)"


def _source_label(src: Mapping) -> str:
    untrained = not src["meta"].get("trained", True) or src["baseline"].get("untrained")
    return src["name"] + (" (UNTRAINED)" if untrained else "")


def _setup_lines(record: Mapping) -> list[str]:
    """Data, device, versions and time: the bullet lines every report starts with."""
    data, env, t = record["data"], record["environment"], record["timings"]
    versions = ", ".join(f"{k} {env[k]}" for k in ("posefix_bench", "python", "torch", "torchvision", "numpy",
                                                     "mmpose", "cuda") if env.get(k))
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in t.items() if k != "total" and v is not None)
    occl = data.get("val_occluded_persons") or 0
    return [
        f"- **Data**: {data['description']}. Validation: {data.get('val_images', '-')} images, "
        f"{data['val_persons']} persons, {occl} of them tagged lower-body occluded (schema {data.get('schema', '-')}).",
        f"- **Device**: {env.get('device_name', env.get('device', '-'))} (device {env.get('device', '-')}, CPU "
        f"capability {env.get('cpu_capability', '-')}); {env.get('jobs', '-')} job(s) at a time x "
        f"{env.get('threads_per_job', '-')} torch thread(s) each; 1-minute load average at the start "
        f"{env.get('load_average_1min', '-')}.",
        f"- **Versions**: {versions}.",
        f"- **Time**: total {t.get('total', 0):.0f} s ({stages}). Cached steps cost nothing in a rerun; training "
        "times below are those of the run that trained each refiner.",
    ]


def _caveats(inp: _Inputs) -> list[str]:
    """What the numbers can and cannot show at this data size, and whether the occluded subset exists."""
    data, out = inp.record["data"], []
    n = data["val_persons"]
    seeds = max(len(s["seeds"]) for s in inp.summaries)
    if data.get("kind") == "coco-mini" or inp.record["profile"] == "coco-mini" or n < SMALL_DATA_PERSONS:
        out.append(
            f"**What these numbers can and cannot show**: the validation set has only {n} persons and the ablations "
            f"ran with at most {seeds} seed(s). One person moving from matched to unmatched changes AP by about "
            f"{1 / max(1, n):.3f}, so differences of a few AP points (below about {inp.resolution:.3f}) are within "
            "noise here. These numbers check that the real-image path works end to end (sources, refinement, "
            "evaluation, diagnosis); they cannot rank ablations whose AP differs by a few points, and they do not "
            "predict the refiner's effect on full COCO.")
    if not data.get("val_occluded_persons"):
        out.append("**Occluded subset**: no validation person is tagged lower-body occluded (real COCO carries no "
                   "such tag), so the occluded-subset numbers do not exist for this data; lower-body comparisons "
                   "use all persons only.")
    if any(s["untrained"] for s in inp.summaries):
        names = ", ".join(s["ablation"] for s in inp.summaries if s["untrained"])
        out.append(f"**UNTRAINED**: the refined results of {names} come from untrained weights; their numbers say "
                   "nothing about what the method can do.")
    bad = [_source_label(s) for s in inp.record["sources"] if "UNTRAINED" in _source_label(s)]
    if bad:
        out.append(f"**UNTRAINED sources**: {', '.join(bad)} ran with random weights.")
    return out


def _headline(inp: _Inputs) -> str:
    """The default ablation's effect per source, with the error types it fixed."""
    if inp.default is None:
        return ""
    s = inp.summary(inp.default)
    lines = ["## Headline", "", f"The profile's default refiner is {_link(s)}.", ""]
    for name in inp.sources:
        rec = s["sources"][name]
        verdict = verdict_sentence("It", rec["ap_before"], rec["ap_after"], rec["delta"], inp.resolution, name)
        fixed = ", ".join(f"{fmt_stat(rec['fixed'][t]['rate'], pct=True)} of {t}" for t in FIXABLE
                          if rec["fixed"][t]["rate"] is not None)
        lines.append(f"- {verdict} It fixed {fixed or 'no'} keypoints and broke "
                     f"{fmt_stat(rec['broken']['rate'], pct=True)} of the good ones.")
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def _default_sentences(inp: _Inputs, names: Sequence[str], subset: str | None = None) -> list[str]:
    """Whether the measurements support the default among ``names`` (AP delta averaged over the sources; on the
    occluded subset with ``subset='occluded'``)."""
    if inp.default is None or inp.default not in names or len(names) < 2:
        return []
    res = inp.occluded_resolution if subset == "occluded" else inp.resolution
    scored = [(n, overall_delta(inp.summary(n), inp.sources, subset)) for n in names]
    scored = sorted([(n, st) for n, st in scored if st is not None], key=lambda t: -t[1]["mean"])
    if len(scored) < 2 or res is None or inp.default not in dict(scored):
        return []
    what = "AP delta" + (" on the occluded subset" if subset == "occluded" else "")
    what += f" (mean over {_plural(len(inp.sources), 'source')})"
    lab = {n: _label(inp.summary(n)) for n, _ in scored}
    d = dict(scored)[inp.default]
    best, best_st = scored[0]
    if best == inp.default:
        runner, runner_st = scored[1]
        c = compare(d, runner_st, res)
        head = (f"The default {lab[inp.default]} has the best {what}, {fmt_stat(d, signed=True)}; the runner-up "
                f"{lab[runner]} has {fmt_stat(runner_st, signed=True)}, {c['diff']:.3f} AP less")
        if c["single"] and c["state"] == "tied":
            return [head + f", below the resolution {res:.3f} on one seed each: a single seed cannot separate them."]
        if c["state"] == "tied":
            return [head + f", within the noise bound {c['bound']:.3f}: the measurements do not separate them."]
        return [head + f", more than the noise bound {c['bound']:.3f}" + (" (one seed each)" if c["single"] else "")
                + ". The measurements support the default."]
    c = compare(best_st, d, res)
    if c["state"] == "tied":
        return [f"The default {lab[inp.default]} ({fmt_stat(d, signed=True)}) does not have the best {what}: "
                f"{lab[best]} has {fmt_stat(best_st, signed=True)}, {c['diff']:.3f} AP more, within the noise bound "
                f"{c['bound']:.3f}, so the measurements do not contradict the default."]
    if best_st["n"] == 1:  # one seed: a difference, without a claim that it repeats
        return [f"{lab[best]} measured better than the default {lab[inp.default]} on its only seed: {what} "
                f"{fmt_stat(best_st, signed=True)} vs {fmt_stat(d, signed=True)}, {c['diff']:.3f} AP, more than the "
                f"noise bound {c['bound']:.3f}. One seed does not show that this repeats: run it with a second seed "
                "before changing the default."]
    return [f"**WARNING: {lab[best]} measured clearly better than the default {lab[inp.default]}: {what} "
            f"{fmt_stat(best_st, signed=True)} vs {fmt_stat(d, signed=True)}, {c['diff']:.3f} AP more than the noise "
            f"bound {c['bound']:.3f}" + (" (one seed each)" if c["single"] else "")
            + ". These measurements do not support the default.**"]


def _varying_factors(summaries: Sequence[Mapping]) -> tuple[list[str], dict]:
    keys = list(summaries[0]["factors"])
    varying = [k for k in keys if len({s["factors"][k] for s in summaries}) > 1]
    return varying, {k: summaries[0]["factors"][k] for k in keys if k not in varying}


def _mean_over_sources(s: Mapping, sources: Sequence[str], key: str) -> float | None:
    vals = [s["sources"][n][key]["mean"] for n in sources if s["sources"][n].get(key)]
    return float(np.mean(vals)) if vals else None


def _fps_text(best: Mapping | None) -> str:
    if best is None:
        return "-"
    return f"{best['samples_per_s']:.0f} (b{best['batch']} {best['precision']})"


def _summary_section(inp: _Inputs) -> str:
    varying, constant = _varying_factors(inp.summaries)
    headers = ["ablation"] + varying + ["seeds"] + [f"delta AP {n}" for n in inp.sources] + [
        "fixed (mean over sources)", "good broken", "occluded delta AP", "train s", "train samples/s", "FPS"]
    rows = []
    for s in inp.summaries:
        occ = overall_delta(s, inp.sources, "occluded")
        fixed = _mean_over_sources(s, inp.sources, "fixed_rate")
        broken = np.mean([s["sources"][n]["broken"]["rate"]["mean"] for n in inp.sources
                          if s["sources"][n]["broken"]["rate"]])
        rows.append([_link(s) + (" **(default)**" if s["default"] else "")] + [s["factors"][k] for k in varying]
                    + [", ".join(map(str, s["seeds"]))]
                    + [fmt_stat(s["sources"][n]["delta"], signed=True) for n in inp.sources]
                    + [_pct(fixed), _pct(float(broken)) if np.isfinite(broken) else "-",
                       fmt_stat(occ, signed=True), fmt_stat(s["train"]["seconds"], count=True),
                       fmt_stat(s["train"]["samples_per_s"], count=True), _fps_text(s["fps_best"])])
    const = ", ".join(f"{k} {v}" for k, v in constant.items())
    return "\n".join([
        "## All ablations", "",
        f"Common to all: {const or '-'}. Fixed and broken are seed means averaged over the sources; the occluded "
        "delta is averaged over the sources; train s and samples/s are per training run (seed mean [min..max]); "
        "FPS is refiner inference samples/s at the best measured batch and precision.", "",
        markdown_table(headers, rows), "",
        "![AP delta per ablation and source](ap_delta.png)", "",
        "![Fixed and broken per error type](fixed_broken.png)", "",
        "![Speed vs gain](speed_gain.png)" if any(s["fps_best"] for s in inp.summaries) else "",
    ]).rstrip()


def _sources_section(inp: _Inputs) -> str:
    rows, impact_rows, notes = [], [], []
    for src in inp.record["sources"]:
        b = src["baseline"]
        fr = b["fractions"]
        rows.append([_source_label(src), src.get("type") or src["meta"].get("type"), src.get("poses"),
                     _ap(b["ap"]), _ap(b["ap"], "AP50"), _ap(b["ap"], "AP75")]
                    + [_pct(fr.get(c)) for c in (*ERROR_TYPES, "absent")]
                    + [_ap((b.get("occluded") or {}), "ap_before")])
        imp = b.get("ap_impact") or {}
        impact_rows.append([_source_label(src)] + [_f((imp.get(c) or {}).get("delta_AP"), True)
                                                   for c in (*FIXABLE, "absent", "all")])
        meta = src["meta"]
        if meta.get("train_seconds") is not None:
            notes.append(f"- {src['name']}: {meta.get('card')} trained here with mmpose's own training in "
                         f"{meta['train_seconds']:.0f} s on {meta.get('trained_on', 'the training split')}.")
        elif meta.get("mix") is not None:
            notes.append(f"- {src['name']}: ground truth with synthetic errors (mix {meta['mix']}, seed "
                         f"{meta.get('seed')}), the PoseFix input-pose synthesis applied to the validation set.")
    headers = ["source", "type", "poses", "AP", "AP50", "AP75", *ERROR_TYPES, "absent", "AP occluded"]
    return "\n".join([
        "## Sources (the refiners' inputs)", "",
        "Baseline of every upstream source on the validation set: AP, the share of matched keypoints in each error "
        "type, and the AP on the lower-body-occluded persons.", "",
        markdown_table(headers, rows), "", *notes, "",
        "AP impact (Ronchi & Perona Sec. 4.1): the AP gained when the keypoints of one error type are moved onto "
        "their own joint, everything else unchanged (\"all\": every non-good keypoint).", "",
        markdown_table(["source"] + [f"{c}" for c in (*FIXABLE, "absent", "all")], impact_rows),
    ])


# -- comparisons ---------------------------------------------------------------------------------------------------
def _comparison_table(inp: _Inputs, names: Sequence[str]) -> str:
    rows = []
    for n in names:
        s = inp.summary(n)
        for src in inp.sources:
            r = s["sources"][src]
            rows.append([_label(s), src, _f(r["ap_before"]), fmt_stat(r["ap_after"]), fmt_stat(r["delta"], True)]
                        + [fmt_stat(r["fixed"][t]["rate"], pct=True) for t in FIXABLE]
                        + [fmt_stat(r["broken"]["rate"], pct=True)])
    headers = ["ablation", "source", "AP before", "AP after", "delta AP"] + [f"fixed {t}" for t in FIXABLE] + [
        "good broken"]
    return markdown_table(headers, rows)


def _occluded_table(inp: _Inputs, names: Sequence[str]) -> str:
    rows = []
    for n in names:
        s = inp.summary(n)
        for src in inp.sources:
            o = s["sources"][src].get("occluded")
            if not o:
                continue
            good = f"{o['lower_good_before']} -> {fmt_stat(o['lower_good_after'], count=True)}"
            rows.append([_label(s), src, o["persons"], _f(o["ap_before"]), fmt_stat(o["ap_after"]),
                         fmt_stat(o["delta"], True), o.get("lower_keypoints"), good,
                         fmt_stat(o["lower_fixed"], count=True), fmt_stat(o["lower_broken"], count=True),
                         fmt_stat(s["sources"][src]["delta"], True)])
    headers = ["ablation", "source", "occluded persons", "AP before", "AP after", "delta AP", "lower-body keypoints",
               "good before -> after", "fixed", "broken", "all persons: delta AP"]
    return markdown_table(headers, rows)


def _lower_body_sentences(inp: _Inputs, names: Sequence[str]) -> list[str]:
    out = []
    for src in inp.sources:
        parts = []
        for n in names:
            o = inp.summary(n)["sources"][src].get("occluded")
            if o and o.get("lower_fixed"):
                parts.append(f"{_label(inp.summary(n))} fixed {fmt_stat(o['lower_fixed'], count=True)} and broke "
                             f"{fmt_stat(o['lower_broken'], count=True)} of {o['lower_keypoints']} (good "
                             f"{o['lower_good_before']} -> {fmt_stat(o['lower_good_after'], count=True)})")
        if parts:
            out.append(f"Lower-body keypoints of the occluded persons of {src}: " + "; ".join(parts) + ".")
    return out


def _component_effects(inp: _Inputs, names: Sequence[str]) -> list[dict]:
    """Effect of each head component (``prior+skip`` = prior and skip; ``posefix`` = neither) on the AP delta
    averaged over the sources: the change when it is added, averaged over the pairs of heads differing only by it."""
    sums = [inp.summary(n) for n in names]
    if len({tuple(v for k, v in s["factors"].items() if k != "head") for s in sums}) != 1:
        return []  # other factors differ too: no clean pairs
    parts = {s["ablation"]: frozenset(p for p in s["factors"]["head"].split("+") if p != "posefix") for s in sums}
    by_parts = {p: a for a, p in parts.items()}
    overall = {n: overall_delta(inp.summary(n), inp.sources) for n in names}
    effects = []
    for c in sorted(set().union(*parts.values())):
        pairs = [(by_parts[p - {c}], a) for a, p in parts.items() if c in p and (p - {c}) in by_parts]
        pairs = [(lo, hi) for lo, hi in pairs if overall[lo] and overall[hi]]
        if not pairs:
            continue
        diffs = [overall[hi]["mean"] - overall[lo]["mean"] for lo, hi in pairs]
        bound = max([inp.resolution] + [_spread(overall[n]) for pair in pairs for n in pair])
        effects.append({"component": c, "effect": float(np.mean(diffs)), "pairs": pairs, "diffs": diffs,
                        "bound": bound, "single": all(overall[n]["n"] == 1 for pair in pairs for n in pair)})
    return effects


def _component_sentences(inp: _Inputs, names: Sequence[str]) -> list[str]:
    effects = _component_effects(inp, names)
    if not effects:
        return []
    out = [f"Head components (AP delta averaged over the {len(inp.sources)} source(s); a component's effect is the "
           "change of that mean when it is added, averaged over the pairs of heads that differ only by it):"]
    for e in effects:
        pairs = "; ".join(f"{hi} vs {lo} {d:+.3f}" for (lo, hi), d in zip(e["pairs"], e["diffs"]))
        out.append(f"- {COMPONENT_NAMES.get(e['component'], e['component'])}: {e['effect']:+.3f} AP ({pairs}; "
                   f"noise bound {e['bound']:.3f}).")
    beyond = sorted([e for e in effects if abs(e["effect"]) > e["bound"]], key=lambda e: -e["effect"])
    carriers = [e for e in beyond if e["effect"] > 0]
    name = lambda e: COMPONENT_NAMES.get(e["component"], e["component"])  # noqa: E731
    if not carriers:
        out.append(f"No head component raises the gain by more than its noise bound on this data.")
    elif len(carriers) == 1:
        out.append(f"{name(carriers[0]).capitalize()} carries the gain ({carriers[0]['effect']:+.3f} AP).")
    else:
        out.append(" and ".join(name(e) for e in carriers).capitalize() + " both carry part of the gain; "
                   f"{name(carriers[0])} the larger part ({carriers[0]['effect']:+.3f} AP).")
    for e in effects:
        if e not in beyond:
            out.append(f"{name(e).capitalize()} changes it by {e['effect']:+.3f} AP, within its noise bound.")
        elif e["effect"] < 0:
            out.append(f"{name(e).capitalize()} lowers it by {-e['effect']:.3f} AP, beyond its noise bound.")
    for e in effects:  # an average over pairs hides an interaction: say where the pairs disagree
        signs = {(d > e["bound"]) - (d < -e["bound"]) for d in e["diffs"]}
        if len(e["diffs"]) > 1 and len(signs) > 1:
            detail = "; ".join(f"{d:+.3f} AP from {lo} to {hi}" for (lo, hi), d in zip(e["pairs"], e["diffs"]))
            out.append(f"The effect of {name(e)} depends on the rest of the head ({detail}; noise bound "
                       f"{e['bound']:.3f}): the average above hides that.")
    if any(e["single"] for e in effects):
        out.append("(Some of these pairs ran with one seed each: their differences carry no seed spread.)")
    return out


def _comparison_section(inp: _Inputs, comp: Mapping) -> str:
    names = [s["ablation"] for s in inp.summaries if comp.get("tag") in s["tags"]]
    lines = [f"### {comp.get('name', comp.get('tag'))}", "", f"*Question*: {comp.get('question', '-')}", ""]
    if not names:
        return "\n".join(lines + [f"No ablation of this run carries the tag `{comp.get('tag')}`."])
    occluded = comp.get("subset") == "occluded" and inp.occluded_resolution is not None
    lines += [f"Ablations tagged `{comp.get('tag')}`: " + ", ".join(_link(inp.summary(n)) for n in names) + ".", ""]
    if comp.get("subset") == "occluded" and not occluded:
        lines += ["The occluded subset does not exist on this data (no person is tagged lower-body occluded; real "
                  "COCO carries no such tag): this comparison uses all persons only.", ""]
    lines += [_occluded_table(inp, names) if occluded else _comparison_table(inp, names), ""]
    sentences = []
    for src in inp.sources:
        if occluded:
            items = [(_label(inp.summary(n)), (inp.summary(n)["sources"][src].get("occluded") or {}).get("delta"))
                     for n in names]
            sentences += ranking_sentences(items, inp.occluded_resolution, f"the occluded persons of {src}")
        items = [(_label(inp.summary(n)), inp.summary(n)["sources"][src]["delta"]) for n in names]
        sentences += ranking_sentences(items, inp.resolution, f"all persons of {src}" if occluded else src)
    if occluded:
        sentences += _lower_body_sentences(inp, names)
    lines += [f"- {s}" for s in sentences]
    extra = _component_sentences(inp, names) + _default_sentences(inp, names, "occluded" if occluded else None)
    return "\n".join(lines + ([""] + extra if extra else []))


def _paper_counterpart(inp: _Inputs, s: Mapping) -> str | None:
    """The paper-mix ablation with the same other factors (the default when it qualifies)."""
    key = {k: v for k, v in s["factors"].items() if k != "mix"}
    cands = [o["ablation"] for o in inp.summaries
             if o["factors"]["mix"] == "paper" and {k: v for k, v in o["factors"].items() if k != "mix"} == key]
    return inp.default if inp.default in cands else (cands[0] if cands else None)


def _profile_text(name: str, prof: Mapping) -> str:
    meta = prof.get("meta") or {}
    if prof.get("fractions") is None:
        return f"The measured error profile of {name} was not found at `{_shown(prof['json'])}`."
    fr = ", ".join(f"{c} {_pct(v)}" for c, v in prof["fractions"].items())
    return (f"The mix of {name} is the error profile measured from {meta.get('source', '?')}'s poses on "
            f"{meta.get('images', '?')} images of the {meta.get('split', '?')} split (never the validation split): "
            f"{prof['keypoints']} matched keypoints, {fr}; {prof['absent']} not predicted (`{_shown(prof['json'])}`).")


def _measured_section(inp: _Inputs) -> str:
    if not inp.profiles:
        return ""
    lines = ["## Measured error profile vs paper mix", ""]
    for name, prof in inp.profiles.items():
        s, paper = inp.summary(name), _paper_counterpart(inp, inp.summary(name))
        lines += [f"### {_link(s)}", "", _profile_text(name, prof), ""]
        if prof.get("png"):
            lines += [f"![measured error profile of {name}](profile_{name}.png)", ""]
        if paper is None:
            lines.append("No paper-mix ablation with the same other factors ran, so there is nothing to compare with.")
            continue
        p = inp.summary(paper)
        rows, sentences = [], []
        for src in inp.sources:
            a, b = s["sources"][src], p["sources"][src]
            rows.append([src + (" (profiled)" if src == prof["meta"].get("source") else ""), _f(a["ap_before"]),
                         fmt_stat(b["ap_after"]), fmt_stat(b["delta"], True), fmt_stat(a["ap_after"]),
                         fmt_stat(a["delta"], True), _f(a["delta"]["mean"] - b["delta"]["mean"], True)])
            first, second = sorted([(name, a["delta"]), (paper, b["delta"])], key=lambda t: -t[1]["mean"])
            sentences.append(f"On {src}: " + relation_sentence(*first, *second, inp.resolution))
        lines += [markdown_table(["source", "AP before", f"paper ({paper}) AP after", "paper delta",
                                  "measured AP after", "measured delta", "measured - paper"], rows), ""]
        lines += [f"- {t}" for t in sentences] + [""]
    return "\n".join(lines).rstrip()


def _fps_section(inp: _Inputs) -> str:
    import json

    groups: dict[str, list] = {}
    for s in inp.summaries:
        if s.get("fps"):
            groups.setdefault(json.dumps(s["model"], sort_keys=True), []).append(s)
    if not groups:
        return "## Speed\n\nNo FPS record in this run."
    rows = []
    for sums in groups.values():
        fps = sums[0]["fps"]
        for r in fps["rows"]:
            rows.append([f"{r['backbone']} {r['head']} {r['input_size'][1]}x{r['input_size'][0]}", len(sums),
                         r["batch"], r["precision"], _num(r["samples_per_s"], 1), _num(r["forward_ms"], 2),
                         _num(r["gflop_per_sample"], 3), _num(r["achieved_gflops"], 1),
                         _pct(r["roofline_fraction"]), fps.get("threads")])
    return "\n".join([
        "## Speed (refiner inference)", "",
        "Measured once per distinct network (random weights: speed does not depend on them), BatchNorm folded, "
        "channels-last; the roofline fraction is the achieved GFLOP/s over the matrix-multiply peak measured in the "
        "same run on the same device and precision.", "",
        markdown_table(["network", "ablations", "batch", "precision", "samples/s", "forward ms", "GFLOP/sample",
                        "GFLOP/s", "roofline", "threads"], rows),
    ])


def _index_markdown(inp: _Inputs, date: str) -> str:
    rec = inp.record
    seeds: dict[tuple, list] = {}
    for s in inp.summaries:
        seeds.setdefault(tuple(s["seeds"]), []).append(s["ablation"])
    seed_text = "; ".join(f"seeds {', '.join(map(str, k))}: {len(v)} ablation(s)" for k, v in seeds.items())
    head = [f"# Bench report: profile `{rec['profile']}`", "", rec.get("description") or "", "",
            f"Written {date} from the bench record ({BENCH_FORMAT}); every number below is in `bench.json` and the "
            "per-ablation `metrics.json`, and every sentence is generated from them.", "",
            *_setup_lines(rec), f"- **Seeds**: {seed_text}.", ""]
    head += [c + "\n" for c in _caveats(inp)]
    how = ["## How to read this", "", HOW_TO_READ.format(res=f"{inp.resolution:.3f}", n=NOISE_PERSONS,
                                                           k=NOISE_PERSONS)]
    default = ["## Default choice", ""] + (
        _default_sentences(inp, [s["ablation"] for s in inp.summaries]) or
        ["The profile names no default ablation among those that ran." if inp.default is None else
         "Only one ablation ran: nothing to compare the default with."])
    comps = ["## Comparisons"] + [_comparison_section(inp, c) for c in rec.get("comparisons", ())]
    links = ["## Ablation reports", ""] + [f"- {_link(s)}: " + ", ".join(f"{k} {v}" for k, v in s["factors"].items())
                                           for s in inp.summaries]
    parts = ["\n".join(head).rstrip(), "\n".join(how), _headline(inp), "\n".join(default), _summary_section(inp),
             _sources_section(inp), "\n\n".join(comps), _measured_section(inp), _fps_section(inp), "\n".join(links)]
    return "\n\n".join(p for p in parts if p) + "\n"


# -- one ablation --------------------------------------------------------------------------------------------------
def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)


def _vs_default(inp: _Inputs, s: Mapping, src: str) -> str:
    d = inp.summary(inp.default)
    a, b = s["sources"][src]["delta"], d["sources"][src]["delta"]
    c = compare(a, b, inp.resolution)
    if c["single"] and c["state"] == "tied":
        word = "a single seed cannot separate it from the default"
    else:
        word = {"tied": "no different from the default (within the noise bound)", "ahead": "better than the default",
                "behind": "worse than the default"}[c["state"]] + (" on one seed each" if c["single"] else "")
    return (f"Against the default {inp.default} on {src}: delta {fmt_stat(a, True)} vs {fmt_stat(b, True)}, "
            f"{c['diff']:+.3f} AP (noise bound {c['bound']:.3f}): {word}.")


def _abl_verdict(inp: _Inputs, s: Mapping) -> str:
    lines = ["## Verdict", ""]
    for src in inp.sources:
        r = s["sources"][src]
        sentence = verdict_sentence("This refiner", r["ap_before"], r["ap_after"], r["delta"], inp.resolution, src)
        lines.append(f"- {sentence}")
        o = r.get("occluded")
        if o and o.get("ap_after"):
            where = f"the {o['persons']} occluded persons of {src}"
            sentence = verdict_sentence("This refiner", o["ap_before"], o["ap_after"], o["delta"],
                                        inp.occluded_resolution, where)
            lines.append(f"- {sentence}")
    if inp.default is not None and s["ablation"] != inp.default:
        lines += [f"- {_vs_default(inp, s, src)}" for src in inp.sources]
    if s["untrained"]:
        lines.append("- **UNTRAINED**: these refined results come from untrained weights.")
    return "\n".join(lines)


def _abl_setup(inp: _Inputs, s: Mapping) -> str:
    rows = []
    for seed, t in s["train"]["per_seed"].items():
        resumed = t.get("resumed_from")
        rows.append([seed, t.get("iterations"), _num(t.get("seconds"), 1), _num(t.get("samples_per_s"), 1),
                     _num(t.get("final_loss"), 4),
                     "-" if resumed is None else f"iteration {resumed} (time covers the rest)"])
    return "\n".join([
        "## Setup", "", *_setup_lines(inp.record), f"- **Seeds**: {', '.join(map(str, s['seeds']))}.", "",
        "Training (one run per seed; samples/s include data loading):", "",
        markdown_table(["seed", "iterations", "seconds", "samples/s", "final loss", "resumed from"], rows),
    ])


def _abl_ap(inp: _Inputs, s: Mapping) -> str:
    rows = []
    for src in inp.sources:
        r = s["sources"][src]
        per_seed = ", ".join(f"s{k} {_f(v)}" for k, v in r["ap_after"]["per_seed"].items()) if r["ap_after"] else "-"
        rows.append([src, _f(r["ap_before"]), fmt_stat(r["ap_after"]), fmt_stat(r["delta"], True),
                     judge(r["delta"], inp.resolution), per_seed]
                    + [f"{_f(r['metrics_before'][k])} -> {_f((r['metrics_after'][k] or {}).get('mean'))}"
                       for k in ("AP50", "AP75", "APm", "APl")])
    return "\n".join([
        "## AP before / after", "",
        markdown_table(["source", "AP before", "AP after", "delta AP", "verdict", "AP after per seed",
                        "AP50", "AP75", "APm", "APl"], rows), "",
        "![AP before and after refinement](ap_before_after.png)",
    ])


def _abl_error_types(inp: _Inputs, s: Mapping) -> str:
    lines = ["## Error types before / after", "",
             "Matched keypoints per class (input, and refined as a seed mean), and what refinement did to them: "
             "input keypoints of each error type that ended good (fixed), good ones that ended in an error (broken)."]
    for src in inp.sources:
        r = s["sources"][src]
        before, after = r["counts_before"] or {}, r["counts_after"]
        rows = []
        for c in (*ERROR_TYPES, "absent"):
            aft = (after.get(c) or {}).get("mean")
            if c == "good":
                trans = ("broken (-> error)", fmt_stat(r["broken"]["broken"], count=True),
                         fmt_stat(r["broken"]["rate"], pct=True))
            elif c in FIXABLE:
                f = r["fixed"][c]
                trans = ("fixed (-> good)", fmt_stat(f["fixed"], count=True), fmt_stat(f["rate"], pct=True))
            else:
                trans = ("stays absent", "-", "-")
            rows.append([c, before.get(c), "-" if aft is None else _count(aft), *trans])
        table = markdown_table(["class", "input", "refined", "transition", "keypoints", "rate"], rows)
        lines += ["", f"### {src}", "", table]
    return "\n".join(lines)


def _abl_occluded(inp: _Inputs, s: Mapping) -> str:
    rows = []
    for src in inp.sources:
        o = s["sources"][src].get("occluded")
        if o:
            rows.append([src, o["persons"], _f(o["ap_before"]), fmt_stat(o["ap_after"]), fmt_stat(o["delta"], True),
                         o.get("lower_keypoints"), o.get("lower_good_before"),
                         fmt_stat(o["lower_good_after"], count=True), fmt_stat(o["lower_fixed"], count=True),
                         fmt_stat(o["lower_broken"], count=True), _f(o.get("lower_ks_before")),
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


def _abl_confidence(inp: _Inputs, s: Mapping) -> str:
    lines = ["## By estimator confidence", "",
             "Fixed and broken rates per bin of the input keypoint confidence (seed means; counts are input "
             "keypoints)."]
    for src in inp.sources:
        rows = [[b, fmt_stat(r["errors"], count=True), fmt_stat(r["fixed_rate"], pct=True),
                 fmt_stat(r["broken"]["input"], count=True), fmt_stat(r["broken"]["rate"], pct=True)]
                for b, r in s["sources"][src]["per_confidence"].items()]
        lines += ["", f"### {src}", "", markdown_table(["confidence", "error keypoints", "fixed", "good keypoints",
                                                         "broken"], rows)]
    return "\n".join(lines)


def _abl_plots(inp: _Inputs, s: Mapping) -> str:
    from posefix_bench.reporting.diagnosis_plots import PLOT_FILES

    seed = s["seeds"][0]
    lines = ["## Diagnosis plots", "",
             f"Seed {seed}. Error types before/after (refined hatched), AP impact of each error type of the input "
             "(measured once per source), error types per keypoint, and fixed/broken rates per confidence bin."]
    for src in inp.sources:
        lines += ["", f"### {src}", ""]
        lines += [f"![{src} {name}]({_slug(src)}_{fname})" for name, fname in PLOT_FILES.items()
                  if name != "ap_impact" or inp.diags[(s["ablation"], src)].get("ap_impact")]
    return "\n".join(lines)


def _abl_crops(inp: _Inputs, s: Mapping) -> str:
    items = inp.crops.get(s["ablation"]) or []
    src = inp.sources[0]
    if not items:
        return f"## Crops\n\nNo detection of {src} matched the same person before and after refinement."
    colors = ", ".join(f"{name} {color}" for name, color in CROP_COLOR_NAMES.items())
    rows = [[i + 1, it.kind, it.image_id, it.ann_id, _f(it.ks_before), _f(it.ks_after),
             _f(it.ks_after - it.ks_before, True)] for i, it in enumerate(items)]
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


def _abl_fps(s: Mapping) -> str:
    fps = s.get("fps")
    if not fps:
        return "## Speed\n\nNo FPS record."
    rows = [[r["batch"], r["precision"], _num(r["samples_per_s"], 1), _num(r["forward_ms"], 2),
             _num(r["achieved_gflops"], 1), _pct(r["roofline_fraction"])] for r in fps["rows"]]
    return "\n".join([
        "## Speed (refiner inference)", "",
        f"{fps.get('gflop_per_sample', 0):.3f} GFLOP/sample, device {fps.get('device')}, {fps.get('threads')} "
        "threads; random weights (speed does not depend on them), BatchNorm folded.", "",
        markdown_table(["batch", "precision", "samples/s", "forward ms", "GFLOP/s", "roofline"], rows),
    ])


def _train_split(root: Path, val_split: str) -> str:
    """The training split beside a validation split (``val2017`` -> ``train2017``) when its annotation file exists."""
    guess = "train" + val_split[3:] if val_split.startswith("val") else None
    ok = guess and (root / "annotations" / f"person_keypoints_{guess}.json").is_file()
    return guess if ok else "<train split>"


def _shown(path: str | os.PathLike) -> Path:
    """``path`` relative to the working directory when it lies inside it (reports are written from the repository
    root, so committed reports carry no machine-specific absolute paths), else as it is."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return p


def _abl_reproduce(inp: _Inputs, s: Mapping) -> str:
    rec, abl = inp.record, next(a for a in inp.record["ablations"] if a["name"] == s["ablation"])
    seed, src = s["seeds"][0], rec["sources"][0]
    run = _first_run(abl, src["name"])
    gt = _shown(src["gt"])
    root, split = gt.parents[1], gt.stem.removeprefix("person_keypoints_")
    prof = inp.profiles.get(s["ablation"])
    env = rec["environment"]
    options = (f"data.root={root} data.train_split={_train_split(root, split)} data.val_split={split} "
               f"train.seed={seed} train.threads={env.get('threads_per_job', 1)} "
               f"train.device={env.get('device', 'cpu')}"
               + (f" data.mix={_shown(prof['json'])}" if prof else ""))
    work = f"work_dirs/{s['ablation']}-s{seed}"
    return "\n".join([
        "## Reproduce", "",
        "The whole bench for this ablation (cached steps are reused; only what changed is recomputed):", "",
        "```bash", f"make bench PROFILE={rec['profile']} BENCH_ARGS=\"--only {s['ablation']}\"",
        f".venv/bin/posefix-bench bench --profile {rec['profile']} --only '{s['ablation']}' "
        f"--jobs {env.get('jobs', 2)} --threads {env.get('threads_per_job', 1)}", "```", "",
        f"Step by step, seed {seed}, source {src['name']}. The bench refines with the profile's `refine` settings "
        "(batch size, precision), so the refine command may differ in the last digits; the diagnose command on the "
        "bench's own files reproduces the numbers above exactly.", "",
        "```bash",
        f".venv/bin/posefix-bench train --config {s['config']} --work-dir {work} --cfg-options {options}",
        f".venv/bin/posefix-bench refine --checkpoint {work}/final.pth --images {root / split} --gt {gt} "
        f"--results {_shown(src['results'])} --out refined.json",
        f".venv/bin/posefix-bench diagnose --gt {gt} --results {_shown(src['results'])} "
        f"--refined {_shown(run['refined'])} "
        f"--out diagnosis-{s['ablation']}-s{seed}", "```",
    ])


def _ablation_markdown(inp: _Inputs, s: Mapping) -> str:
    factors = ", ".join(f"{k} {v}" for k, v in s["factors"].items())
    head = [f"# Ablation `{s['ablation']}`" + (" (UNTRAINED)" if s["untrained"] else ""), "",
            f"[Back to the {inp.record['profile']} index](../index.md). Config `{s['config']}`; factors: {factors}; "
            f"seeds {', '.join(map(str, s['seeds']))}; tags {', '.join(s['tags']) or '-'}"
            + ("; **the profile's default**." if s["default"] else ".")]
    parts = [head, [_abl_verdict(inp, s)], [_abl_setup(inp, s)], [_abl_ap(inp, s)], [_abl_error_types(inp, s)],
             [_abl_occluded(inp, s)], [_abl_confidence(inp, s)], [_abl_plots(inp, s)], [_abl_crops(inp, s)]]
    prof = inp.profiles.get(s["ablation"])
    if prof:
        parts.append(["## Measured error profile", "", _profile_text(s["ablation"], prof)]
                     + (["", "![measured error profile](profile.png)"] if prof.get("png") else []))
    parts += [[_abl_fps(s)], [_abl_reproduce(inp, s)]]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"


# -- writing -------------------------------------------------------------------------------------------------------
def _metrics_record(inp: _Inputs, s: Mapping) -> dict:
    verdicts = {src: judge(s["sources"][src]["delta"], inp.resolution) for src in inp.sources}
    return dict(s, verdict=verdicts, resolution=inp.resolution, occluded_resolution=inp.occluded_resolution)


# Bump when a plot's look changes: the per-ablation plots are redrawn only when their inputs or this change.
PLOTS_VERSION = 1


def _digest(obj: Any, h=None):
    """A content hash of nested records (dicts, lists, numbers, strings, bytes, numpy arrays, dataclasses)."""
    import dataclasses
    import hashlib

    top = h is None
    h = hashlib.sha256() if top else h
    if isinstance(obj, np.ndarray):
        h.update(f"a{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (bytes, bytearray)):
        h.update(b"b%d:" % len(obj))
        h.update(obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _digest({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, h)
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for k in sorted(obj, key=str):
            _digest(str(k), h)
            _digest(obj[k], h)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _digest(v, h)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())
    return h.hexdigest() if top else None


def _current_plots(out: Path, key: str) -> list[str] | None:
    """The plots in ``out`` from a previous write with the same inputs, or None (``metrics.json`` is written last
    and names its plots, so an interrupted write is redrawn)."""
    try:
        old = read_json(out / "metrics.json", "ablation metrics")
    except (PosefixError, OSError):
        return None
    plots = old.get("plots") if isinstance(old, Mapping) else None
    ok = old.get("plots_key") == key and isinstance(plots, list) and all((out / str(p)).is_file() for p in plots)
    return plots if ok else None


def _write_ablation(inp: _Inputs, s: Mapping, out: Path, text: str) -> None:
    from posefix_bench.reporting.bench_plots import ap_before_after_figure, crop_panel
    from posefix_bench.reporting.diagnosis_plots import PLOT_FILES, diagnosis_figures, save_figure
    from posefix_bench.reporting.draw import write_image

    name = s["ablation"]
    record = _metrics_record(inp, s)
    prof_png = (inp.profiles.get(name) or {}).get("png")
    key = _digest([PLOTS_VERSION, record, [inp.diags[(name, src)] for src in inp.sources], inp.crops.get(name),
                   prof_png, inp.schema.name])
    plots = _current_plots(out, key)  # nothing changed since the last write: keep the plots (a rerun from cache)
    if plots is None:
        plots = ["ap_before_after.png"]
        save_figure(ap_before_after_figure(s), out / plots[0])
        for src in inp.sources:
            for fig_name, fig in diagnosis_figures(inp.diags[(name, src)]).items():
                plots.append(f"{_slug(src)}_{PLOT_FILES[fig_name]}")
                save_figure(fig, out / plots[-1])
        if inp.crops.get(name):
            plots.append("crops.png")
            write_image(out / plots[-1], crop_panel(inp.crops[name], inp.schema))
        if prof_png:
            plots.append("profile.png")
            atomic_write_bytes(out / plots[-1], prof_png)
    atomic_write_text(out / "report.md", text)
    atomic_write_json(out / "metrics.json", dict(record, plots=plots, plots_key=key))


def _write_index_plots(inp: _Inputs, out: Path) -> None:
    from posefix_bench.reporting.bench_plots import ap_delta_figure, fixed_broken_figure, speed_gain_figure
    from posefix_bench.reporting.diagnosis_plots import save_figure

    save_figure(ap_delta_figure(inp.summaries, inp.sources, inp.default), out / "ap_delta.png")
    save_figure(fixed_broken_figure(inp.summaries, inp.sources), out / "fixed_broken.png")
    fig = speed_gain_figure(inp.summaries, inp.sources)
    if fig is not None:
        save_figure(fig, out / "speed_gain.png")
    for name, prof in inp.profiles.items():
        if prof.get("png"):
            atomic_write_bytes(out / f"profile_{name}.png", prof["png"])


def write_reports(record: dict, out_dir: str | os.PathLike, date: str | None = None) -> Path:
    """Write the index, the per-ablation reports, metrics and plots of a bench record into ``out_dir``.

    Everything the reports need (the record's structure, the analysis, results and refined files it points to, the
    ground truth and images of the crop panel) is read and checked before the first file is written; a problem
    raises a one-line :class:`PosefixError`. ``date`` (default: today, ISO) is the date the index says it was
    written. Returns the path of ``index.md``.
    """
    check_record(record)
    inp = _prepare(record)
    date = date or datetime.date.today().isoformat()
    out = Path(out_dir)
    texts = {s["ablation"]: _ablation_markdown(inp, s) for s in inp.summaries}
    index = _index_markdown(inp, date)
    for s in inp.summaries:
        _write_ablation(inp, s, out / s["ablation"], texts[s["ablation"]])
    _write_index_plots(inp, out)
    return atomic_write_text(out / "index.md", index)
