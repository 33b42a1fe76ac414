"""The typed bench record (``bench.json``): what was run, on which data, and what came out.

:func:`posefix_bench.bench.runner.run_bench` builds a :class:`BenchRecord`; :mod:`posefix_bench.reporting` renders
one; the command writes it as JSON and :meth:`BenchRecord.from_dict` reads it back with its structure checked
(a problem is a one-line :class:`~posefix_bench.errors.PosefixError`). Every field is structured: factors, data root
and splits, the measured error profile's location are fields, never parsed back out of a label or a file name.

Paths are as the bench wrote them (absolute paths of this machine's step cache); reports show them relative to the
repository (:func:`shown_path`), so a committed report holds no absolute path.

Nested numbers keep the JSON form of the layers that computed them: AP metrics (``evaluation.coco_eval``), class
counts and fixed/broken transitions (``evaluation.diagnosis``), seed stats (:mod:`~posefix_bench.record.stats`) and
the per-ablation metrics (:mod:`~posefix_bench.record.metrics`).

The refinement gate (issue 17) is part of the default ablation only: its :attr:`AblationResult.gate` says whether
it was calibrated (per seed) or is off (and why), and each of its runs carries the gated reading of the same
refinement pass (:class:`GateRun`); every other field of a run, of every ablation, is the ungated refinement.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from posefix_bench.codecs.taxonomy import ERROR_TYPES
from posefix_bench.errors import PosefixError
from posefix_bench.structures.io import to_jsonable

__all__ = ["BENCH_FORMAT", "GATE_STATES", "DataInfo", "MixInfo", "SourceRun", "GateRun", "Run", "GateInfo",
           "AblationResult", "FreeBaseline", "MethodResult", "BenchRecord", "shown_path", "shown_text",
           "keep_computing_run"]

BENCH_FORMAT = "posefix-bench/bench/v3"  # v3: the default ablation's gate, evaluator and data warnings
GATE_STATES = ("calibrated", "off")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _forms(path: str | os.PathLike) -> list[Path]:
    """A path as written (absolute, links kept) and with its links resolved: a report names whichever lies in a
    known place (a data root that is a link, or a ``../shared`` that is one, stays ``../shared/...``)."""
    written = Path(os.path.abspath(os.fspath(path)))
    resolved = written.resolve()
    return [written] if resolved == written else [written, resolved]


def _places(cache_root) -> list[tuple[Path, str | None]]:
    """(folder, how a path below it is shown), first match wins: the repository, the step cache (``<cache>``), the
    folder holding the repository (``..``), and the target of each link beside the repository by the link's name
    (a ``../shared`` that links elsewhere still shows as ``../shared``)."""
    places: list[tuple[Path, str | None]] = [(base, None) for base in _forms(REPO_ROOT)]
    if cache_root:
        places += [(base, "<cache>") for base in _forms(cache_root)]
    parent = REPO_ROOT.parent
    places += [(base, "..") for base in _forms(parent)]
    try:
        links = sorted(e for e in parent.iterdir() if e.is_symlink())
    except OSError:
        links = []
    places += [(link.resolve(), f"../{link.name}") for link in links]
    return places


def shown_path(path: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> str:
    """How a report names a file: relative to the repository when it is in or beside it (``../shared/...``, also
    where ``../shared`` or the data root is a symbolic link), ``<cache>/...`` inside a step cache kept elsewhere, else
    the bare file name behind ``<elsewhere>/``."""
    forms = _forms(path)
    for base, prefix in _places(cache_root):
        for p in forms:
            try:
                rel = p.relative_to(base)
            except ValueError:
                continue
            if prefix is None:
                return str(rel)
            return prefix if str(rel) == "." else f"{prefix}/{rel}"
    return f"<elsewhere>/{forms[-1].name}"


_ABS_PATH = re.compile(r"(?<![\w.~])/[^\s,;()'\"`]+")


def shown_text(text: str, cache_root: str | os.PathLike | None = None) -> str:
    """``text`` with every absolute path in it written as :func:`shown_path` writes it (a sentence that names a data
    root or a checkpoint, e.g. a calibration's description, says ``../shared/data/coco-mini``)."""
    return _ABS_PATH.sub(lambda m: shown_path(m.group(0), cache_root), text)


def _need(rec: Any, keys, where: str) -> None:
    if not isinstance(rec, Mapping):
        raise PosefixError(f"{where}: expected a record (JSON object), got {type(rec).__name__}")
    missing = [k for k in keys if k not in rec]
    if missing:
        raise PosefixError(f"{where}: lacks {', '.join(repr(k) for k in missing)}")


def _build(kind, rec: Mapping, where: str, **nested):
    """A dataclass from its JSON record: required fields checked, unknown fields refused, nested ones converted."""
    fields = {f.name: f for f in dataclasses.fields(kind)}
    required = [n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    _need(rec, required, where)
    unknown = sorted(set(rec) - set(fields))
    if unknown:
        raise PosefixError(f"{where}: unknown field {unknown[0]!r}")
    values = dict(rec)
    values.update({k: conv(values[k]) for k, conv in nested.items() if k in values})
    return kind(**values)


@dataclass
class DataInfo:
    """The profile's data: a COCO-format root and its splits."""

    kind: str  # sandbox | coco-mini | coco
    description: str
    fingerprint: str
    root: str
    train_split: str
    val_split: str
    val_images: int
    val_persons: int
    val_occluded_persons: int
    schema: str
    # the dedicated lower-body-occluded validation split (issue 27): images, persons, occluded_persons, seed, root,
    # sources, seconds (its generation in this run); None where the profile has none
    occluded_split: dict | None = None


@dataclass
class MixInfo:
    """The error mix a refiner trained on: a named or literal mix, or an error profile measured from a source."""

    label: str  # how reports name it: "paper", "measured (sb-simplebaseline-r18)"
    spec: Any = None  # the config's value (a name or a dict); None for a measured profile
    source: str | None = None  # measured: the profiled source
    profile: str | None = None  # measured: path of its profile.json
    profile_summary: dict | None = None  # measured: meta, keypoints, absent, fractions per class

    @property
    def measured(self) -> bool:
        return self.source is not None


@dataclass
class SourceRun:
    """An upstream source run on the validation split, with its own diagnosis (``baseline``)."""

    name: str
    type: str
    meta: dict
    results: str
    gt: str
    hash: str
    poses: int
    images: int
    predict_seconds: float | None
    baseline: dict  # ap, counts, fractions, ap_impact, per_* breakdowns, occluded, untrained, analysis (path)

    @property
    def untrained(self) -> bool:
        return not self.meta.get("trained", True) or bool(self.baseline.get("untrained"))

    @property
    def family(self) -> tuple[str, str]:
        """Which sources differ only in strength, so that a gain-vs-input trend within them is a controlled one:
        ``("card", card)`` for the checkpoints of one trained mmpose card (an input-strength ladder; a
        post-processing method makes its own family), ``("synthetic", mix)`` for the synthetic source with one mix
        (a name) or that mix with every error type scaled alike (``dict(base=mix, scale=...)``), else
        ``("source", name)``."""
        if self.type == "mmpose-trained" and self.meta.get("card") and not self.meta.get("method"):
            return "card", str(self.meta["card"])
        mix = self.meta.get("mix", "paper")
        if self.type == "synthetic" and isinstance(mix, str):
            return "synthetic", mix
        if (self.type == "synthetic" and isinstance(mix, dict) and isinstance(mix.get("base"), str)
                and set(mix) <= {"base", "scale"} and set(mix.get("scale") or ERROR_TYPES[1:]) == set(ERROR_TYPES[1:])
                and len(set(dict(mix.get("scale") or {}).values())) <= 1):
            return "synthetic", mix["base"]
        return "source", self.name


@dataclass
class GateRun:
    """The gated reading of one (seed, source) refinement of the default ablation (the run's own fields are the
    ungated reading of the same pass): AP and counts of the gated results and what the gate accepted."""

    ap_after: dict  # COCO metrics of the gated results (evaluation.coco_eval)
    counts_after: dict  # class counts of the gated results
    accepted_share: float | None  # accepted / refinable keypoints (None: nothing refinable)
    refinable: int
    accepted: int
    per_confidence: dict  # input-confidence bin -> {"refinable", "accepted", "accepted_share"}
    per_keypoint: dict  # joint -> {"refinable", "accepted", "accepted_share"}
    outcomes: dict  # matched keypoints: fixes kept / lost, breaks prevented / let through (evaluation.gate_effect)
    gated: str  # gated results file
    analysis: str  # the (input, gated) analysis file
    effect: str  # the gate-effect record file
    checkpoint: str  # the calibrated checkpoint
    bootstrap: dict | None = None  # the (input, gated) pair's paired bootstrap (evaluation.pair.pair_bootstrap)


@dataclass
class Run:
    """One (ablation, seed, source): AP and diagnosis of the input and of its refinement."""

    ablation: str
    seed: int
    source: str
    ap_before: dict
    ap_after: dict
    counts_before: dict
    counts_after: dict
    fixed: dict
    broken: dict
    fixed_total: int
    net_fixed: int
    transitions: list
    classes: list
    per_confidence: dict | None
    per_group: dict | None
    per_keypoint_before: dict
    per_keypoint_after: dict
    per_confidence_before: dict
    per_confidence_after: dict
    occluded: dict | None
    train: dict  # the training summary of this seed
    refined: str  # refined results file
    checkpoint: str
    analysis: str  # the pair's analysis file (diagnosis of input and refined)
    untrained: bool
    crops: list = field(default_factory=list)  # persons picked for the crop panel (evaluation.pair.select_crops)
    refine_precision: str | None = None  # the precision the refinement ran in (engine.precision)
    gate: GateRun | None = None  # the default ablation with a calibrated gate: the gated reading of this run
    # the pair's paired bootstrap (evaluation.pair.pair_bootstrap's record) and ``samples``, its draws' file
    bootstrap: dict | None = None


@dataclass
class GateInfo:
    """The default ablation's refinement gate: ``calibrated`` (each seed's calibration summary, its runs carry the
    gated reading) or ``off`` (``reason``: nothing to calibrate on, or calibration failed; its runs are ungated)."""

    state: str  # calibrated | off
    reason: str | None = None
    # str(seed) -> {"checkpoint", "threshold", "data", "summary", "mixes", "draws", "sources" (estimator inputs)}
    calibrations: dict = field(default_factory=dict)


@dataclass
class AblationResult:
    """One refiner configuration: its factors, its runs over seeds and sources, their metrics and its speed."""

    name: str
    config: str
    seeds: list
    tags: list
    factors: dict
    model: dict
    mix: MixInfo
    runs: list  # [Run]
    metrics: dict  # record.metrics.ablation_metrics
    fps: dict | None = None
    gate: GateInfo | None = None  # the default ablation only (the others are ungated)

    def run(self, seed: int, source: str) -> Run:
        for r in self.runs:
            if r.seed == seed and r.source == source:
                return r
        raise PosefixError(f"ablation {self.name}: no run for seed {seed} on source {source}")

    @property
    def untrained(self) -> bool:
        return bool(self.metrics.get("untrained"))


@dataclass
class FreeBaseline:
    """An mmpose source with mmpose's test-time post-processing (``flip-test``, ``dark``): its output judged against
    the same source's plain output, as a refiner's is, and the speed it costs."""

    name: str  # "<source>+<method>"
    source: str
    method: str
    card: str
    run: Run  # input: the source's plain results; refined: the results with the method
    metrics: dict  # record.metrics.baseline_metrics
    throughput: dict | None = None  # sources.post_processing.post_processing_throughput

    @property
    def untrained(self) -> bool:
        return bool(self.metrics.get("untrained"))


@dataclass
class MethodResult:
    """A refinement method of the profile (:mod:`posefix_bench.methods`) run on every source: one run per source
    (input: the source's results; refined: the method's), analysed as a refiner's, and the method's own speed."""

    name: str
    type: str
    options: dict  # the profile entry's options (posefix: with the checkpoint it ran)
    runs: list  # [Run], one per source, seed 0
    metrics: dict  # record.metrics.method_metrics
    speed: dict  # source -> {"seconds", "persons", "samples_per_s"} of the method's refinement pass alone

    @property
    def untrained(self) -> bool:
        return bool(self.metrics.get("untrained"))


@dataclass
class BenchRecord:
    """A profile's run: data, sources, ablations, the comparisons to draw, environment and timings."""

    profile: str
    description: str
    data: DataInfo
    sources: list  # [SourceRun]
    ablations: list  # [AblationResult]
    environment: dict
    timings: dict
    cache_root: str
    evaluator: str  # the COCO evaluation backend(s) that computed the AP: pycocotools and/or hotcoco
    data_warnings: list  # one line per data warning of the ground truth and of each source's results
    comparisons: list = field(default_factory=list)
    default_ablation: str | None = None
    baselines: list = field(default_factory=list)  # [FreeBaseline]
    methods: list = field(default_factory=list)  # [MethodResult]
    # a rerun that reused every number from the cache: its own time; ``timings`` (and ``environment``) stay those of
    # the run that computed the numbers (:func:`keep_computing_run`)
    rerun_timings: dict | None = None
    format: str = BENCH_FORMAT

    @property
    def source_names(self) -> list[str]:
        return [s.name for s in self.sources]

    def ablation(self, name: str) -> AblationResult:
        for a in self.ablations:
            if a.name == name:
                return a
        raise PosefixError(f"bench record (profile {self.profile}): no ablation {name!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, rec: Any) -> "BenchRecord":
        """Read a record back (``bench.json``), checking its structure: every ablation has a run for every seed
        and source."""
        _need(rec, ("format", "profile"), "bench record")
        where = f"bench record (profile {rec['profile']})"
        if rec["format"] != BENCH_FORMAT:
            raise PosefixError(f"{where}: format {rec['format']!r}, expected {BENCH_FORMAT!r}")

        def run(r):
            return _build(Run, r, f"{where}: run",
                          gate=lambda g: None if g is None else _build(GateRun, g, f"{where}: run gate"))

        def ablation(a):
            return _build(AblationResult, a, f"{where}: ablation", mix=lambda m: _build(MixInfo, m, f"{where}: mix"),
                          runs=lambda rs: [run(r) for r in rs],
                          gate=lambda g: None if g is None else _build(GateInfo, g, f"{where}: gate"))

        def baseline(b):
            return _build(FreeBaseline, b, f"{where}: free baseline", run=lambda r: _build(Run, r, f"{where}: run"))

        def method(m):
            return _build(MethodResult, m, f"{where}: method", runs=lambda rs: [run(r) for r in rs])

        out = _build(cls, rec, where, data=lambda d: _build(DataInfo, d, f"{where}: data"),
                     sources=lambda ss: [_build(SourceRun, s, f"{where}: source") for s in ss],
                     ablations=lambda abls: [ablation(a) for a in abls],
                     baselines=lambda bs: [baseline(b) for b in bs],
                     methods=lambda ms: [method(m) for m in ms])
        out.check()
        return out

    def check(self) -> None:
        where = f"bench record (profile {self.profile})"
        if not self.sources or not self.ablations:
            raise PosefixError(f"{where}: no sources or no ablations")
        for s in self.sources:
            _need(s.baseline, ("ap", "fractions", "ap_impact", "analysis"), f"{where}: source {s.name} baseline")
        for a in self.ablations:
            if not a.seeds:
                raise PosefixError(f"{where}: ablation {a.name} has no seeds")
            have = {(r.seed, r.source) for r in a.runs}
            for seed in a.seeds:
                for name in self.source_names:
                    if (seed, name) not in have:
                        raise PosefixError(f"{where}: ablation {a.name} has no run for seed {seed} on source {name}")
            self._check_gate(a, where)
        for b in self.baselines:
            if b.source not in self.source_names:
                raise PosefixError(f"{where}: free baseline {b.name} is of an unknown source {b.source!r}")
        for m in self.methods:
            missing = [n for n in self.source_names if n not in {r.source for r in m.runs}]
            if missing:
                raise PosefixError(f"{where}: method {m.name} has no run on source {missing[0]}")
        if len({m.name for m in self.methods}) != len(self.methods):
            raise PosefixError(f"{where}: two methods share a name")
        if not isinstance(self.data_warnings, list) or not all(isinstance(w, str) for w in self.data_warnings):
            raise PosefixError(f"{where}: data_warnings must be a list of strings")

    def _check_gate(self, a: "AblationResult", where: str) -> None:
        """Only the default ablation has a gate; a calibrated one has a calibration per seed and a gated reading
        of every run; an ablation without a calibrated gate has no gated reading."""
        gated = [r for r in a.runs if r.gate is not None]
        if a.gate is None or a.gate.state != "calibrated":
            if gated:
                raise PosefixError(f"{where}: ablation {a.name} has gated runs but no calibrated gate")
            if a.gate is None:
                return
        if a.name != self.default_ablation:
            raise PosefixError(f"{where}: ablation {a.name} has a gate, but only the default ablation "
                               f"({self.default_ablation}) is gated")
        if a.gate.state not in GATE_STATES:
            raise PosefixError(f"{where}: ablation {a.name}: gate state {a.gate.state!r} (known: "
                               f"{', '.join(GATE_STATES)})")
        if a.gate.state == "off":
            return
        missing = [s for s in a.seeds if str(s) not in a.gate.calibrations]
        if missing:
            raise PosefixError(f"{where}: ablation {a.name}: no gate calibration for seed {missing[0]}")
        if len(gated) != len(a.runs):
            r = next(r for r in a.runs if r.gate is None)
            raise PosefixError(f"{where}: ablation {a.name}: calibrated gate, but the run of seed {r.seed} on "
                               f"{r.source} has no gated reading")


# what describes a run rather than its results: a rerun may differ in these alone
_RUN_FIELDS = ("environment", "timings", "rerun_timings", "cache_root")


def keep_computing_run(new: BenchRecord, previous: BenchRecord | None) -> BenchRecord:
    """``new`` as the record to write after ``previous`` (the last ``bench.json`` of the profile, None if absent).

    When every result of ``new`` equals ``previous``'s (a rerun served by the step cache), its time line and
    environment stay those of the run that computed the numbers, and this run's own timings go to
    ``rerun_timings``; otherwise ``new`` is returned as it is."""
    if previous is None or previous.profile != new.profile:
        return new
    # as bench.json holds them: a record read back from JSON has string keys and lists where one built in memory has
    # integer keys and tuples
    results = [json.dumps(to_jsonable({k: v for k, v in r.to_dict().items() if k not in _RUN_FIELDS}),
                          sort_keys=True) for r in (new, previous)]
    if results[0] != results[1]:
        return new
    return dataclasses.replace(new, timings=previous.timings, environment=previous.environment,
                               rerun_timings=new.timings)
