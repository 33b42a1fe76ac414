"""The bench's cached steps: data, upstream sources, error profiles, refiner trainings, refinement, analysis, FPS.

Each method of :class:`BenchSteps` is one kind of step of :mod:`posefix_bench.bench.cache`: it names the step by a
payload of everything its output depends on, does the work under the step's lock unless a finished copy exists,
and returns a plain record of what it produced. Nothing here decides *which* steps run: that is the runner's job
(:mod:`posefix_bench.bench.runner`), and nothing here draws: the records go to :mod:`posefix_bench.reporting`.

Steps (PoseFix, Moon et al., CVPR 2019; Ronchi & Perona, ICCV 2017 for the diagnosis):

- ``data``: the generated sandbox scenes, or a COCO-format root (coco-mini, COCO);
- ``estimator``: a small mmpose estimator trained on the training split with mmpose's own training;
- ``predict``: a source run on a split with ground-truth boxes (a results file);
- ``profile``: an estimator's error profile measured on (part of) the *training* split, for ``measured:`` mixes,
  so no validation statistics leak into training;
- ``train``: a refiner training (resumable from its own checkpoints; torchrun where the profile asks for it);
- ``calibrate``: the refinement gate of a trained refiner calibrated on training images it did not train on
  (:func:`posefix_bench.engine.calibrate.calibrate_checkpoint`; the default ablation's refiners, issue 17);
- ``refine``: a source's results refined by a trained refiner; with a calibrated gate, one pass gives both the
  ungated and the gated results (:meth:`~posefix_bench.engine.refine.RefinePostProcessor.refine_detailed`);
- ``analyse``: one pass over (results, refined) (:func:`posefix_bench.evaluation.pair.analyse_pair`);
- ``gate``: what the gate did on a source (:func:`posefix_bench.evaluation.gate_effect.gate_effect`);
- ``checks``: the data warnings of a results file (:func:`posefix_bench.structures.checks.check_results`);
- ``evaluate``: COCO AP alone (the points of a learning curve);
- ``fps``: the refiner network's inference samples/s on this machine.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posefix_bench.bench.cache import StepCache, code_fingerprint, file_hash
from posefix_bench.bench.profile import Ablation, Profile
from posefix_bench.errors import PosefixError
from posefix_bench.hashing import canonical_hash
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import CocoDataset, coco_split_paths, default_coco_mini_root
from posefix_bench.structures.io import atomic_write_json, read_json

__all__ = ["BenchData", "BenchSteps"]

# the code each step runs: a change there invalidates that step's cache
TRAIN_CODE = ("models", "engine/train.py", "engine/data.py", "engine/distributed.py", "synthesis", "codecs",
              "structures")
REFINE_CODE = ("models", "engine/refine.py", "codecs", "structures")
SOURCE_CODE = ("sources", "synthesis", "codecs", "structures")
EVAL_CODE = ("evaluation", "codecs", "structures")
CALIBRATE_CODE = ("models", "engine/calibrate.py", "engine/gate.py", "engine/refine.py", "engine/data.py",
                  "engine/train.py", "synthesis", "evaluation", "codecs", "structures")
CHECKS_CODE = ("structures",)
FPS_CODE = ("models", "engine/throughput.py", "engine/fps.py", "engine/precision.py", "codecs")
ANALYSIS_VERSION = 2  # 2: the analysis also picks the crop panel's persons
# ``--smoke``: every step of a profile at the smallest size that still runs its real code (issue 20): a few
# validation images, two training iterations on 8 persons through torchrun's two CPU (gloo) processes, fp32
# (no precision probe), batch-1 FPS
SMOKE = {"val_images": 4, "max_samples": 8, "nproc_per_node": 2,
         "train": {"max_iters": 2, "batch_size": 4, "checkpoint_interval": 1, "log_interval": 1, "num_workers": 0,
                   "amp": "fp32", "threads": 1},
         "refine": {"batch_size": 4, "precision": "fp32"},
         "calibrate": {"mixes": ["paper", "none"], "draws": 1},
         "fps": {"batches": [1], "precisions": ["fp32"], "threads": 1}}


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


def _rel(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


class BenchSteps:
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
        if parts not in self._code:
            self._code[parts] = code_fingerprint(parts)
        return self._code[parts]

    # -- data ----------------------------------------------------------------------------------------------------
    def data(self) -> BenchData:
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
        from posefix_bench.engine.sandbox import occluded_person_ids

        val = CocoDataset(coco_split_paths(root, val_split)[0])
        if self.smoke:  # the first validation images that show a person with keypoints
            fingerprint = canonical_hash([fingerprint, "smoke", SMOKE["val_images"]])
            keep = sorted({img for img, _ in val.persons()})[:SMOKE["val_images"]]
            folder = self.cache_root / "smoke" / fingerprint[:20]
            folder.mkdir(parents=True, exist_ok=True)
            val = _subset(val, keep, folder / f"person_keypoints_{val_split}.json")
            desc += f"; smoke run: the first {len(keep)} validation images with persons"
        self._data = BenchData(Path(root), train_split, val_split, fingerprint, kind, desc, val,
                               occluded_person_ids(val))
        return self._data

    # -- sources -------------------------------------------------------------------------------------------------
    def source_spec(self, name: str) -> dict:
        for s in self.profile.sources:
            if s["name"] == name:
                return s
        raise PosefixError(f"profile {self.profile.name}: no source named {name!r}")

    def estimator(self, spec: dict) -> tuple[Path, dict]:
        """Train (or reuse) a small mmpose estimator on the profile's training split with mmpose's own training."""
        from posefix_bench.sources.mmpose_train import resolve_card, train_mmpose_estimator

        data = self.data()
        card = resolve_card(spec["card"])
        seed = int(spec.get("train_seed", 0))
        overrides = dict(spec.get("overrides", {}))
        step = self.cache.step("estimator", {
            "card": card.name, "card_file": file_hash(card.path), "data": data.fingerprint, "seed": seed,
            "overrides": overrides, "code": self.code(("sources",)),
        })
        with step.lock():
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
            ckpt, summary = self.estimator(spec)
            src = get_source(summary["card"], checkpoint=str(ckpt), device=self.device)
            meta.update(card=summary["card"], train_seconds=summary.get("seconds"),
                        trained_on=self.data().description, checkpoint=_rel(ckpt, self.cache_root))
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

    def predict(self, spec: dict, split: str = "val", limit: int | None = None) -> dict:
        """Run a source on a split with ground-truth boxes (cached); a record with the results file."""
        from posefix_bench.sources.boxes import gt_boxes
        from posefix_bench.structures.results import save_results

        data = self.data()
        src, meta = self.build_source(spec)
        split_name = data.val_split if split == "val" else data.train_split
        step = self.cache.step("predict", {
            "source": {k: v for k, v in spec.items() if k != "name"}, "meta": meta, "data": data.fingerprint,
            "split": split_name, "limit": limit, "code": self.code(SOURCE_CODE)})
        out = step.path / "results.json"
        if limit:
            gt_path = step.path / "gt_subset.json"
        else:
            gt_path = Path(data.val.path) if split == "val" else coco_split_paths(data.root, split_name)[0]
        with step.lock():
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

    def error_profile(self, source_name: str) -> Path:
        """Error profile of a source measured on (part of) the *training* split (``profile.json``); cached."""
        from posefix_bench.evaluation.profile import measure_profile
        from posefix_bench.structures.results import load_results

        rec = self.predict(self.source_spec(source_name), split="train",
                           limit=self.profile.raw.get("profile_train_images"))
        step = self.cache.step("profile", {"results": rec["hash"], "code": self.code(EVAL_CODE)})
        out = step.path / "profile.json"
        with step.lock():
            if not step.done:
                gt = CocoDataset(rec["gt"])
                prof = measure_profile(gt, load_results(rec["results"], gt),
                                       meta={"source": source_name, "split": self.data().train_split,
                                             "images": rec["images"], "poses": rec["poses"]})
                prof.save(out)
                step.mark_done({"source": source_name})
        return out

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

        launcher = self.profile.raw.get("train_launcher")
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
                    summary = _train_torchrun(cfg, step.path, resume, int(launcher.get("nproc_per_node", 1)))
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

    # -- the refinement gate (issue 17) --------------------------------------------------------------------------
    def calibration_options(self) -> dict:
        """How the gate is calibrated: :func:`~posefix_bench.engine.calibrate.calibrate_checkpoint`'s defaults,
        then the profile's ``gate`` section, then the smoke run's smaller settings."""
        from posefix_bench.engine import calibrate as cal

        opts = {"mixes": list(cal.DEFAULT_MIXES), "draws": cal.DEFAULT_DRAWS, "seed": 0, "keep": cal.DEFAULT_KEEP,
                "l2": cal.DEFAULT_L2, "tolerance": cal.DEFAULT_TOLERANCE}
        opts.update(self.profile.raw.get("gate") or {})
        if self.smoke:
            opts.update(SMOKE["calibrate"])
        return opts

    def calibration_plan(self, trained: dict) -> tuple[dict | None, str | None]:
        """(what to calibrate a trained refiner on, or None; why not, or None).

        A refiner that held training images out (``data.holdout``) is calibrated on them; one that trained on every
        image is calibrated on the training split of a COCO-format profile's data root (minus any image it trained
        on); a sandbox profile then has nothing to calibrate on.
        """
        if float(trained.get("holdout") or 0) > 0:
            return {"data": "holdout"}, None
        data = self.data()
        if data.kind in ("coco-mini", "coco"):
            ann = coco_split_paths(data.root, data.train_split)[0]
            own = coco_split_paths(trained.get("data_root") or "", trained.get("train_split") or "")[0]
            if trained.get("data_root") and own.resolve() == ann.resolve():
                return None, (f"the refiner trained on every image of the profile's training split {data.train_split} "
                              "(data.holdout is 0): no training image is left that it has not seen")
            return {"data": "split", "root": str(data.root), "split": data.train_split,
                    "annotations": file_hash(ann)}, None
        return None, ("the refiner trained on every training image (data.holdout is 0) and a sandbox profile has no "
                      "other training split to calibrate on")

    def calibrate(self, trained: dict) -> dict:
        """The trained refiner's gate, calibrated and stored in a copy of its checkpoint (cached):
        ``{"state": "calibrated", "key", "checkpoint", "gate" (summary), "seconds"}``, or ``{"state": "off",
        "reason"}`` where there is nothing to calibrate on or calibration fails (not cached: a rerun tries again)."""
        from posefix_bench.engine.calibrate import calibrate_checkpoint, gate_summary

        plan, reason = self.calibration_plan(trained)
        if plan is None:
            return {"state": "off", "reason": reason}
        opts = self.calibration_options()
        refine = self.refine_options(trained)
        payload = {"train": trained["key"], "plan": {k: v for k, v in plan.items() if k != "root"}, "options": opts,
                   "refine": {"batch_size": refine.get("batch_size", 32), "precision": refine["precision"]},
                   "device": self.device, "code": self.code(CALIBRATE_CODE)}
        step = self.cache.step("calibrate", payload)
        out = step.path / "calibrated.pth"
        with step.lock():
            if not step.done:
                t0 = time.perf_counter()
                try:
                    rec = calibrate_checkpoint(
                        trained["checkpoint"], out, plan.get("root"), plan.get("split"), opts["mixes"],
                        int(opts["draws"]), int(opts["seed"]), keep=float(opts["keep"]), l2=float(opts["l2"]),
                        tolerance=float(opts["tolerance"]), device=self.device,
                        batch_size=int(refine.get("batch_size", 32)), precision=refine["precision"],
                        progress=self.progress)
                except PosefixError as e:  # the reason goes into reports: no absolute path of this machine
                    from posefix_bench.record.schema import shown_path

                    data = self.data()
                    reason = str(e).replace(str(data.root), shown_path(data.root, self.cache_root))
                    return {"state": "off", "reason": "calibration failed: " + reason.replace(str(self.cache_root),
                                                                                               "<cache>")}
                step.mark_done({"gate": gate_summary(rec["gate"]), "seconds": time.perf_counter() - t0})
        summary = step.summary()
        return {"state": "calibrated", "key": step.key, "checkpoint": str(out), "gate": summary["gate"],
                "seconds": summary.get("seconds")}

    def refine_gated(self, trained: dict, calibrated: dict, source: dict) -> tuple[Path, Path]:
        """A source's validation results refined once by the calibrated checkpoint: (ungated results, gated
        results with ``refine_accepted``), both from the same pass (cached)."""
        from posefix_bench.engine.refine import RefinePostProcessor
        from posefix_bench.structures.results import load_results, save_results

        data = self.data()
        opts = self.refine_options(trained)
        step = self.cache.step("refine", {"train": trained["key"], "gate": calibrated["key"], "results": source["hash"],
                                          "options": opts, "code": self.code(REFINE_CODE + ("engine/gate.py",))})
        ungated, gated = step.path / "refined.json", step.path / "gated.json"
        with step.lock():
            if not step.done:
                t0 = time.perf_counter()
                post = RefinePostProcessor(calibrated["checkpoint"], device=self.device, gate=True, **opts)
                if post.gate is None:
                    raise PosefixError(f"{calibrated['checkpoint']}: the calibrated checkpoint holds no gate")
                res = post.refine_detailed(data.val, load_results(source["results"], data.val))
                save_results(ungated, res.ungated)
                save_results(gated, res.gated)
                step.mark_done({"seconds": time.perf_counter() - t0, "poses": len(res.ungated)})
        return ungated, gated

    def gate_effect(self, results_path: str | Path, ungated_path: str | Path, gated_path: str | Path,
                    ap: dict) -> dict:
        """What the gate did on one source (:func:`~posefix_bench.evaluation.gate_effect.gate_effect`), cached; the
        AP of input, ungated and gated results (``ap``) comes from their analyses, not computed again."""
        from posefix_bench.evaluation.gate_effect import gate_effect
        from posefix_bench.structures.results import load_results

        data = self.data()
        step = self.cache.step("gate", {
            "results": file_hash(results_path), "ungated": file_hash(ungated_path), "gated": file_hash(gated_path),
            "gt": data.fingerprint, "code": self.code(EVAL_CODE)})
        out = step.path / "gate_effect.json"
        with step.lock():
            if not step.done:
                recs = [load_results(p, data.val) for p in (results_path, ungated_path, gated_path)]
                atomic_write_json(out, gate_effect(data.val, *recs, ap=ap))
                step.mark_done({})
        return dict(read_json(out, "gate effect"), path=str(out))

    def ground_truth_warnings(self) -> list[str]:
        """The data warnings of the validation ground truth (one line each, its path as reports show it)."""
        from posefix_bench.record.schema import shown_path
        from posefix_bench.structures.checks import check_ground_truth

        return [w.message.replace(w.source, shown_path(w.source, self.cache_root))
                for w in check_ground_truth(self.data().val)]

    def data_checks(self, results_path: str | Path, name: str) -> list[str]:
        """The data warnings of source ``name``'s results file on the validation split (one line each, naming the
        source; cached)."""
        from posefix_bench.structures.checks import check_results
        from posefix_bench.structures.results import load_results

        data = self.data()
        step = self.cache.step("checks", {"results": file_hash(results_path), "name": name, "gt": data.fingerprint,
                                          "code": self.code(CHECKS_CODE)})
        with step.lock():
            if not step.done:
                warnings = check_results(load_results(results_path, data.val), f"source {name}")
                step.mark_done({"warnings": [str(w) for w in warnings]})
        return list(step.summary()["warnings"])

    # -- analysis ------------------------------------------------------------------------------------------------
    def analyse(self, results_path: str | Path, refined_path: str | Path | None, ap_impact: bool) -> dict:
        """One pass over results (and their refinement) on the validation split: diagnosis, lower-body-occluded
        subset, crop-panel persons (:func:`posefix_bench.evaluation.pair.analyse_pair`)."""
        from posefix_bench.evaluation.pair import CROP_COUNT, analyse_pair
        from posefix_bench.structures.results import load_results

        data = self.data()
        step = self.cache.step("analyse", {
            "results": file_hash(results_path), "refined": file_hash(refined_path) if refined_path else None,
            "gt": data.fingerprint, "ap_impact": ap_impact, "crops": CROP_COUNT, "version": ANALYSIS_VERSION,
            "code": self.code(EVAL_CODE)})
        out = step.path / "analysis.json"
        with step.lock():
            if not step.done:
                res = load_results(results_path, data.val)
                ref = load_results(refined_path, data.val) if refined_path else None
                atomic_write_json(out, analyse_pair(data.val, res, ref, ap_impact=ap_impact,
                                                    subset_ids=data.occluded_ids))
                step.mark_done({})
        return dict(read_json(out, "analysis"), path=str(out))

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


def _data_fingerprint(root: Path, split: str) -> str:
    """Content fingerprint of a training split: a sandbox root is named by its parameters' hash; otherwise the
    annotation file's hash (images are taken as immutable, as COCO's are)."""
    from posefix_bench.engine.sandbox import is_sandbox_root

    if is_sandbox_root(root):
        return root.name
    return file_hash(coco_split_paths(root, split)[0])


def _train_torchrun(cfg: dict, work_dir: Path, resume: bool, nproc: int) -> dict:
    """Train through ``torchrun`` (one process per GPU, NCCL; gloo on CPU) with the ``train`` command; in a Slurm
    training job with the launch its script exports (:func:`posefix_bench.bench.executors.torchrun_command`)."""
    import json
    import subprocess

    from mmengine.config import Config

    from posefix_bench.bench.executors import torchrun_command

    cfg_file = work_dir / "bench_config.py"
    Config(cfg).dump(str(cfg_file))
    argv = ["-m", "posefix_bench.cli", "train", "--config", str(cfg_file), "--work-dir", str(work_dir)]
    proc = subprocess.run(torchrun_command(argv + (["--resume"] if resume else []), nproc), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise PosefixError(f"{work_dir}: torchrun training failed ({tail[0]})")
    summary = json.loads((work_dir / "train_summary.json").read_text())  # rank 0's train() record
    return dict(summary, launcher="torchrun")


def _subset(dataset: CocoDataset, limit: int | list, path: Path) -> CocoDataset:
    """The first ``limit`` images (or the images of a list of ids) of a dataset as its own annotation file (for
    profiling on part of a split, and the smoke run's validation images)."""
    ids = set(limit) if isinstance(limit, list) else set(dataset.image_ids[:limit])
    d = dataset.coco.dataset
    sub = {**d, "images": [i for i in d["images"] if i["id"] in ids],
           "annotations": [a for a in d["annotations"] if a["image_id"] in ids]}
    atomic_write_json(path, sub, indent=None)
    return CocoDataset(path, image_dir=dataset.image_dir)
