"""The bench runner: data -> upstream sources -> refiners -> refined results -> AP, diagnosis, FPS -> records.

For a profile (:mod:`posefix_bench.bench.profile`) it

1. prepares the data (the generated sandbox, coco-mini, or a COCO root);
2. runs every upstream source on the validation split (training the small mmpose estimators first where the
   profile asks for them) and diagnoses each source on its own (with the AP impact of each error type);
3. measures error profiles of estimators on the *training* split where an ablation trains on a measured mix
   (``data.mix = "measured:<source>"``), so no validation statistics leak into training;
4. trains every ablation for each of its seeds (or reuses a finished run), refines every source's results with it,
   and evaluates and diagnoses input vs refined, on all persons and on the lower-body-occluded subset;
5. measures the refiner's inference FPS once per distinct network.

Every step is cached by the content hash of its inputs (:mod:`posefix_bench.bench.cache`); a killed bench resumes
(training steps from their last checkpoint). The result is a plain record (``bench.json``) that
:mod:`posefix_bench.reporting.bench_report` turns into Markdown and PNGs.

Independent steps (trainings, refine-and-diagnose of one trained refiner) run in a pool of ``jobs`` worker
processes (:class:`concurrent.futures.ProcessPoolExecutor`) with ``threads`` torch threads each: on a 2-core machine
two single-threaded trainings give about twice the samples/s of one two-threaded training, which collapses as soon
as anything else uses a core. This is job-level parallelism of independent bench steps; scaling *one* training out
over processes or GPUs is torchrun's job (:mod:`posefix_bench.engine.distributed`). Each step holds an exclusive
lock on its folder while it works, so a bench restarted after a kill waits for (rather than collides with) a worker
of the killed run that is still finishing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from posefix_bench.bench.cache import StepCache, canonical_hash, code_fingerprint, file_hash
from posefix_bench.bench.profile import Ablation, Profile
from posefix_bench.errors import PosefixError
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import CocoDataset, coco_split_paths, default_coco_mini_root
from posefix_bench.structures.io import atomic_write_json, read_json

__all__ = ["BenchData", "BenchRunner", "RunSpec", "run_bench", "occluded_subset", "run_record"]

Log = Callable[[str], None]

# the code each step runs: a change there invalidates that step's cache
TRAIN_CODE = ("models", "engine/train.py", "engine/data.py", "engine/distributed.py", "synthesis", "codecs",
              "structures")
REFINE_CODE = ("models", "engine/refine.py", "codecs", "structures")
SOURCE_CODE = ("sources", "synthesis", "codecs", "structures")
EVAL_CODE = ("evaluation", "codecs", "structures")
FPS_CODE = ("models", "engine/throughput.py", "engine/fps.py", "engine/precision.py", "codecs")


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


@dataclass
class BenchData:
    """The profile's data: a COCO-format root, its splits, and a fingerprint of its content."""

    root: Path
    train_split: str
    val_split: str
    fingerprint: str
    kind: str
    description: str
    val: CocoDataset = field(repr=False)

    @property
    def val_images(self) -> Path:
        return coco_split_paths(self.root, self.val_split)[1]


def _rel(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _locked(path: Path):
    """Exclusive lock on a step folder (released when the holder exits, even by SIGKILL)."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "LOCK", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class BenchRunner:
    """Runs one profile; see the module docstring."""

    def __init__(self, spec: RunSpec, progress: Progress = no_progress, log: Log = lambda line: None):
        from posefix_bench.bench.profile import load_profile

        self.spec = spec
        self.profile: Profile = load_profile(spec.profile, list(spec.only) if spec.only else None)
        self.out_dir = Path(spec.out_dir)
        self.cache_root = Path(spec.cache_root)
        self.cache = StepCache(self.cache_root)
        self.coco_root = Path(spec.coco_root) if spec.coco_root else None
        self.device = spec.device
        self.progress = progress
        self.log = log
        self._code: dict[tuple, str] = {}
        self._data: BenchData | None = None

    def code(self, parts: tuple[str, ...]) -> str:
        if parts not in self._code:
            self._code[parts] = code_fingerprint(parts)
        return self._code[parts]

    def source_spec(self, name: str) -> dict:
        for s in self.profile.sources:
            if s["name"] == name:
                return s
        raise PosefixError(f"profile {self.profile.name}: no source named {name!r}")

    # -- 1. data -------------------------------------------------------------------------------------------------
    def prepare_data(self) -> BenchData:
        if self._data is not None:
            return self._data
        spec = self.profile.data
        kind = spec.get("kind")
        if kind == "sandbox":
            from posefix_bench.engine.sandbox import SandboxParams, ensure_sandbox

            params = SandboxParams(**spec.get("params", {}))
            root = ensure_sandbox(self.cache_root / "sandbox", params, progress=self.progress)
            fingerprint = root.name
            train_split, val_split = "train", "val"
            desc = (f"generated sandbox scenes (seed {params.seed}, {params.train} train / {params.val} val images of "
                    f"{params.image_size} px, lower-body occluder probability {params.occluder_p})")
        elif kind in ("coco-mini", "coco"):
            if kind == "coco-mini":
                root = self.coco_root or default_coco_mini_root()
            elif self.coco_root is None:
                raise PosefixError("profile coco needs a COCO root: make bench PROFILE=coco COCO_ROOT=/path/to/coco")
            else:
                root = self.coco_root
            train_split, val_split = spec.get("train_split", "train2017"), spec.get("val_split", "val2017")
            for split in (train_split, val_split):
                ann, images = coco_split_paths(root, split)
                if not ann.is_file() or not images.is_dir():
                    raise PosefixError(f"{root}: not a COCO root with split {split} (expected {ann} and {images})")
            fingerprint = canonical_hash([file_hash(coco_split_paths(root, s)[0]) for s in (train_split, val_split)])
            desc = f"COCO-format root {root} ({train_split} / {val_split})"
        else:
            raise PosefixError(f"profile {self.profile.name}: unknown data kind {kind!r} (sandbox, coco-mini, coco)")
        val = CocoDataset(coco_split_paths(root, val_split)[0])
        self._data = BenchData(Path(root), train_split, val_split, fingerprint, kind, desc, val)
        return self._data

    # -- 2. sources ----------------------------------------------------------------------------------------------
    def estimator_checkpoint(self, spec: dict) -> tuple[Path, dict]:
        """Train (or reuse) a small mmpose estimator on the profile's training split with mmpose's own training."""
        from posefix_bench.sources.mmpose_train import resolve_card, train_mmpose_estimator

        data = self.prepare_data()
        card = resolve_card(spec["card"])
        seed = int(spec.get("train_seed", 0))
        overrides = dict(spec.get("overrides", {}))
        step = self.cache.step("estimator", {
            "card": card.name, "card_file": file_hash(card.path), "data": data.fingerprint, "seed": seed,
            "overrides": overrides, "code": self.code(("sources",)),
        })
        with _locked(step.path):
            if not step.done:
                t0 = time.perf_counter()
                ckpt = train_mmpose_estimator(card, data.root, step.path, overrides=overrides or None,
                                              train_split=data.train_split, seed=seed, progress=self.progress)
                step.mark_done({"checkpoint": ckpt.name, "seconds": time.perf_counter() - t0, "card": card.name})
        summary = step.summary()
        return step.path / summary["checkpoint"], summary

    def build_source(self, spec: dict):
        """The source object a profile entry describes, plus metadata for the report."""
        from posefix_bench.sources import get_source

        kind = spec.get("type")
        meta: dict[str, Any] = {"type": kind}
        if kind == "synthetic":
            mix, seed = spec.get("mix", "paper"), int(spec.get("seed", 0))
            src = get_source("synthetic", mix=mix, seed=seed)
            meta.update(mix=mix, seed=seed)
        elif kind == "mmpose-trained":
            ckpt, summary = self.estimator_checkpoint(spec)
            src = get_source(summary["card"], checkpoint=str(ckpt), device=self.device)
            meta.update(card=summary["card"], train_seconds=summary.get("seconds"),
                        trained_on=self.prepare_data().description, checkpoint=_rel(ckpt, self.cache_root))
        elif kind == "mmpose":
            opts = {k: v for k, v in spec.items() if k not in ("name", "type", "card")}
            src = get_source(spec["card"], device=self.device, **opts)
        elif kind in ("mediapipe", "results-file"):
            src = get_source(kind, **{k: v for k, v in spec.items() if k not in ("name", "type")})
        else:
            raise PosefixError(f"profile {self.profile.name}: source {spec.get('name')!r} has unknown type {kind!r}")
        info = src.info.to_record()
        meta.update(info=info, trained=bool(info.get("trained", True)))
        return src, meta

    def source_results(self, spec: dict, split: str = "val", limit: int | None = None) -> dict:
        """Run a source on a split with ground-truth boxes (cached); a record with the results file."""
        from posefix_bench.sources.boxes import gt_boxes
        from posefix_bench.structures.results import save_results

        data = self.prepare_data()
        src, meta = self.build_source(spec)
        split_name = data.val_split if split == "val" else data.train_split
        step = self.cache.step("predict", {
            "source": {k: v for k, v in spec.items() if k != "name"}, "meta": meta, "data": data.fingerprint,
            "split": split_name, "limit": limit, "code": self.code(SOURCE_CODE)})
        out = step.path / "results.json"
        gt_path = step.path / "gt_subset.json" if limit else coco_split_paths(data.root, split_name)[0]
        with _locked(step.path):
            if not step.done:
                if split == "val":
                    dataset = data.val
                else:
                    dataset = CocoDataset(coco_split_paths(data.root, split_name)[0])
                    if limit:
                        dataset = _subset(dataset, limit, gt_path)
                t0 = time.perf_counter()
                results = src.predict(dataset, gt_boxes(dataset), progress=self.progress)
                seconds = time.perf_counter() - t0
                save_results(out, results)
                step.mark_done({"seconds": seconds, "poses": len(results), "images": len(dataset)})
        summary = step.summary()
        return {"name": spec["name"], "type": spec.get("type"), "meta": meta, "results": str(out),
                "hash": file_hash(out), "predict_seconds": summary.get("seconds"), "poses": summary.get("poses"),
                "images": summary.get("images"), "gt": str(gt_path)}

    def measured_profile(self, source_name: str) -> Path:
        """Error profile of a source measured on (part of) the *training* split; cached."""
        from posefix_bench.evaluation.profile import measure_profile
        from posefix_bench.reporting.diagnosis_plots import save_profile_plot
        from posefix_bench.structures.results import load_results

        rec = self.source_results(self.source_spec(source_name), split="train",
                                  limit=self.profile.raw.get("profile_train_images"))
        step = self.cache.step("profile", {"results": rec["hash"], "code": self.code(EVAL_CODE)})
        out = step.path / "profile.json"
        with _locked(step.path):
            if not step.done:
                gt = CocoDataset(rec["gt"])
                prof = measure_profile(gt, load_results(rec["results"], gt),
                                       meta={"source": source_name, "split": self.prepare_data().train_split,
                                             "images": rec["images"], "poses": rec["poses"]})
                prof.save(out)
                save_profile_plot(prof, step.path / "profile.png")
                step.mark_done({"source": source_name})
        return out

    # -- 3. refiners ---------------------------------------------------------------------------------------------
    def ablation_config(self, ablation: Ablation, seed: int):
        from posefix_bench.engine.train import load_config

        data = self.prepare_data()
        cfg = load_config(ablation.path)
        cfg.pop("bench", None)
        mix = cfg.data.get("mix", "paper")
        if isinstance(mix, str) and mix.startswith("measured:"):
            cfg.data.mix = str(self.measured_profile(mix.split(":", 1)[1]))
        if cfg.data.get("sandbox"):  # the ablation trains on generated scenes, whatever the profile evaluates on
            from posefix_bench.engine.sandbox import SandboxParams, ensure_sandbox

            cfg.data.root = str(ensure_sandbox(self.cache_root / "sandbox", SandboxParams(**cfg.data.sandbox)))
        else:  # it trains on the profile's own data
            cfg.data.root = str(data.root)
            cfg.data.train_split, cfg.data.val_split = data.train_split, data.val_split
        cfg.train.seed = int(seed)
        cfg.train.threads = self.spec.threads
        cfg.train.device = self.device
        from posefix_bench.engine.train import resolve_train_precision  # issue 21: the key holds the precision used

        cfg.train.amp = resolve_train_precision(cfg, data.val.schema, self.cache_root / "precision")["precision"]
        return cfg

    def train_step(self, ablation: Ablation, seed: int):
        """(step, config) of one training, without running it."""
        cfg = self.ablation_config(ablation, seed)
        resolved = cfg.to_dict()
        mix = resolved["data"].get("mix")
        data_part = {k: v for k, v in resolved["data"].items() if k not in ("root", "cache_images", "mix")}
        train_part = {k: v for k, v in resolved["train"].items() if k not in ("threads", "num_workers", "log_interval",
                                                                               "checkpoint_interval", "device")}
        payload = {
            "model": resolved["model"], "data": data_part, "train": train_part,
            "mix": file_hash(mix) if isinstance(mix, str) and os.path.isfile(mix) else mix,
            "dataset": _data_fingerprint(Path(cfg.data.root), cfg.data.train_split), "device": self.device,
            "code": self.code(TRAIN_CODE)}
        if self.profile.raw.get("train_launcher"):
            payload["launcher"] = self.profile.raw["train_launcher"]
        return self.cache.step("train", payload), cfg

    def train_refiner(self, ablation: Ablation, seed: int) -> dict:
        from posefix_bench.engine.train import train

        step, cfg = self.train_step(ablation, seed)
        with _locked(step.path):
            if not step.done:
                resume = (step.path / "checkpoints" / "latest.pth").is_file()
                t0 = time.perf_counter()
                launcher = self.profile.raw.get("train_launcher")
                if launcher:
                    summary = _train_torchrun(cfg, step.path, resume, int(launcher.get("nproc_per_node", 1)))
                else:
                    summary = train(cfg, step.path, resume=resume, progress=self.progress)
                step.mark_done(dict(summary, wall_seconds=time.perf_counter() - t0))
        mix = cfg.data.mix
        return {"checkpoint": str(step.path / "final.pth"), "key": step.key, "summary": step.summary(),
                "model": cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model),
                "mix": f"measured profile ({Path(mix).parent.name})" if str(mix).endswith(".json") else mix}

    def refine(self, trained: dict, source: dict) -> Path:
        from posefix_bench.engine.refine import RefinePostProcessor
        from posefix_bench.structures.results import load_results, save_results

        data = self.prepare_data()
        opts = dict(self.profile.refine)
        from posefix_bench.engine.precision import resolve_precision  # issue 21: the key holds the precision used

        opts["precision"] = resolve_precision(opts.get("precision", "auto"), self.device, "infer", dict(
            trained["model"], num_keypoints=data.val.schema.num_keypoints), batch=opts.get("batch_size", 32),
            cache_dir=self.cache_root / "precision")["precision"]
        step = self.cache.step("refine", {"train": trained["key"], "results": source["hash"], "options": opts,
                                          "code": self.code(REFINE_CODE)})
        out = step.path / "refined.json"
        with _locked(step.path):
            if not step.done:
                t0 = time.perf_counter()
                post = RefinePostProcessor(trained["checkpoint"], device=self.device, **opts)
                refined = post.refine(data.val, load_results(source["results"], data.val))
                save_results(out, refined)
                step.mark_done({"seconds": time.perf_counter() - t0, "poses": len(refined)})
        return out

    # -- 4. analysis ---------------------------------------------------------------------------------------------
    def analyse(self, results_path: str | Path, refined_path: str | Path | None, ap_impact: bool) -> dict:
        """Diagnosis (and AP) of results, optionally against refined results, plus the lower-body-occluded subset."""
        from posefix_bench.evaluation.diagnosis import diagnose
        from posefix_bench.structures.results import load_results

        data = self.prepare_data()
        step = self.cache.step("analyse", {
            "results": file_hash(results_path), "refined": file_hash(refined_path) if refined_path else None,
            "gt": data.fingerprint, "ap_impact": ap_impact, "code": self.code(EVAL_CODE)})
        out = step.path / "analysis.json"
        with _locked(step.path):
            if not step.done:
                res = load_results(results_path, data.val)
                ref = load_results(refined_path, data.val) if refined_path else None
                atomic_write_json(out, {"diagnosis": diagnose(data.val, res, ref, ap_impact=ap_impact),
                                        "occluded": occluded_subset(data.val, res, ref)})
                step.mark_done({})
        return dict(read_json(out, "analysis"), path=str(out))

    def evaluate_ablation_seed(self, ablation: Ablation, seed: int, sources: list[dict]) -> list[dict]:
        """Train (or reuse), refine every source, analyse: the run records of one (ablation, seed)."""
        trained = self.train_refiner(ablation, seed)
        runs = []
        for src in self.progress(sources, total=len(sources), desc=f"refine {ablation.name} s{seed}"):
            refined = self.refine(trained, src)
            analysis = self.analyse(src["results"], refined, ap_impact=False)
            runs.append(run_record(ablation, seed, src, trained, refined, analysis))
        return runs

    # -- 5. FPS --------------------------------------------------------------------------------------------------
    def fps(self, model_cfg: dict, num_keypoints: int) -> dict:
        """Refiner inference samples/s on this machine (measured once per network, cached)."""
        opts = {"batches": [1, 32], "precisions": "auto", "threads": 2, **self.profile.fps}
        step = self.cache.step("fps", {"model": model_cfg, "k": num_keypoints, "options": opts,
                                       "device": self.device, "machine": platform.node(), "code": self.code(FPS_CODE)})
        out = step.path / "fps.json"
        with _locked(step.path):
            if not step.done:
                atomic_write_json(out, measure_refiner_fps(model_cfg, num_keypoints, self.device, **opts))
                step.mark_done({})
        return read_json(out, "fps record")

    # -- the whole run -------------------------------------------------------------------------------------------
    def run(self) -> dict:
        t_start = time.perf_counter()
        timings: dict[str, float] = {}

        def lap(name: str, t0: float) -> float:
            timings[name] = time.perf_counter() - t0
            return time.perf_counter()

        t = time.perf_counter()
        data = self.prepare_data()
        self.log(f"data: {data.description}")
        t = lap("data", t)
        untrained_needed = [s for s in self.profile.sources if s.get("type") == "mmpose-trained"]
        sources = {s["name"]: self.source_results(s) for s in self.profile.sources if s not in untrained_needed}
        t = lap("sources", t)

        measured = {a.name for a in self.profile.ablations if _measured_mix(a)}
        first = [(_job_estimator, (s["name"],)) for s in untrained_needed]
        first += [(_job_train, (a.name, seed)) for a in self.profile.ablations if a.name not in measured
                  for seed in a.seeds]
        self._pool(first, "train estimators and refiners")
        t = lap("training", t)

        for s in untrained_needed:
            sources[s["name"]] = self.source_results(s)
        for name in {_measured_mix(a) for a in self.profile.ablations if _measured_mix(a)}:
            self.measured_profile(name)
        ordered = [sources[s["name"]] for s in self.profile.sources]
        t = lap("estimator predictions and profiles", t)

        jobs = [(_job_evaluate, (a.name, seed, ordered)) for a in self.profile.ablations if a.name in measured
                for seed in a.seeds]
        jobs += [(_job_evaluate, (a.name, seed, ordered)) for a in self.profile.ablations if a.name not in measured
                 for seed in a.seeds]
        jobs += [(_job_baseline, (src,)) for src in ordered]
        results = self._pool(jobs, "refine, evaluate, diagnose")
        t = lap("refine + evaluate + diagnose", t)

        n_eval = len(jobs) - len(ordered)
        runs_by = {}
        for (fn, args), res in zip(jobs[:n_eval], results[:n_eval]):
            runs_by[(args[0], args[1])] = res
        for src, base in zip(ordered, results[n_eval:]):
            src["baseline"] = base
        ablations = []
        k = data.val.schema.num_keypoints
        for a in self.profile.ablations:
            runs = [r for seed in a.seeds for r in runs_by[(a.name, seed)]]
            model = runs[0]["model"]
            ablations.append({"name": a.name, "config": _rel(a.path, self.profile.folder.parent.parent),
                              "seeds": list(a.seeds), "tags": list(a.tags), "model": model,
                              "mix": runs[0]["mix"], "runs": runs})
        fps_by_model: dict[str, dict] = {}
        for a in ablations:
            key = canonical_hash(a["model"])
            if key not in fps_by_model:
                self.log(f"measure refiner FPS: {a['model'].get('backbone')} {a['model'].get('head')} "
                         f"{a['model'].get('input_size')}")
                fps_by_model[key] = self.fps(a["model"], k)
            a["fps"] = fps_by_model[key]
        lap("fps", t)
        occluded = _occluded_ids(data.val)
        return {
            "format": "posefix-bench/bench/v1",
            "profile": self.profile.name,
            "description": self.profile.description,
            "data": {"kind": data.kind, "description": data.description, "fingerprint": data.fingerprint,
                     "root": str(data.root), "val_split": data.val_split,
                     "val_images": len(data.val), "val_persons": sum(1 for _ in data.val.persons()),
                     "val_occluded_persons": len(occluded), "schema": data.val.schema.name},
            "sources": ordered,
            "ablations": ablations,
            "comparisons": list(self.profile.comparisons),
            "default_ablation": self.profile.default_ablation,
            "environment": environment_record(self.device, self.spec),
            "timings": dict(timings, total=time.perf_counter() - t_start),
        }

    def _pool(self, calls: list[tuple[Callable, tuple]], desc: str) -> list:
        """Run ``fn(job_index, *args)`` for every call on ``jobs`` worker processes; results in call order."""
        if not calls:
            return []
        if self.spec.jobs <= 1:
            import torch

            torch.set_num_threads(self.spec.threads)
            _WORKER.update(spec=self.spec, queue=None, runner=self)
            return [fn(i, *args) for i, (fn, args) in enumerate(self.progress(calls, total=len(calls), desc=desc))]
        import multiprocessing as mp
        import queue as queue_mod
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        ctx = mp.get_context("spawn")  # never fork a process that holds torch's thread pools
        events = ctx.Queue()
        with ProcessPoolExecutor(max_workers=self.spec.jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(self.spec, events)) as pool:
            futures = [pool.submit(fn, i, *args) for i, (fn, args) in enumerate(calls)]
            names = {f: _job_name(fn, args) for f, (fn, args) in zip(futures, calls)}

            def ticks():
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for f in done:
                        if f.exception() is not None:
                            for other in pending:
                                other.cancel()
                            raise f.exception()
                        self.log(f"done: {names[f]}")
                        yield None
                    with contextlib.suppress(queue_mod.Empty):
                        while True:
                            events.get_nowait()

            for _ in self.progress(ticks(), total=len(calls), desc=desc):
                pass
            return [f.result() for f in futures]


# -- worker side -------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(spec: RunSpec, events) -> None:
    import torch

    torch.set_num_threads(spec.threads)
    _WORKER.update(spec=spec, queue=events)


def _runner() -> BenchRunner:
    if "runner" not in _WORKER:
        _WORKER["runner"] = BenchRunner(_WORKER["spec"])
    return _WORKER["runner"]


def _job_name(fn, args) -> str:
    return {"_job_estimator": "train estimator {}", "_job_train": "train {} seed {}",
            "_job_evaluate": "refine + diagnose {} seed {}", "_job_baseline": "diagnose source {}"}[fn.__name__].format(
        *[a["name"] if isinstance(a, dict) else a for a in args[:2]])


def _job_estimator(i: int, source_name: str) -> dict:
    r = _runner()
    return r.estimator_checkpoint(r.source_spec(source_name))[1]


def _job_train(i: int, ablation: str, seed: int) -> dict:
    r = _runner()
    return r.train_refiner(r.profile.ablation(ablation), seed)["summary"]


def _job_evaluate(i: int, ablation: str, seed: int, sources: list[dict]) -> list[dict]:
    r = _runner()
    return r.evaluate_ablation_seed(r.profile.ablation(ablation), seed, sources)


def _job_baseline(i: int, source: dict) -> dict:
    d = _runner().analyse(source["results"], None, ap_impact=True)
    diag = d["diagnosis"]
    return {"ap": diag["ap"], "counts": diag["counts"], "fractions": diag["fractions"], "ap_impact": diag["ap_impact"],
            "per_confidence": diag["per_confidence"], "per_group": diag["per_group"],
            "per_keypoint": diag["per_keypoint"], "occluded": d["occluded"], "untrained": diag.get("untrained"),
            "analysis": d["path"]}


def _data_fingerprint(root: Path, split: str) -> str:
    """Content fingerprint of a training split: a sandbox root is named by its parameters' hash; otherwise the
    annotation file's hash (images are taken as immutable, as COCO's are)."""
    from posefix_bench.engine.sandbox import is_sandbox_root

    if is_sandbox_root(root):
        return root.name
    return file_hash(coco_split_paths(root, split)[0])


def _train_torchrun(cfg, work_dir: Path, resume: bool, nproc: int) -> dict:
    """Train through ``torchrun`` (one process per GPU, NCCL; gloo on CPU) with the ``train`` command."""
    import subprocess
    import sys

    cfg_file = work_dir / "bench_config.py"
    cfg.dump(str(cfg_file))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "posefix_bench.cli", "train", "--config", str(cfg_file), "--work-dir", str(work_dir)]
    proc = subprocess.run(cmd + (["--resume"] if resume else []), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise PosefixError(f"{work_dir}: torchrun training failed ({tail[0]})")
    lines = (work_dir / "train_log.jsonl").read_text().strip().splitlines()
    last = __import__("json").loads(lines[-1]) if lines else {}
    return {"launcher": "torchrun", "world_size": nproc, "iterations": last.get("iter"),
            "final_loss": last.get("loss"), "samples_per_s": last.get("samples_per_s"),
            "checkpoint": str(work_dir / "final.pth")}


def _measured_mix(a: Ablation) -> str | None:
    from posefix_bench.engine.train import load_config

    mix = load_config(a.path).to_dict().get("data", {}).get("mix")
    return mix.split(":", 1)[1] if isinstance(mix, str) and mix.startswith("measured:") else None


# -- records -----------------------------------------------------------------------------------------------------
def _subset(dataset: CocoDataset, limit: int, path: Path) -> CocoDataset:
    """The first ``limit`` images of a dataset as its own annotation file (for profiling on part of a split)."""
    ids = set(dataset.image_ids[:limit])
    d = dataset.coco.dataset
    sub = {**d, "images": [i for i in d["images"] if i["id"] in ids],
           "annotations": [a for a in d["annotations"] if a["image_id"] in ids]}
    atomic_write_json(path, sub, indent=None)
    return CocoDataset(path, image_dir=dataset.image_dir)


def _occluded_ids(gt: CocoDataset) -> list[int]:
    from posefix_bench.engine.sandbox import occluded_person_ids

    return occluded_person_ids(gt)


def occluded_subset(gt: CocoDataset, results: list[dict], refined: list[dict] | None) -> dict | None:
    """AP on the lower-body-occluded persons, and what refinement did to their lower-body keypoints.

    ``None`` when the dataset tags no such person (real COCO carries no tag).
    """
    from posefix_bench.codecs.taxonomy import GOOD
    from posefix_bench.evaluation.coco_eval import evaluate
    from posefix_bench.evaluation.diagnosis import classify

    ids = _occluded_ids(gt)
    if not ids:
        return None
    rec: dict[str, Any] = {"persons": len(ids), "ap_before": evaluate(gt, results, person_ids=ids)["metrics"]["AP"]}
    if refined is None:
        return rec
    rec["ap_after"] = evaluate(gt, refined, person_ids=ids)["metrics"]["AP"]
    before, after = classify(gt, results), classify(gt, refined)
    lower = np.asarray(gt.schema.groups.get("lower", ()), dtype=np.int64)
    subset = np.asarray(ids, dtype=np.int64)
    same = (before.det_ann_id >= 0) & (before.det_ann_id == after.det_ann_id)

    def rows(t):
        return same[t.result_index] & np.isin(t.ann_id, subset) & np.isin(t.joint, lower)

    kb, ka = rows(before), rows(after)
    cin, cout = before.cls[kb], after.cls[ka]
    rec.update(lower_keypoints=int(kb.sum()), lower_good_before=int((cin == GOOD).sum()),
               lower_good_after=int((cout == GOOD).sum()), lower_fixed=int(((cin != GOOD) & (cout == GOOD)).sum()),
               lower_broken=int(((cin == GOOD) & (cout != GOOD)).sum()),
               lower_ks_before=float(before.ks_own[kb].mean()) if kb.any() else None,
               lower_ks_after=float(after.ks_own[ka].mean()) if ka.any() else None)
    return rec


def run_record(ablation: Ablation, seed: int, src: dict, trained: dict, refined: Path, analysis: dict) -> dict:
    """The numbers one (ablation, seed, source) contributes to the reports."""
    d = analysis["diagnosis"]
    tr = d["transitions"]
    return {
        "ablation": ablation.name, "seed": seed, "source": src["name"],
        "ap_before": d["ap"], "ap_after": d["refined"]["ap"],
        "counts_before": d["counts"], "counts_after": d["refined"]["counts"],
        "fixed": tr["fixed"], "broken": tr["broken"], "fixed_total": tr["fixed_total"], "net_fixed": tr["net_fixed"],
        "transitions": tr["matrix"], "classes": tr["classes"],
        "per_confidence": tr.get("per_confidence"), "per_group": tr.get("per_group"),
        "per_keypoint_before": d["per_keypoint"], "per_keypoint_after": d["refined"]["per_keypoint"],
        "per_confidence_before": d["per_confidence"], "per_confidence_after": d["refined"]["per_confidence"],
        "occluded": analysis["occluded"],
        "train": trained["summary"], "mix": trained["mix"], "model": trained["model"],
        "refined": str(refined), "checkpoint": trained["checkpoint"], "analysis": analysis["path"],
        "results": src["results"],
        "untrained": bool(d.get("untrained") or d["refined"].get("untrained")),
    }


def measure_refiner_fps(model_cfg: dict, num_keypoints: int, device: str, batches=(1, 32),
                        precisions="auto", threads: int = 2) -> dict:
    """Inference samples/s of a refiner network per batch and precision (:func:`posefix_bench.engine.fps.refiner_fps`:
    emulated precisions are listed in ``emulated``, not timed)."""
    from posefix_bench.engine.fps import refiner_fps

    return refiner_fps(model_cfg, num_keypoints, device, batches, precisions, threads)


def environment_record(device: str, spec: RunSpec) -> dict:
    import torch

    from posefix_bench import __version__
    from posefix_bench.engine.throughput import environment

    rec = environment(device)
    rec.update(posefix_bench=__version__, python=platform.python_version(), torch=torch.__version__,
               numpy=np.__version__, jobs=spec.jobs, threads_per_job=spec.threads)
    try:
        import mmpose

        rec["mmpose"] = mmpose.__version__
    except ImportError:  # pragma: no cover - mmpose is a pinned dependency
        pass
    return rec


def run_bench(spec: RunSpec, progress: Progress = no_progress, log: Log = lambda line: None) -> dict:
    """Run a profile and return its record (see :class:`BenchRunner`)."""
    return BenchRunner(spec, progress, log).run()
