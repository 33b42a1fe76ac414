"""The bench's cached steps: data, upstream sources, error profiles, refiner trainings, refinement, analysis, FPS.

Each method of :class:`BenchSteps` is one kind of step of :mod:`posefix_bench.bench.cache`: it names the step by a
payload of everything its output depends on, does the work under the step's lock unless a finished copy exists,
and returns a plain record of what it produced. Nothing here decides *which* steps run: that is the runner's job
(:mod:`posefix_bench.bench.runner`), and nothing here draws: the records go to :mod:`posefix_bench.reporting`.

Steps (PoseFix, Moon et al., CVPR 2019; Ronchi & Perona, ICCV 2017 for the diagnosis):

- ``data``: the generated sandbox scenes, a COCO-format root (coco-mini, COCO), or COCO-format files in any layout
  (:mod:`posefix_bench.bench.data_spec`);
- ``train``: a refiner training (resumable from its own checkpoints; torchrun where the profile asks for it);
- ``refine``: a source's results refined by a trained refiner;
- ``analyse``: one pass over (results, refined) (:func:`posefix_bench.evaluation.pair.analyse_pair`);
- ``evaluate``: COCO AP alone (the points of a learning curve);
- ``fps``: the refiner network's inference samples/s on this machine;
- the source steps (estimators, predictions, error profiles, data checks, estimator speed):
  :class:`~posefix_bench.bench.source_steps.SourceSteps`;
- the refinement-gate steps (calibration, gated refinement, the gate's effect):
  :class:`~posefix_bench.bench.gate_steps.GateSteps`;
- ``method``: a source's results refined by one of the profile's refinement methods, timed:
  :class:`~posefix_bench.bench.method_steps.MethodSteps`.

What each step's key covers besides its inputs is in :mod:`posefix_bench.bench.step_codes`.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from posefix_bench.bench.cache import StepCache, code_fingerprint, file_hash
from posefix_bench.bench.data_spec import SPLITS, is_file_spec, linked_coco_root
from posefix_bench.bench.gate_steps import GateSteps
from posefix_bench.bench.method_steps import MethodSteps
from posefix_bench.bench.profile import Ablation, Profile, custom_code_hash
from posefix_bench.bench.source_steps import SourceSteps, subset_dataset
from posefix_bench.bench.step_codes import ANALYSIS_VERSION, EVAL_CODE, FPS_CODE, REFINE_CODE, SMOKE, TRAIN_CODE
from posefix_bench.errors import PosefixError
from posefix_bench.hashing import canonical_hash
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import CocoDataset, coco_split_paths, default_coco_mini_root
from posefix_bench.structures.io import atomic_write_json, read_json

__all__ = ["BenchData", "BenchSteps", "run_samples"]

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
    occluded_ids: list = field(default_factory=list)  # annotation ids tagged lower-body occluded (sandbox only)
    # what the validation split's steps (predictions, analyses) are keyed by when it is not the profile's own
    # (the dedicated occluded split): None, the fingerprint
    val_fingerprint: str | None = None

    @property
    def val_key(self) -> str:
        return self.val_fingerprint or self.fingerprint


class BenchSteps(SourceSteps, GateSteps, MethodSteps):
    """The cached steps of one profile (see the module docstring)."""

    def __init__(self, profile: Profile, cache_root: str | Path, coco_root: str | Path | None = None,
                 device: str = "cpu", threads: int = 1, progress: Progress = no_progress, smoke: bool = False):
        self.profile = profile
        self.smoke = smoke
        self.cache_root = Path(cache_root)
        self.cache = StepCache(self.cache_root)
        self.coco_root = Path(coco_root) if coco_root else None
        self.device = device
        self.threads = threads
        self.progress = progress
        self._code: dict[tuple, str] = {}
        self._data: BenchData | None = None

    @property
    def precision_dir(self) -> Path:
        """Where precision probes keep their decision, so every worker process agrees (engine.precision)."""
        return self.cache_root / "precision"

    def code(self, parts: tuple[str, ...]) -> str:
        """Fingerprint of the package code a step runs (:mod:`~posefix_bench.bench.step_codes`), and of the user
        modules the profile imports (``custom_imports``: they may register sources, methods, backbones)."""
        if parts not in self._code:
            user = custom_code_hash(self.profile.section("custom_imports"))
            self._code[parts] = code_fingerprint(parts) if user is None else canonical_hash([code_fingerprint(parts),
                                                                                              user])
        return self._code[parts]

    # -- data ----------------------------------------------------------------------------------------------------
    def data(self) -> BenchData:
        if self._data is not None:
            return self._data
        spec = self.profile.data
        kind = spec.get("kind")
        if is_file_spec(spec):  # data=dict(type='coco', ann_file=..., img_dir=..., ...): files in any layout
            root = linked_coco_root(spec, self.cache_root, self.profile.folder / "_profile_.py")
            kind, (train_split, val_split) = "coco", SPLITS
            fingerprint = canonical_hash([file_hash(coco_split_paths(root, s)[0]) for s in SPLITS])
            desc = (f"COCO-format files {spec['ann_file']} + {spec['img_dir']} (train) / {spec['val_ann_file']} + "
                    f"{spec['val_img_dir']} (val)")
        elif kind == "sandbox":
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
        from posefix_bench.engine.sandbox import occluded_person_ids

        val = CocoDataset(coco_split_paths(root, val_split)[0])
        if self.smoke:  # the first validation images that show a person with keypoints
            fingerprint = canonical_hash([fingerprint, "smoke", SMOKE["val_images"]])
            keep = sorted({img for img, _ in val.persons()})[:SMOKE["val_images"]]
            folder = self.cache_root / "smoke" / fingerprint[:20]
            folder.mkdir(parents=True, exist_ok=True)
            val = subset_dataset(val, keep, folder / f"person_keypoints_{val_split}.json")
            desc += f"; smoke run: the first {len(keep)} validation images with persons"
        self._data = BenchData(Path(root), train_split, val_split, fingerprint, kind, desc, val,
                               occluded_person_ids(val))
        return self._data

    def occluded_split(self) -> "BenchSteps | None":
        """These steps over the profile's dedicated validation split of lower-body-occluded people (issue 27), or
        None where the profile has none: ``occluded_split=dict(images=N, seed=S, sources=[...])`` generates sandbox
        scenes like the profile's (its ``data.params``) with every person's occluder probability 1 and no training
        images; predictions, refinements and analyses on it are keyed by its own fingerprint, estimators and
        refiners are the profile's. :attr:`occluded_split_info` says what it holds and what generating it cost."""
        spec = self.profile.section("occluded_split")
        if not spec:
            return None
        if getattr(self, "_occluded_view", None) is not None:
            return self._occluded_view
        import copy

        from posefix_bench.engine.sandbox import SandboxParams, ensure_sandbox, occluded_person_ids

        data = self.data()
        if data.kind != "sandbox":
            raise PosefixError(f"profile {self.profile.name}: occluded_split needs sandbox data, not {data.kind}")
        images = SMOKE["val_images"] if self.smoke else int(spec["images"])
        params = SandboxParams(**dict(self.profile.data.get("params", {}), seed=int(spec.get("seed", 1)), train=0,
                                      val=images, occluder_p=1.0))
        step = self.cache.step("occluded-split", {"sandbox": params.digest()})  # keeps what generating it cost
        with step.lock():
            t0 = time.perf_counter()
            root = ensure_sandbox(self.cache_root / "sandbox", params, progress=self.progress)
            if not step.done:
                step.mark_done({"seconds": time.perf_counter() - t0})
        seconds = step.summary().get("seconds")  # the generation's own time, also when reused from the cache
        val = CocoDataset(coco_split_paths(root, "val")[0])
        view = copy.copy(self)
        view._data = BenchData(data.root, data.train_split, data.val_split, data.fingerprint, data.kind,
                               f"dedicated lower-body-occluded split ({root.name})", val, occluded_person_ids(val),
                               val_fingerprint=canonical_hash([data.fingerprint, "occluded-split", root.name]))
        view._occluded_view = None
        self.occluded_split_info = {
            "images": len(val), "persons": sum(1 for _ in val.persons()),
            "occluded_persons": len(view._data.occluded_ids), "seed": params.seed, "root": str(root),
            "sources": list(spec.get("sources") or [s["name"] for s in self.profile.sources]),
            "seconds": seconds}
        self._occluded_view = view
        return view

    # -- refiners ------------------------------------------------------------------------------------------------
    def train_config(self, ablation: Ablation, seed: int) -> dict:
        """The ablation's parsed config resolved for one training: data root and splits, measured mix, seed,
        threads, device."""
        import copy

        cfg = copy.deepcopy(ablation.config)
        data_cfg, train_cfg = cfg.setdefault("data", {}), cfg.setdefault("train", {})
        if ablation.measured_source:
            data_cfg["mix"] = str(self.error_profile(ablation.measured_source))
        if data_cfg.get("sandbox"):  # the ablation trains on generated scenes, whatever the profile evaluates on
            from posefix_bench.engine.sandbox import SandboxParams, ensure_sandbox

            data_cfg["root"] = str(ensure_sandbox(self.cache_root / "sandbox", SandboxParams(**data_cfg["sandbox"])))
        else:  # it trains on the profile's own data
            data = self.data()
            data_cfg["root"] = str(data.root)
            data_cfg["train_split"], data_cfg["val_split"] = data.train_split, data.val_split
        train_cfg.update(seed=int(seed), threads=self.threads, device=self.device)
        if self.smoke:
            train_cfg.update(SMOKE["train"], max_keep_ckpts=max(int(train_cfg.get("max_keep_ckpts", 1)), 2))
            data_cfg.update(max_samples=SMOKE["max_samples"], cache_images=False)
        from posefix_bench.engine.train import resolve_train_precision  # the key holds the precision used

        train_cfg["amp"] = resolve_train_precision(cfg, self.data().val.schema, self.precision_dir)["precision"]
        return cfg

    def train_step(self, ablation: Ablation, seed: int):
        """(step, resolved config) of one training, without running it."""
        import os

        cfg = self.train_config(ablation, seed)
        mix = cfg["data"].get("mix")
        data_part = {k: v for k, v in cfg["data"].items() if k not in ("root", "cache_images", "mix")}
        train_part = {k: v for k, v in cfg["train"].items() if k not in ("threads", "num_workers", "log_interval",
                                                                          "checkpoint_interval", "device")}
        payload = {
            "model": cfg["model"], "data": data_part, "train": train_part,
            "mix": file_hash(mix) if isinstance(mix, str) and os.path.isfile(mix) else mix,
            "dataset": _data_fingerprint(Path(cfg["data"]["root"]), cfg["data"]["train_split"]),
            "device": self.device, "code": self.code(TRAIN_CODE)}
        if self.launcher():
            payload["launcher"] = self.launcher()
        return self.cache.step("train", payload), cfg

    def launcher(self) -> dict | None:
        """How a training runs: in this process (None) or through torchrun (the profile's ``train_launcher``;
        a smoke run: two CPU processes; a Slurm training job: the launch its script exports)."""
        import os

        from posefix_bench.bench.executors import TORCHRUN_ENV

        launcher = self.profile.section("train_launcher")
        if launcher and self.smoke:
            return dict(launcher, nproc_per_node=SMOKE["nproc_per_node"])
        if launcher or os.environ.get(TORCHRUN_ENV):
            return dict(launcher or {})
        return None

    def train(self, ablation: Ablation, seed: int) -> dict:
        """Train (or reuse, or resume) one refiner: ``{"checkpoint", "key", "summary", "model", "checkpoints"}``
        (``checkpoints``: {iteration: path} of the training checkpoints it kept, the learning curve's points)."""
        from posefix_bench.engine.train import train

        step, cfg = self.train_step(ablation, seed)
        with step.lock():
            if not step.done:
                resume = (step.path / "checkpoints" / "latest.pth").is_file()
                t0 = time.perf_counter()
                launcher = self.launcher()
                if launcher is not None:
                    summary = _train_torchrun(cfg, step.path, resume, int(launcher.get("nproc_per_node", 1)),
                                              self.profile.section("custom_imports"))
                else:
                    summary = train(cfg, step.path, resume=resume, progress=self.progress)
                step.mark_done(dict(summary, wall_seconds=time.perf_counter() - t0))
        kept = {int(c.stem.split("_")[1]): str(c) for c in (step.path / "checkpoints").glob("iter_*.pth")}
        return {"checkpoint": str(step.path / "final.pth"), "key": step.key, "summary": step.summary(),
                "model": cfg["model"], "checkpoints": dict(sorted(kept.items())),
                "holdout": cfg["data"].get("holdout") or 0, "data_root": cfg["data"]["root"],
                "train_split": cfg["data"]["train_split"]}

    def refine_options(self, trained: dict) -> dict:
        """The profile's ``refine`` settings for a trained refiner, the precision resolved on this machine."""
        from posefix_bench.engine.precision import resolve_precision

        data = self.data()
        opts = dict(self.profile.refine, **(SMOKE["refine"] if self.smoke else {}))
        model = dict(trained["model"], num_keypoints=data.val.schema.num_keypoints)
        opts["precision"] = resolve_precision(opts.get("precision", "auto"), self.device, "infer", model,
                                              batch=opts.get("batch_size", 32), cache_dir=self.precision_dir)["precision"]
        return opts

    def refine(self, trained: dict, source: dict, iteration: int | None = None) -> Path:
        """A source's validation results refined by a trained refiner (the profile's ``refine`` settings, no gate);
        with ``iteration``, by the training's checkpoint at that iteration (a point of its learning curve)."""
        from posefix_bench.engine.refine import RefinePostProcessor
        from posefix_bench.structures.results import load_results, save_results

        data = self.data()
        opts = self.refine_options(trained)
        payload = {"train": trained["key"], "results": source["hash"], "options": opts, "code": self.code(REFINE_CODE)}
        checkpoint = trained["checkpoint"]
        if iteration is not None:
            payload["iteration"] = int(iteration)
            checkpoint = trained["checkpoints"][int(iteration)]
        step = self.cache.step("refine", payload)
        out = step.path / "refined.json"
        with step.lock():
            if not step.done:
                t0 = time.perf_counter()
                post = RefinePostProcessor(checkpoint, device=self.device, gate=False, **opts)
                refined = post.refine(data.val, load_results(source["results"], data.val))
                save_results(out, refined)
                step.mark_done({"seconds": time.perf_counter() - t0, "poses": len(refined)})
        return out

    # -- analysis ------------------------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> dict:
        """The profile's paired-bootstrap settings (``bootstrap=dict(resamples=N, seed=S)``; default 1000, 0)."""
        from posefix_bench.evaluation.bootstrap import check_bootstrap

        return check_bootstrap(self.profile.section("bootstrap"))

    def analyse(self, results_path: str | Path, refined_path: str | Path | None, ap_impact: bool) -> dict:
        """One pass over results (and their refinement) on the validation split: diagnosis, lower-body-occluded
        subset, crop-panel persons and, for a refinement, the paired bootstrap
        (:func:`posefix_bench.evaluation.pair.analyse_pair`); the bootstrap's draws go to ``bootstrap.npz`` beside
        ``analysis.json`` (the returned record's ``bootstrap_samples``: its path, None without one)."""
        import numpy as np

        from posefix_bench.evaluation.pair import CROP_COUNT, analyse_pair
        from posefix_bench.structures.io import atomic_write_with
        from posefix_bench.structures.results import load_results

        data = self.data()
        boot = self.bootstrap if refined_path else None
        step = self.cache.step("analyse", {
            "results": file_hash(results_path), "refined": file_hash(refined_path) if refined_path else None,
            "gt": data.val_key, "ap_impact": ap_impact, "crops": CROP_COUNT, "version": ANALYSIS_VERSION,
            "bootstrap": boot, "code": self.code(EVAL_CODE)})
        out, npz = step.path / "analysis.json", step.path / "bootstrap.npz"
        with step.lock():
            if not step.done:
                res = load_results(results_path, data.val)
                ref = load_results(refined_path, data.val) if refined_path else None
                rec = analyse_pair(data.val, res, ref, ap_impact=ap_impact, subset_ids=data.occluded_ids,
                                   bootstrap=boot)
                samples = rec.pop("bootstrap_samples")
                if samples is not None:
                    atomic_write_with(npz, lambda tmp: np.savez(tmp, **samples))
                atomic_write_json(out, rec)
                step.mark_done({})
        return dict(read_json(out, "analysis"), path=str(out), bootstrap_samples=str(npz) if npz.is_file() else None)

    def evaluate(self, refined_path: str | Path) -> dict:
        """COCO keypoint AP of results on the validation split (cached; the learning curve's points)."""
        from posefix_bench.evaluation.coco_eval import evaluate
        from posefix_bench.structures.results import load_results

        data = self.data()
        step = self.cache.step("evaluate", {"results": file_hash(refined_path), "gt": data.fingerprint,
                                            "code": self.code(EVAL_CODE)})
        out = step.path / "metrics.json"
        with step.lock():
            if not step.done:
                atomic_write_json(out, evaluate(data.val, load_results(refined_path, data.val))["metrics"])
                step.mark_done({})
        return read_json(out, "metrics")

    # -- speed ---------------------------------------------------------------------------------------------------
    def fps(self, model_cfg: dict, num_keypoints: int) -> dict:
        """Refiner inference samples/s on this machine (measured once per network, cached)."""
        from posefix_bench.engine.fps import refiner_fps

        opts = {"batches": [1, 32], "precisions": "auto", "threads": 2, **self.profile.fps,
                **(SMOKE["fps"] if self.smoke else {})}
        step = self.cache.step("fps", {"model": model_cfg, "k": num_keypoints, "options": opts,
                                       "device": self.device, "machine": platform.node(), "code": self.code(FPS_CODE)})
        out = step.path / "fps.json"
        with step.lock():
            if not step.done:
                atomic_write_json(out, refiner_fps(model_cfg, num_keypoints, self.device, **opts))
                step.mark_done({})
        return read_json(out, "fps record")


def run_samples(runs: list) -> dict:
    """{source: {seed: the run's bootstrap samples (arrays)}} of the runs that have them (``bootstrap.npz``)."""
    import numpy as np

    out: dict = {}
    for r in runs:
        path = (r.bootstrap or {}).get("samples")
        if path:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
            occluded = (r.bootstrap or {}).get("occluded_samples")  # the dedicated occluded split's draws
            if occluded:
                with np.load(occluded) as z:
                    arrays = {k: v for k, v in arrays.items() if not k.startswith("occluded_")}
                    arrays.update({k: z[k] for k in z.files if k.startswith("occluded_")})
                    arrays.update({f"occluded_{k}": z[k] for k in ("fixed", "broken", "fixed_identity",
                                                                   "broken_identity") if k in z.files})
            out.setdefault(r.source, {})[int(r.seed)] = arrays
    return out


def _data_fingerprint(root: Path, split: str) -> str:
    """Content fingerprint of a training split: a sandbox root is named by its parameters' hash; otherwise the
    annotation file's hash (images are taken as immutable, as COCO's are)."""
    from posefix_bench.engine.sandbox import is_sandbox_root

    if is_sandbox_root(root):
        return root.name
    return file_hash(coco_split_paths(root, split)[0])


def _train_torchrun(cfg: dict, work_dir: Path, resume: bool, nproc: int, custom_imports: dict | None = None) -> dict:
    """Train through ``torchrun`` (one process per GPU, NCCL; gloo on CPU) with the ``train`` command; in a Slurm
    training job with the launch its script exports (:func:`posefix_bench.bench.executors.torchrun_command`). The
    profile's user modules go into the written config as mmengine's ``custom_imports``, so each process imports
    them when it reads the config (a backbone they register can be built there)."""
    import json
    import subprocess

    from mmengine.config import Config

    from posefix_bench.bench.executors import torchrun_command

    cfg_file = work_dir / "bench_config.py"
    Config(dict(cfg, custom_imports=custom_imports) if (custom_imports or {}).get("imports") else cfg).dump(
        str(cfg_file))
    argv = ["-m", "posefix_bench.cli", "train", "--config", str(cfg_file), "--work-dir", str(work_dir)]
    proc = subprocess.run(torchrun_command(argv + (["--resume"] if resume else []), nproc), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise PosefixError(f"{work_dir}: torchrun training failed ({tail[0]})")
    summary = json.loads((work_dir / "train_summary.json").read_text())  # rank 0's train() record
    return dict(summary, launcher="torchrun")

