"""The bench's refinement-gate steps (issue 17): calibration of the default refiners' gate, one refinement pass
giving the ungated and the gated results, and what the gate did (a mixin of
:class:`~posefix_bench.bench.steps.BenchSteps`).

- ``calibrate``: the refinement gate of a trained refiner calibrated on training images it did not train on
  (:func:`posefix_bench.engine.calibrate.calibrate_checkpoint`);
- ``refine`` (gated): one pass gives both the ungated and the gated results
  (:meth:`~posefix_bench.engine.refine.RefinePostProcessor.refine_detailed`);
- ``gate``: what the gate did on a source (:func:`posefix_bench.evaluation.gate_effect.gate_effect`).
"""

from __future__ import annotations

import time
from pathlib import Path

from posefix_bench.bench.cache import file_hash
from posefix_bench.bench.step_codes import CALIBRATE_CODE, EVAL_CODE, REFINE_CODE, SMOKE
from posefix_bench.errors import PosefixError
from posefix_bench.structures.coco import CocoDataset, coco_split_paths
from posefix_bench.structures.io import atomic_write_json, read_json

__all__ = ["GateSteps"]


class GateSteps:
    """Gate steps of :class:`~posefix_bench.bench.steps.BenchSteps` (which provides ``profile``, ``cache``,
    ``cache_root``, ``device``, ``smoke``, ``progress``, ``code()``, ``data()``, ``refine_options()``)."""

    # -- the refinement gate (issue 17) --------------------------------------------------------------------------
    def calibration_options(self) -> dict:
        """How the gate is calibrated: :func:`~posefix_bench.engine.calibrate.calibrate_checkpoint`'s defaults,
        then the profile's ``gate`` section, then the smoke run's smaller settings. ``gate=dict(sources=[...])``
        names profile sources whose predictions on the calibration images join the synthesised input sets
        (:meth:`calibration_sources`)."""
        from posefix_bench.engine import calibrate as cal

        opts = {"mixes": list(cal.DEFAULT_MIXES), "draws": cal.DEFAULT_DRAWS, "seed": 0, "keep": cal.DEFAULT_KEEP,
                "l2": cal.DEFAULT_L2, "tolerance": cal.DEFAULT_TOLERANCE}
        opts.update(self.profile.section("gate"))
        if self.smoke:
            opts.update(SMOKE["calibrate"])
        return opts

    def calibration_plan(self, trained: dict) -> tuple[dict | None, str | None]:
        """(what to calibrate a trained refiner on, or None; why not, or None).

        A refiner that held training images out (``data.holdout``) is calibrated on them; one that trained on every
        image is calibrated on the training split of a COCO-format profile's data root (minus any image it trained
        on); a sandbox profile then has nothing to calibrate on. A COCO-format profile with
        ``gate=dict(calibrate_on='profile')`` calibrates on its own training split whenever the refiner did not
        train on it (a refiner trained elsewhere, e.g. on the sandbox, gated for the profile's real images: issue 17
        measured that a gate carried over from the sandbox does not remove the harm on real images).
        """
        data = self.data()
        on_profile = self.profile.section("gate").get("calibrate_on") == "profile"
        if float(trained.get("holdout") or 0) > 0 and not (on_profile and data.kind in ("coco-mini", "coco")):
            return {"data": "holdout"}, None
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

    def calibration_sources(self, names) -> dict:
        """The named profile sources run on the profile's training split (cached ``predict`` steps): {name: the
        predict record}. Calibration keeps their poses on its own images only (a split plan calibrates on that
        split; a hold-out plan on the held-out part of it), so the gate is fitted on those estimators' real errors
        as well as on the synthesised ones, from training images only (issue 17: a gate calibrated on synthesised
        inputs alone let mediapipe lose 0.006 AP on coco-mini's val; with mediapipe's training-split predictions
        added it stayed within 0.001 over three calibration seeds)."""
        return {str(n): self.predict(self.source_spec(str(n)), split="train") for n in names}

    def calibrate(self, trained: dict) -> dict:
        """The trained refiner's gate, calibrated and stored in a copy of its checkpoint (cached):
        ``{"state": "calibrated", "key", "checkpoint", "gate" (summary), "seconds", "mixes", "draws", "sources"
        (the synthesised and the estimator input sets)}``, or ``{"state": "off",
        "reason"}`` where there is nothing to calibrate on or calibration fails (not cached: a rerun tries again)."""
        from posefix_bench.engine.calibrate import calibrate_checkpoint, gate_summary
        from posefix_bench.structures.results import load_results

        plan, reason = self.calibration_plan(trained)
        if plan is None:
            return {"state": "off", "reason": reason}
        opts = self.calibration_options()
        sources = self.calibration_sources(opts.get("sources") or [])
        refine = self.refine_options(trained)
        payload = {"train": trained["key"], "plan": {k: v for k, v in plan.items() if k != "root"}, "options": opts,
                   "refine": {"batch_size": refine.get("batch_size", 32), "precision": refine["precision"]},
                   "device": self.device, "code": self.code(CALIBRATE_CODE)}
        if sources:  # (absent without sources: the keys of calibrations without them stay as they were)
            payload["results"] = {name: rec["hash"] for name, rec in sources.items()}
        step = self.cache.step("calibrate", payload)
        out = step.path / "calibrated.pth"
        with step.lock():
            if not step.done:
                t0 = time.perf_counter()
                results = {name: load_results(rec["results"], CocoDataset(rec["gt"])) for name, rec in sources.items()}
                try:
                    rec = calibrate_checkpoint(
                        trained["checkpoint"], out, plan.get("root"), plan.get("split"), opts["mixes"],
                        int(opts["draws"]), int(opts["seed"]), results=results, keep=float(opts["keep"]),
                        l2=float(opts["l2"]), tolerance=float(opts["tolerance"]), device=self.device,
                        batch_size=int(refine.get("batch_size", 32)), precision=refine["precision"],
                        progress=self.progress)
                except PosefixError as e:  # the reason goes into reports: no absolute path of this machine
                    from posefix_bench.record.schema import shown_text

                    return {"state": "off", "reason": "calibration failed: " + shown_text(str(e), self.cache_root)}
                step.mark_done({"gate": gate_summary(rec["gate"]), "seconds": time.perf_counter() - t0})
        summary = step.summary()
        return {"state": "calibrated", "key": step.key, "checkpoint": str(out), "gate": summary["gate"],
                "seconds": summary.get("seconds"), "mixes": [str(m) for m in opts["mixes"]],
                "draws": int(opts["draws"]), "sources": list(sources)}

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
