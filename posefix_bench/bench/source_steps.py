"""The bench's source steps: upstream estimators trained here, source predictions, error profiles, data checks,
and the estimators' speed with each post-processing method (a mixin of
:class:`~posefix_bench.bench.steps.BenchSteps`).

- ``estimator``: a small mmpose estimator trained on the training split with mmpose's own training; a card with a
  ``ladder`` is trained once with its weights saved at each rung (an input-strength ladder of one family);
- ``predict``: a source run on a split with ground-truth boxes (a results file), optionally with an mmpose
  post-processing method (flip test, DARK: the free baselines); the files a source reads from the user (a
  ``results-file`` source's JSON, a checkpoint, a mix file) are in its key by content, so one overwritten in place
  reruns the step and what depends on its output, never a training;
- ``profile``: an estimator's error profile measured on (part of) the *training* split, for ``measured:`` mixes,
  so no validation statistics leak into training;
- ``checks``: the data warnings of a results file (:func:`posefix_bench.structures.checks.check_results`);
- ``post-fps``: an mmpose source's samples/s plain and with each post-processing method
  (:func:`posefix_bench.sources.post_processing.post_processing_throughput`).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from posefix_bench.bench.cache import file_hash
from posefix_bench.bench.step_codes import CHECKS_CODE, EVAL_CODE, SOURCE_CODE
from posefix_bench.errors import PosefixError
from posefix_bench.hashing import named_file_hashes
from posefix_bench.structures.coco import CocoDataset, coco_split_paths
from posefix_bench.structures.io import atomic_write_json, read_json

__all__ = ["SourceSteps", "subset_dataset", "shown_in_cache"]


class SourceSteps:
    """Source steps of :class:`~posefix_bench.bench.steps.BenchSteps` (which provides ``profile``, ``cache``,
    ``cache_root``, ``device``, ``smoke``, ``progress``, ``code()`` and ``data()``)."""

    # -- sources -------------------------------------------------------------------------------------------------
    def source_spec(self, name: str) -> dict:
        for s in self.profile.sources:
            if s["name"] == name:
                return s
        raise PosefixError(f"profile {self.profile.name}: no source named {name!r}")

    def estimator(self, spec: dict) -> tuple[Path, dict]:
        """Train (or reuse) a small mmpose estimator on the profile's training split with mmpose's own training.

        A card with a ``ladder`` (iterations) is trained once with its weights saved at each of them: an
        input-strength ladder of one family; the source's ``iteration`` picks its rung (default the last)."""
        from posefix_bench.sources.mmpose_train import resolve_card, train_mmpose_estimator, train_mmpose_ladder

        card = resolve_card(spec["card"])
        seed = int(spec.get("train_seed", 0))
        overrides = dict(spec.get("overrides", {}))
        ladder = [int(i) for i in card.ladder or ()]
        if spec.get("iteration") is not None and int(spec["iteration"]) not in ladder:
            raise PosefixError(f"profile {self.profile.name}: source {spec.get('name')!r}: iteration "
                               f"{spec['iteration']} is not a rung of {card.name}'s ladder {tuple(ladder)}")
        data = self.data()
        step = self.cache.step("estimator", {
            "card": card.name, "card_file": file_hash(card.path), "data": data.fingerprint, "seed": seed,
            "overrides": overrides, "code": self.code(("sources",)),
        })
        with step.lock():
            if not step.done:
                t0 = time.perf_counter()
                kw = dict(overrides=overrides or None, train_split=data.train_split, seed=seed, progress=self.progress)
                if ladder:
                    saved = train_mmpose_ladder(card, data.root, step.path, iterations=ladder, **kw)
                    log = read_json(step.path / "train_log.json", "estimator training log")
                    rungs = {str(c["iteration"]): {"checkpoint": c["checkpoint"], "seconds": c["seconds"]}
                             for c in log["checkpoints"]}
                    ckpt = saved[max(saved)]
                else:
                    ckpt, rungs = train_mmpose_estimator(card, data.root, step.path, **kw), None
                step.mark_done({"checkpoint": ckpt.name, "seconds": time.perf_counter() - t0, "card": card.name,
                                "ladder": rungs})
        summary = step.summary()
        if summary.get("ladder"):
            rung = summary["ladder"][str(int(spec.get("iteration") or max(ladder)))]
            summary = dict(summary, checkpoint=rung["checkpoint"], seconds=rung["seconds"],
                           iteration=int(spec.get("iteration") or max(ladder)))
        return step.path / summary["checkpoint"], summary

    def build_source(self, spec: dict, split: str = "val"):
        """The source object a profile entry describes, plus metadata for the report. A ``results-file`` source
        reads ``path`` on the validation split and ``train_path`` (its training-split results) on the training
        split."""
        from posefix_bench.sources import get_source
        from posefix_bench.sources.registry import SOURCES

        kind = spec.get("type")
        meta: dict[str, Any] = {"type": kind}
        post = {}
        if spec.get("method"):  # a free baseline: the source with mmpose's test-time post-processing
            from posefix_bench.sources.post_processing import method_options

            if kind not in ("mmpose", "mmpose-trained"):
                raise PosefixError(f"profile {self.profile.name}: source {spec.get('name')!r}: a post-processing "
                                   f"method needs an mmpose source, not {kind!r}")
            post = method_options(spec["method"])
            meta.update(method=spec["method"])
        if kind == "synthetic":
            mix, seed = spec.get("mix", "paper"), int(spec.get("seed", 0))
            src = get_source("synthetic", mix=mix, seed=seed)
            meta.update(mix=mix, seed=seed)
        elif kind == "mmpose-trained":
            ckpt, summary = self.estimator(spec)
            src = get_source(summary["card"], checkpoint=str(ckpt), device=self.device, **post)
            meta.update(card=summary["card"], train_seconds=summary.get("seconds"), iteration=summary.get("iteration"),
                        trained_on=self.data().description, checkpoint=shown_in_cache(ckpt, self.cache_root))
        elif kind == "mmpose":
            opts = {k: v for k, v in spec.items() if k not in ("name", "type", "card", "method")}
            if self.smoke and not opts.get("checkpoint") and not opts.get("untrained") \
                    and not _zoo_checkpoint_cached(spec["card"]):
                opts["untrained"] = True  # a smoke run checks the path offline: random weights, marked UNTRAINED
            src = get_source(spec["card"], device=self.device, **opts, **post)
        elif kind == "results-file":
            path = spec.get("train_path") if split == "train" else spec.get("path")
            if split == "train" and not path:
                raise PosefixError(f"profile {self.profile.name}: source {spec.get('name')!r} has no training-split "
                                   "results (train_path=...)")
            opts = {k: v for k, v in spec.items() if k not in ("name", "type", "train_path")}
            # (an unknown option is refused by the registry); a smoke run: the file's results on the smoke images
            src = get_source(kind, **dict(opts, path=path, subset=self.smoke))
        elif kind == "mediapipe":
            src = get_source(kind, **{k: v for k, v in spec.items() if k not in ("name", "type")})
        elif kind in SOURCES.module_dict:  # a source registered in code (a user module: custom_imports)
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
        src, meta = self.build_source(spec, split)
        split_name = data.val_split if split == "val" else data.train_split
        payload = {"source": {k: v for k, v in spec.items() if k != "name"}, "meta": meta,
                   "data": data.val_key if split == "val" else data.fingerprint, "split": split_name, "limit": limit,
                   "code": self.code(SOURCE_CODE)}
        # the files it reads by content (a results file overwritten in place reruns the step); a results-file source
        # reads one of its two files per split
        other = ("train_path" if split == "val" else "path") if spec.get("type") == "results-file" else None
        files = named_file_hashes({k: v for k, v in spec.items() if k != other})
        if files:  # (absent without files: the keys of the other sources' predictions stay as they were)
            payload["files"] = files
        step = self.cache.step("predict", payload)
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
                        dataset = subset_dataset(dataset, limit, gt_path)
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
                           limit=self.profile.section("profile_train_images"))
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

    def post_fps(self, spec: dict, methods: list[str]) -> dict:
        """Samples/s of an mmpose source plain and with each post-processing method, on the same validation persons
        (:func:`posefix_bench.sources.post_processing.post_processing_throughput`; measured once, cached)."""
        from posefix_bench.sources.post_processing import post_processing_throughput

        data = self.data()
        if spec.get("type") == "mmpose-trained":
            ckpt, summary = self.estimator(spec)
            card, checkpoint, untrained = summary["card"], str(ckpt), False
        else:
            card, checkpoint, untrained = spec["card"], spec.get("checkpoint"), bool(spec.get("untrained", False))
            untrained = untrained or (self.smoke and not checkpoint and not _zoo_checkpoint_cached(card))
        opts = {"persons": 64, "rounds": 3, **self.profile.section("free_baselines").get("timing", {}),
                **({"persons": 8, "rounds": 1} if self.smoke else {})}
        step = self.cache.step("post-fps", {"card": card, "checkpoint": file_hash(checkpoint) if checkpoint else None,
                                            "methods": list(methods), "options": opts, "data": data.fingerprint,
                                            "untrained": untrained, "device": self.device,
                                            "machine": platform.node(), "code": self.code(SOURCE_CODE)})
        out = step.path / "throughput.json"
        with step.lock():
            if not step.done:
                atomic_write_json(out, post_processing_throughput(card, checkpoint, data.val, methods=methods,
                                                                  device=self.device, untrained=untrained, **opts))
                step.mark_done({})
        return read_json(out, "post-processing throughput")


def _zoo_checkpoint_cached(card_name: str) -> bool:
    """Whether a model-zoo card's published checkpoint is already in mmengine's download cache (or a local file)."""
    from posefix_bench.sources.mmpose_source import checkpoint_cache_dir
    from posefix_bench.sources.mmpose_train import resolve_card

    ckpt = resolve_card(card_name).checkpoint
    if not ckpt:
        return False
    if "://" not in str(ckpt):
        return Path(ckpt).is_file()
    return (checkpoint_cache_dir() / str(ckpt).rsplit("/", 1)[-1]).is_file()


def shown_in_cache(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def subset_dataset(dataset: CocoDataset, limit: int | list, path: Path) -> CocoDataset:
    """The first ``limit`` images (or the images of a list of ids) of a dataset as its own annotation file (for
    profiling on part of a split, and the smoke run's validation images)."""
    ids = set(limit) if isinstance(limit, list) else set(dataset.image_ids[:limit])
    d = dataset.coco.dataset
    sub = {**d, "images": [i for i in d["images"] if i["id"] in ids],
           "annotations": [a for a in d["annotations"] if a["image_id"] in ids]}
    atomic_write_json(path, sub, indent=None)
    return CocoDataset(path, image_dir=dataset.image_dir)
