"""The bench runner: which steps a profile needs, in which order, on which workers; the typed record they make.

For a profile (:mod:`posefix_bench.bench.profile`) it

1. prepares the data (the generated sandbox, coco-mini, or a COCO root);
2. runs every upstream source on the validation split (training the small mmpose estimators first where the
   profile asks for them) and analyses each source on its own, with the AP impact of each error type;
3. measures error profiles of estimators on the *training* split where an ablation trains on a measured mix;
4. trains every ablation for each of its seeds (or reuses a finished run), refines every source's results with it,
   and analyses input vs refined in one pass (AP, diagnosis, the lower-body-occluded subset, the crop panel, the
   paired bootstrap's intervals; the lower-body comparison's ablations also on the dedicated occluded split); for
   the ablations the profile's ``learning_curve`` names (by tag), the AP of every source refined by the training's
   intermediate checkpoints too (the same run, no extra training); the default ablation's refiners get their
   refinement gate calibrated first (issue 17), and their one refinement pass per source gives the ungated and the
   gated results, both analysed, with what the gate did (the other ablations stay ungated);
5. runs the free baselines: each mmpose source with mmpose's flip test, and with DARK decoding where its head is
   a heatmap head, analysed against its plain output in the same one-pass way as a refinement;
6. measures the refiner's inference FPS once per distinct network, and each mmpose source's samples/s plain and
   with each post-processing method;
7. runs the profile's refinement methods (posefix, re-estimate, pose prior, identity, external ones) on every
   source, each timed alone and analysed as a refinement (:mod:`posefix_bench.bench.method_steps`);

and returns a :class:`~posefix_bench.record.schema.BenchRecord` (with the evaluation backend and the data
warnings of the ground truth and of each source's results) that :mod:`posefix_bench.reporting` renders. The
steps themselves, and their cache, are :mod:`posefix_bench.bench.steps`.

Independent steps (trainings, source predictions, refine-and-analyse of one trained refiner, source baselines) go
through an executor (:mod:`posefix_bench.bench.executors`) phase by phase, each phase submitted after the one it
depends on: locally a pool of ``jobs`` worker processes with ``threads`` torch threads each (on a 2-core machine two
single-threaded trainings give about twice the samples/s of one two-threaded training), or one Slurm job per step.
Every job works through the content-hash step cache, so where it ran does not matter and a partial run resumes.
Scaling *one* training out over processes or GPUs is torchrun's job (:mod:`posefix_bench.engine.distributed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from posefix_bench.bench.executors import Executor, Job, LocalExecutor
from posefix_bench.bench.profile import Ablation, Profile, ablation_factors, load_profile
from posefix_bench.bench.occluded import dedicated_occluded, occluded_question
from posefix_bench.bench.steps import BenchSteps, run_samples
from posefix_bench.hashing import canonical_hash
from posefix_bench.progress import Progress, no_progress
from posefix_bench.record.intervals import baseline_comparisons, method_comparisons, paired_comparisons
from posefix_bench.record.metrics import ablation_metrics, baseline_metrics
from posefix_bench.record.schema import (
    AblationResult, BenchRecord, DataInfo, FreeBaseline, GateInfo, GateRun, MixInfo, Run, SourceRun, shown_path,
)  # fmt: skip
from posefix_bench.structures.io import read_json

__all__ = ["RunSpec", "BenchRunner", "run_bench", "run_of", "gate_run_of", "gate_info", "curve_source_runs",
           "learning_curve", "time_budget", "free_baseline_methods", "profile_summary"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunSpec:
    """Everything a (worker) process needs to rebuild the runner: plain, picklable values."""

    profile: str
    out_dir: str
    cache_root: str
    only: tuple[str, ...] | None = None
    coco_root: str | None = None
    device: str = "cpu"
    jobs: int = 2
    threads: int = 1
    smoke: bool = False


class BenchRunner:
    """Runs one profile; see the module docstring. Independent steps go through ``executor``
    (:mod:`posefix_bench.bench.executors`; default: a local pool of ``spec.jobs`` workers)."""

    def __init__(self, spec: RunSpec, progress: Progress = no_progress, log: Log = lambda line: None,
                 executor: Executor | None = None):
        self.spec = spec
        self.profile: Profile = load_profile(spec.profile, list(spec.only) if spec.only else None)
        self.steps = BenchSteps(self.profile, spec.cache_root, spec.coco_root, spec.device, spec.threads, progress,
                                smoke=spec.smoke)
        _WORKER[spec] = self.steps  # jobs run in this process reuse these steps (and their progress bars)
        self.executor = executor or LocalExecutor(spec.jobs, spec.threads, progress, log)
        self.progress = progress
        self.log = log

    def run(self) -> BenchRecord:
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        t = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal t
            timings[name] = time.perf_counter() - t
            t = time.perf_counter()

        steps, profile = self.steps, self.profile
        self.environment = environment_record(self.spec, self.executor)  # before any work loads the machine
        self.environment["budget"] = time_budget(profile.section("budget"), self.environment["peaks"])
        self.log(self.environment["peaks"].get("sentence", ""))
        data = steps.data()
        self.log(f"data: {data.description}")
        if steps.occluded_split() is not None:  # generated here once, before workers look for it
            info = steps.occluded_split_info
            self.log(f"dedicated occluded split: {info['images']} images, {info['occluded_persons']} occluded persons "
                     f"({info['seconds']:.0f} s)")
        lap("data")
        needs_training = [s for s in profile.sources if s.get("type") == "mmpose-trained"]
        simple = [s for s in profile.sources if s not in needs_training]
        measured = [a for a in profile.ablations if a.measured_source]
        # one training per estimator (the rungs of a ladder share it: one job, not one per rung)
        estimators = {canonical_hash([s["card"], s.get("train_seed", 0), s.get("overrides", {})]): s
                      for s in needs_training}
        first = [Job(_job_estimator, (self.spec, s["name"]), "train", f"train estimator {s['card']}")
                 for s in estimators.values()]
        # longest trainings first, so that the two (or n) workers finish together (LPT scheduling)
        first += [self._train_job(a, seed) for a in sorted(profile.ablations, key=_train_cost, reverse=True)
                  if not a.measured_source for seed in a.seeds]
        first += [Job(_job_predict, (self.spec, s["name"]), "predict", f"predict {s['name']}") for s in simple]
        done = self.executor.run(first, "train estimators and refiners, run sources")
        sources = {s["name"]: rec for s, rec in zip(simple, done[len(first) - len(simple):])}
        lap("training and sources")

        second = [Job(_job_predict, (self.spec, s["name"]), "predict", f"predict {s['name']}") for s in needs_training]
        profiled = list(dict.fromkeys(a.measured_source for a in measured))
        second += [Job(_job_profile, (self.spec, name), "predict", f"error profile of {name}") for name in profiled]
        done = self.executor.run(second, "estimator predictions and error profiles")
        sources.update({s["name"]: rec for s, rec in zip(needs_training, done)})
        self._profiles = dict(zip(profiled, done[len(needs_training):]))  # measured source -> its profile.json
        ordered = [sources[s["name"]] for s in profile.sources]
        if not isinstance(self.executor, LocalExecutor):  # a training job gets a training's resources
            self.executor.run([self._train_job(a, seed) for a in measured for seed in a.seeds],
                              "train on measured error profiles")
        lap("estimator predictions, profiles, trainings on them")

        # locally a refiner trained on a measured profile trains inside its evaluation job, first in the queue,
        # while the other workers refine and analyse (no phase of its own with idle workers)
        pairs = [(a, seed) for a in measured + [a for a in profile.ablations if not a.measured_source]
                 for seed in a.seeds]
        jobs = [Job(_job_evaluate, (self.spec, a.name, seed, ordered, a.name == profile.default_ablation), "evaluate",
                    f"refine + analyse {a.name} s{seed}") for a, seed in pairs]
        curve_cfg = profile.section("learning_curve")
        curve_tags, curve_seeds = set(curve_cfg.get("tags", ())), curve_cfg.get("seeds")
        curves = [(a, seed) for a in profile.ablations if curve_tags & set(a.tags) for seed in a.seeds
                  if curve_seeds is None or seed in curve_seeds]
        curve_sources = curve_source_runs(ordered, curve_cfg.get("sources"))
        jobs += [Job(_job_curve, (self.spec, a.name, seed, curve_sources), "evaluate",
                     f"learning curve {a.name} s{seed}") for a, seed in curves]
        jobs += [Job(_job_baseline, (self.spec, src), "evaluate", f"analyse source {src['name']}") for src in ordered]
        free_methods = free_baseline_methods(profile)
        free = [(sources[name], method) for name, methods in free_methods.items() for method in methods]
        n_before_free = len(jobs)
        jobs += [Job(_job_free_baseline, (self.spec, src, method), "evaluate", f"{src['name']} with {method}")
                 for src, method in free]
        results = self.executor.run(jobs, "refine, evaluate, diagnose")
        free_runs, results = results[n_before_free:], results[:n_before_free]
        lap("refine + evaluate + diagnose")

        runs_by = {(a.name, seed): done["runs"] for (a, seed), done in zip(pairs, results)}
        cal_by = {(a.name, seed): done["calibration"] for (a, seed), done in zip(pairs, results)}
        curve_by = {(a.name, seed): c for (a, seed), c in zip(curves, results[len(pairs):])}
        bases = results[len(pairs) + len(curves):]
        source_runs = [SourceRun(**src, baseline=base["baseline"]) for src, base in zip(ordered, bases)]
        evaluators = {e for done in results[:len(pairs)] for e in done["evaluators"]}
        evaluators |= {base["baseline"]["evaluator"] for base in bases if base["baseline"].get("evaluator")}
        warnings = steps.ground_truth_warnings() + [w for base in bases for w in base["warnings"]]
        names = [s.name for s in source_runs]
        k = data.val.schema.num_keypoints
        fps_by_model = self._fps({canonical_hash(a.config["model"]): dict(a.config["model"]) for a in profile.ablations},
                                 k)
        ablations, samples = [], {}
        for a in profile.ablations:
            key = canonical_hash(a.config["model"])
            runs = [r for seed in a.seeds for r in runs_by[(a.name, seed)]]
            curve = learning_curve(runs, {seed: curve_by[(a.name, seed)] for seed in a.seeds
                                          if (a.name, seed) in curve_by})
            gate = None
            if a.name == profile.default_ablation:
                gate = gate_info(runs, {seed: cal_by[(a.name, seed)] for seed in a.seeds})
                for line in ([f"gate of {a.name}: off ({gate.reason})"] if gate.state == "off" else []):
                    self.log(line)
            samples[a.name] = run_samples(runs)
            ablations.append(self._ablation_result(a, runs, names, fps_by_model[key], curve, gate, samples[a.name]))
        t_paired = time.perf_counter()
        paired_comparisons(ablations, profile.comparisons, samples, self._occluded_sources())
        boot_seconds = time.perf_counter() - t_paired
        throughput = self._post_fps(free_methods)
        baselines = []
        for (src, method), run in zip(free, free_runs):
            card, speed = steps.source_spec(src["name"])["card"], throughput.get(src["name"])
            baselines.append(FreeBaseline(
                name=run.ablation, source=src["name"], method=method, card=card, run=run, throughput=speed,
                metrics=baseline_metrics(profile=profile.name, name=run.ablation, source=src["name"], method=method,
                                         card=card, run=run, throughput=speed,
                                         samples=run_samples([run]).get(src["name"], {}).get(int(run.seed)))))
        t_paired = time.perf_counter()
        own = {b.name: run_samples([b.run]) for b in baselines}
        baseline_comparisons(baselines, profile.default_ablation, samples, own)
        boot_seconds += time.perf_counter() - t_paired
        lap("fps")
        methods = self._methods(ordered)
        t_paired = time.perf_counter()
        method_comparisons(methods, {m.name: run_samples(m.runs) for m in methods})
        boot_seconds += time.perf_counter() - t_paired
        boot_seconds += sum((r.bootstrap or {}).get("seconds") or 0.0 for m in methods for r in m.runs)
        lap("refinement methods")
        # the paired bootstrap's cost: worker time inside the analyses (beside the other work of that phase) and
        # the comparisons between ablations here
        boot_seconds += sum((r.bootstrap or {}).get("seconds") or 0.0 for a in ablations for r in a.runs)
        boot_seconds += sum((b.run.bootstrap or {}).get("seconds") or 0.0 for b in baselines)
        timings["bootstrap"] = boot_seconds
        return BenchRecord(
            profile=profile.name, description=profile.description,
            data=DataInfo(kind=data.kind, description=data.description, fingerprint=data.fingerprint,
                          root=str(data.root), train_split=data.train_split, val_split=data.val_split,
                          val_images=len(data.val), val_persons=sum(1 for _ in data.val.persons()),
                          val_occluded_persons=len(data.occluded_ids), schema=data.val.schema.name,
                          occluded_split=getattr(steps, "occluded_split_info", None)),
            sources=source_runs, ablations=ablations, comparisons=[dict(c) for c in profile.comparisons],
            default_ablation=profile.default_ablation, baselines=baselines, methods=methods,
            environment=self.environment,
            timings=dict(timings, total=time.perf_counter() - t_start), cache_root=str(self.steps.cache_root),
            evaluator=", ".join(sorted(evaluators)) or "-", data_warnings=warnings)

    def _post_fps(self, methods: dict[str, list[str]]) -> dict[str, dict]:
        """Samples/s of each mmpose source plain and with its post-processing methods (as :meth:`_fps`: in this
        process with a local executor, as jobs on the cluster)."""
        for name in methods:
            self.log(f"measure estimator FPS with post-processing: {name}")
        if isinstance(self.executor, LocalExecutor):
            return {name: self.steps.post_fps(self.steps.source_spec(name), ["plain", *m]) for name, m in methods.items()}
        jobs = [Job(_job_post_fps, (self.spec, name, ["plain", *m]), "evaluate", f"FPS {name}")
                for name, m in methods.items()]
        return dict(zip(methods, self.executor.run(jobs, "estimator FPS with post-processing")))

    def _methods(self, sources: list[dict]) -> list:
        """The profile's refinement methods on every source (:func:`posefix_bench.bench.method_steps.run_methods`):
        timed one after the other in this process with a local executor, as jobs on a cluster."""
        from posefix_bench.bench.method_steps import run_methods

        jobs = None
        if not isinstance(self.executor, LocalExecutor):
            jobs = lambda pairs: self.executor.run([Job(_job_method, (self.spec, e, src), "evaluate",
                                                        f"method {e['name']} on {src['name']}") for e, src in pairs],
                                                   "refinement methods")  # noqa: E731
        return run_methods(self.steps, sources, jobs, run_of, self.log)

    def _ablation_result(self, a: Ablation, runs: list[Run], sources: list[str], fps: dict,
                         curve: list | None, gate: GateInfo | None = None, samples: dict | None = None
                         ) -> AblationResult:
        factors = ablation_factors(a.config)
        mix = MixInfo(label=factors["mix"], spec=None if a.measured_source else a.config["data"].get("mix", "paper"))
        if a.measured_source:
            path = self._profiles[a.measured_source]
            mix = MixInfo(label=factors["mix"], source=a.measured_source, profile=str(path),
                          profile_summary=profile_summary(path))
        config = shown_path(a.path)
        metrics = ablation_metrics(profile=self.profile.name, name=a.name, config=config, seeds=a.seeds,
                                   tags=a.tags, default=a.name == self.profile.default_ablation, factors=factors,
                                   model=a.config["model"], mix=mix.label, runs=runs, sources=sources, fps=fps,
                                   learning_curve=curve, gate=gate, samples=samples,
                                   occluded_sources=self._occluded_sources())
        return AblationResult(name=a.name, config=config, seeds=list(a.seeds), tags=list(a.tags), factors=factors,
                              model=dict(a.config["model"]), mix=mix, runs=runs, metrics=metrics, fps=fps, gate=gate)

    def _occluded_sources(self) -> list | None:
        """The sources of the dedicated occluded split (None without one): the occluded means are over them."""
        info = getattr(self.steps, "occluded_split_info", None)
        return list(info["sources"]) if info else None

    def _train_job(self, a: Ablation, seed: int) -> Job:
        """A training job, marked cached when its step is done (a resumed cluster run does not queue it)."""
        step, _ = self.steps.train_step(a, seed)
        return Job(_job_train, (self.spec, a.name, seed), "train", f"train {a.name} seed {seed}", cached=step.done)

    def _fps(self, models: dict[str, dict], k: int) -> dict[str, dict]:
        """FPS once per distinct network: one after the other in this process with a local executor (nothing else
        may run beside a timing), as jobs on the cluster's nodes otherwise."""
        for m in models.values():
            self.log(f"measure refiner FPS: {m.get('backbone')} {m.get('head')} {m.get('input_size')}")
        if isinstance(self.executor, LocalExecutor):
            return {key: self.steps.fps(m, k) for key, m in models.items()}
        jobs = [Job(_job_fps, (self.spec, m, k), "evaluate", f"FPS {m.get('backbone')}") for m in models.values()]
        return dict(zip(models, self.executor.run(jobs, "refiner FPS")))


def _train_cost(a: Ablation) -> float:
    """A training's relative cost for ordering the queue: iterations x batch x input pixels x backbone depth (a
    ResNet's FLOPs grow about with its depth: 18 : 34 : 50 measured 1 : 2.0 : 2.6 in training time)."""
    model, train = a.config.get("model") or {}, a.config.get("train") or {}
    w, h = model.get("input_size") or (48, 64)
    depth = int("".join(c for c in str(model.get("backbone", "resnet18")) if c.isdigit()) or 18)
    return float(train.get("max_iters") or 1) * float(train.get("batch_size") or 1) * w * h * depth


# -- job side ----------------------------------------------------------------------------------------------------
_WORKER: dict[RunSpec, BenchSteps] = {}


def _steps(spec: RunSpec) -> BenchSteps:
    """This process's steps of a run (built once per worker process: the profile is parsed once)."""
    if spec not in _WORKER:
        profile = load_profile(spec.profile, list(spec.only) if spec.only else None)
        _WORKER[spec] = BenchSteps(profile, spec.cache_root, spec.coco_root, spec.device, spec.threads,
                                   smoke=spec.smoke)
    return _WORKER[spec]


def _job_predict(spec: RunSpec, source_name: str) -> dict:
    s = _steps(spec)
    return s.predict(s.source_spec(source_name))


def _job_profile(spec: RunSpec, source_name: str) -> str:
    return str(_steps(spec).error_profile(source_name))


def _job_fps(spec: RunSpec, model: dict, k: int) -> dict:
    return _steps(spec).fps(model, k)


def _job_estimator(spec: RunSpec, source_name: str) -> dict:
    s = _steps(spec)
    return s.estimator(s.source_spec(source_name))[1]


def _job_train(spec: RunSpec, ablation: str, seed: int) -> dict:
    s = _steps(spec)
    return s.train(s.profile.ablation(ablation), seed)["summary"]


def _job_evaluate(spec: RunSpec, ablation: str, seed: int, sources: list[dict], gated: bool = False) -> dict:
    """Train (or reuse), refine every source, analyse: ``{"runs", "calibration", "evaluators"}`` of one (ablation,
    seed). With ``gated`` (the default ablation) the refiner's gate is calibrated first and one pass per source
    gives the ungated results (the runs) and the gated ones (each run's ``gate``); ``calibration`` is None
    otherwise."""
    s = _steps(spec)
    trained = s.train(s.profile.ablation(ablation), seed)
    cal = s.calibrate(trained) if gated else None
    precision = s.refine_options(trained)["precision"]  # what every refinement of this refiner ran in
    runs, evaluators = [], set()
    for src in sources:
        if cal is not None and cal["state"] == "calibrated":
            refined, gated_path = s.refine_gated(trained, cal, src)
        else:
            refined, gated_path = s.refine(trained, src), None
        analysis = s.analyse(src["results"], refined, ap_impact=False)
        run = run_of(ablation, seed, src["name"], trained, str(refined), analysis)
        run.refine_precision = precision
        view = s.occluded_split() if occluded_question(s.profile, ablation) else None
        if view is not None and src["name"] in s.occluded_split_info["sources"]:
            o_src = view.predict(view.source_spec(src["name"]))
            o_an = view.analyse(o_src["results"], view.refine(trained, o_src), ap_impact=False)
            dedicated_occluded(run, o_an)
        found = [analysis]
        if gated_path is not None:
            ga = s.analyse(src["results"], gated_path, ap_impact=False)
            d, g = analysis["diagnosis"], ga["diagnosis"]
            effect = s.gate_effect(src["results"], refined, gated_path,
                                   ap={"input": d["ap"], "ungated": d["refined"]["ap"], "gated": g["refined"]["ap"]})
            run.gate = gate_run_of(ga, effect, str(gated_path), cal["checkpoint"])
            found.append(ga)
        evaluators |= {e for a in found for e in (a["diagnosis"].get("evaluator"),
                                                   a["diagnosis"]["refined"].get("evaluator")) if e}
        runs.append(run)
    return {"runs": runs, "calibration": cal, "evaluators": sorted(evaluators)}


def _job_curve(spec: RunSpec, ablation: str, seed: int, sources: list[dict]) -> dict:
    """AP of every source refined by the training's intermediate checkpoints: {iteration: {source: AP}} (the last
    checkpoint is the final model, whose AP the ablation's runs already hold)."""
    s = _steps(spec)
    trained = s.train(s.profile.ablation(ablation), seed)
    last = int(trained["summary"]["iterations"])
    return {it: {src["name"]: s.evaluate(s.refine(trained, src, iteration=it))["AP"] for src in sources}
            for it in trained["checkpoints"] if it < last}


def _job_method(spec: RunSpec, entry: dict, source: dict) -> dict:
    return _steps(spec).method_refine(entry, source)


def _job_post_fps(spec: RunSpec, source_name: str, methods: list[str]) -> dict:
    s = _steps(spec)
    return s.post_fps(s.source_spec(source_name), methods)


def _job_free_baseline(spec: RunSpec, source: dict, method: str) -> Run:
    """A source's results with an mmpose post-processing method, analysed against its plain results in one pass."""
    s = _steps(spec)
    name = f"{source['name']}+{method}"
    with_method = s.predict(dict(s.source_spec(source["name"]), name=name, method=method))
    analysis = s.analyse(source["results"], with_method["results"], ap_impact=False)
    return run_of(name, 0, source["name"], {"summary": {}, "checkpoint": ""}, with_method["results"], analysis)


def _job_baseline(spec: RunSpec, source: dict) -> dict:
    """A source's own analysis (with AP impact) and the data warnings of its results: ``{"baseline", "warnings"}``."""
    s = _steps(spec)
    d = s.analyse(source["results"], None, ap_impact=True)
    diag = d["diagnosis"]
    base = {"ap": diag["ap"], "counts": diag["counts"], "fractions": diag["fractions"], "ap_impact": diag["ap_impact"],
            "per_confidence": diag["per_confidence"], "per_group": diag["per_group"],
            "per_keypoint": diag["per_keypoint"], "occluded": d["occluded"], "untrained": diag.get("untrained"),
            "taxonomy": diag.get("taxonomy"), "evaluator": diag.get("evaluator"), "analysis": d["path"]}
    return {"baseline": base, "warnings": s.data_checks(source["results"], source["name"])}


# -- records -----------------------------------------------------------------------------------------------------
def run_of(ablation: str, seed: int, source: str, trained: dict, refined: str, analysis: dict) -> Run:
    """The record one (ablation, seed, source) contributes: AP and transitions of its analysis, training summary."""
    d = analysis["diagnosis"]
    tr = d["transitions"]
    return Run(
        ablation=ablation, seed=int(seed), source=source, ap_before=d["ap"], ap_after=d["refined"]["ap"],
        counts_before=d["counts"], counts_after=d["refined"]["counts"], fixed=tr["fixed"], broken=tr["broken"],
        fixed_total=tr["fixed_total"], net_fixed=tr["net_fixed"], transitions=tr["matrix"], classes=tr["classes"],
        per_confidence=tr.get("per_confidence"), per_group=tr.get("per_group"),
        per_keypoint_before=d["per_keypoint"], per_keypoint_after=d["refined"]["per_keypoint"],
        per_confidence_before=d["per_confidence"], per_confidence_after=d["refined"]["per_confidence"],
        occluded=analysis["occluded"], train=trained["summary"], refined=refined, checkpoint=trained["checkpoint"],
        analysis=analysis["path"], untrained=bool(d.get("untrained") or d["refined"].get("untrained")),
        crops=analysis.get("crops") or [],
        bootstrap=(dict(analysis["bootstrap"], samples=analysis.get("bootstrap_samples"))
                   if analysis.get("bootstrap") else None))


def gate_run_of(analysis: dict, effect: dict, gated: str, checkpoint: str) -> GateRun:
    """The gated reading of a run: AP and counts of the (input, gated) analysis, what the gate accepted and the
    outcomes of :func:`posefix_bench.evaluation.gate_effect.gate_effect` (its record ``effect``)."""
    d = analysis["diagnosis"]["refined"]
    return GateRun(ap_after=d["ap"], counts_after=d["counts"], accepted_share=effect["accepted_share"],
                   refinable=effect["refinable"], accepted=effect["accepted"], per_confidence=effect["per_confidence"],
                   per_keypoint=effect["per_keypoint"], outcomes=effect["matched"], gated=gated,
                   analysis=analysis["path"], effect=effect["path"], checkpoint=checkpoint,
                   bootstrap=analysis.get("bootstrap"))


def gate_info(runs: list[Run], calibrations: dict[int, dict]) -> GateInfo:
    """The default ablation's gate from each seed's calibration (:meth:`BenchSteps.calibrate`): calibrated when every
    seed was (each seed's threshold, calibration data and summary); otherwise off with the first reason, and the
    runs' gated readings of seeds that were calibrated are dropped (a gate on some seeds only is no seed stat)."""
    off = [(seed, c) for seed, c in sorted(calibrations.items()) if c is None or c.get("state") != "calibrated"]
    if off:
        seed, c = off[0]
        for r in runs:
            r.gate = None
        reason = (c or {}).get("reason") or "not calibrated"
        return GateInfo(state="off", reason=reason if len(calibrations) == 1 else f"seed {seed}: {reason}")
    per_seed = {}
    for seed, c in sorted(calibrations.items()):
        g = c["gate"]
        per_seed[str(seed)] = {"checkpoint": c["checkpoint"], "threshold": g.get("threshold"), "data": g.get("data"),
                               "inputs": g.get("inputs"), "method": g.get("method"),
                               "summary": g.get("calibration_summary"), "seconds": c.get("seconds"),
                               "mixes": c.get("mixes"), "draws": c.get("draws"), "sources": c.get("sources") or []}
    return GateInfo(state="calibrated", calibrations=per_seed)


def curve_source_runs(sources: list[dict], names) -> list[dict]:
    """The sources a learning curve evaluates: every source, or those the profile's ``learning_curve.sources``
    names (checked by :func:`~posefix_bench.bench.profile.load_profile`; a curve costs one refinement per source
    and checkpoint)."""
    return list(sources) if names is None else [s for s in sources if s["name"] in set(names)]


def learning_curve(runs: list[Run], points: dict[int, dict]) -> list | None:
    """[{iterations, ap: {source: AP, mean over seeds}, per_seed: {seed: {source: AP}}}] from the intermediate
    checkpoints' AP ({seed: {iteration: {source: AP}}}) and the final AP of the runs (of the sources the
    intermediate points have); None without points."""
    if not points:
        return None
    per_it: dict[int, dict[str, dict[str, float]]] = {}
    for seed, curve in points.items():
        for it, aps in curve.items():
            per_it.setdefault(int(it), {})[str(seed)] = dict(aps)
    on_curve = {name for curve in points.values() for aps in curve.values() for name in aps}
    for r in runs:
        if r.seed in points and (not on_curve or r.source in on_curve):
            per_it.setdefault(int(r.train["iterations"]), {}).setdefault(str(r.seed), {})[r.source] = r.ap_after["AP"]
    out = []
    for it, seeds in sorted(per_it.items()):
        sources = sorted({name for aps in seeds.values() for name in aps})
        ap = {name: float(np.mean([aps[name] for aps in seeds.values() if name in aps])) for name in sources}
        out.append({"iterations": it, "ap": ap, "per_seed": seeds})
    return out


def free_baseline_methods(profile: Profile) -> dict[str, list[str]]:
    """{mmpose source: its free-baseline methods}: the profile's ``free_baselines.methods`` (default flip test and
    DARK) that apply to the source's card (DARK to heatmap heads only; ``free_baselines=dict(methods=[])`` turns
    them off)."""
    from posefix_bench.sources.post_processing import methods_for

    wanted = list(profile.section("free_baselines").get("methods", ("flip-test", "dark")))
    out = {}
    for s in profile.sources:
        if s.get("type") in ("mmpose", "mmpose-trained") and not s.get("method"):
            applies = methods_for(s["card"])
            methods = [m for m in wanted if m in applies and m != "plain"]
            if methods:
                out[s["name"]] = methods
    return out


def profile_summary(path) -> dict:
    """What a measured error profile holds, for the reports: its meta, matched keypoints, absent keypoints and the
    share of each class."""
    data = read_json(path, "error profile")
    counts = np.asarray(data["counts"], dtype=np.float64).sum(axis=(0, 1, 2))
    total = counts.sum()
    return {"meta": dict(data.get("meta", {})), "absent": int(np.asarray(data["absent"]).sum()),
            "keypoints": int(total),
            "fractions": {c: float(n / total) if total else None for c, n in zip(data["classes"], counts)}}


def environment_record(spec: RunSpec, executor: Executor) -> dict:
    """The machine (:func:`posefix_bench.engine.environment.environment`), how the steps ran, the fp32 matrix-multiply
    peak measured at the start (the bench's times are quoted beside it: these machines differ by 2x from day to
    day) and the precision evidence."""
    from posefix_bench.engine.environment import environment
    from posefix_bench.engine.fps import machine_peaks

    rec = environment(spec.device)
    rec.update(executor.describe(), jobs=spec.jobs, threads_per_job=spec.threads, smoke=spec.smoke)
    rec["peaks"] = machine_peaks(spec.device, threads=max(spec.jobs * spec.threads, 1))
    return rec


def time_budget(budget: dict | None, peaks: dict) -> dict | None:
    """The profile's time allowance on this machine: ``budget=dict(minutes=M, reference_gflops=G)`` holds for a
    machine with an fp32 matrix-multiply peak of G GFLOP/s; a slower machine gets M x G / peak minutes, a faster
    one still M (issue 21). None when the profile sets no budget."""
    if not budget:
        return None
    minutes, ref = float(budget["minutes"]), float(budget["reference_gflops"])
    peak = ((peaks.get("peaks") or {}).get("fp32") or {}).get("peak_gflops")
    allowance = minutes * max(1.0, ref / peak) if peak else None
    return {"minutes": minutes, "reference_gflops": ref, "peak_gflops": peak, "allowance_minutes": allowance}


def run_bench(spec: RunSpec, progress: Progress = no_progress, log: Log = lambda line: None,
              executor: Executor | None = None) -> BenchRecord:
    """Run a profile and return its record (see :class:`BenchRunner`)."""
    return BenchRunner(spec, progress, log, executor).run()
