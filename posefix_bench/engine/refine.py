"""Refinement as a post-processor: any estimator's COCO keypoint results in, refined results out, one to one.

PoseFix (Moon et al., CVPR 2019, Sec. 3 and 5.2; its released ``test.py``) refines each input pose independently:
the person is cropped around the input pose's keypoint box enlarged by 1.2 (then the usual top-down box: the crop's
aspect ratio and 1.25 padding, :func:`posefix_bench.structures.transforms.box_to_center_scale`), the refiner sees
the crop and the input pose, and its output coordinates are mapped back to the image with the inverse affine.
Optionally the crop can come from the record's ``bbox`` field instead, and the flip test averages the crop and its
mirror (:func:`posefix_bench.models.flip_test`).

Records keep everything they had (``score``, ``bbox``, ids, extra fields) and gain ``refined_by`` and
``refine_precision`` (the precision the refiner ran in, chosen by measurement with ``precision='auto'``:
:mod:`posefix_bench.engine.precision`); their keypoints
become the refined x, y with the refiner's per-keypoint confidence. Keypoints the input did not predict (absent under
the absent policy, :func:`posefix_bench.structures.results.absent_mask`) are masked in the input heatmaps and stay
absent in the output: the refiner is trained to correct keypoints, not to invent unset ones. A record whose box
cannot be formed (fewer than two distinct predicted keypoints and no ``bbox``) passes through unchanged with
``refine_skipped``. A checkpoint whose meta says ``trained: false`` marks every output record ``"untrained": true``.

The gate (:mod:`posefix_bench.engine.gate`, issue 17): a checkpoint may carry a calibrated per-keypoint gate; by
default it is applied, so a refined keypoint replaces the input keypoint only where the gate accepts it, the others
keep the input's x, y and confidence, and each gated record gains ``refine_accepted`` (K ints, 1 = refined).
``gate=False`` (``refine --no-gate``) gives the ungated records exactly as before the gate existed. One forward
pass gives both (:meth:`RefinePostProcessor.refine_detailed`). A checkpoint without a gate refines ungated and says
so in :attr:`RefinePostProcessor.notices` (one line).

:class:`RefinePostProcessor` is also the Python API an estimator adapter calls on its own outputs
(:meth:`RefinePostProcessor.refine_image`), and :class:`RefinedSource` turns any upstream source
(:mod:`posefix_bench.sources`) into a refined one.

Shape legend: N poses, K keypoints, B batch, H x W crop.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY, absent_mask
from posefix_bench.structures.transforms import (
    BOX_MODES,
    DEFAULT_PADDING,
    KEYPOINT_BOX_SCALE,
    affine_matrix,
    apply_affine,
    box_to_center_scale,
    invert_affine,
    pose_boxes,
    record_bboxes,
    warp_image,
)

__all__ = ["BOX_MODES", "KEYPOINT_BOX_SCALE", "RefineOutput", "RefinePostProcessor", "RefinedSource", "check_images",
           "crop_matrices", "pose_boxes", "record_bboxes"]



def crop_matrices(
    keypoints: np.ndarray,
    bboxes: np.ndarray | None,
    input_size: tuple[int, int],
    box: str = "keypoints",
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    padding: float = DEFAULT_PADDING,
) -> tuple[np.ndarray, np.ndarray]:
    """Image -> crop matrices of input poses.

    Args:
        keypoints: (N, K, 3) input poses x, y, confidence (image pixels).
        bboxes: (N, 4) x, y, w, h, NaN rows where a record has no ``bbox``; None: no boxes at all.
        input_size: (W, H) of the refiner's crop.
        box: ``keypoints`` (the predicted keypoints' box x 1.2; a pose with a degenerate box falls back to its
            bbox) or ``bbox`` (the bbox field).
        absent_policy: which keypoints count as not predicted.
        padding: the top-down padding (1.25).

    Returns:
        matrices (N, 2, 3) and ok (N,) bool (False: no usable box).
    """
    boxes, ok = pose_boxes(keypoints, bboxes, box, absent_policy)
    w, h = int(input_size[0]), int(input_size[1])
    center, scale = box_to_center_scale(boxes, w / h, padding)
    scale = np.where(ok[:, None], scale, 1.0)
    return affine_matrix(center, scale, 0.0, (w, h)), ok


def check_images(dataset: CocoDataset, image_ids: Iterable[int]) -> None:
    """Every image the results refer to must exist as a file; the first missing one is a one-line error."""
    for image_id in sorted(set(int(i) for i in image_ids)):
        path = dataset.image_path(image_id)
        if not path.is_file():
            raise file_error(path, f"image not found (the results refer to image id {image_id})")


@dataclass
class RefineOutput:
    """Both readings of one refinement pass over N records (:meth:`RefinePostProcessor.refine_detailed`).

    Attributes:
        ungated: the refined records as without a gate (every refinable keypoint refined).
        gated: the records with the gate applied (``refine_accepted`` in each), or None without a gate.
        accept: (N, K) bool, the refined keypoints the gate took (None without a gate).
        evidence: the gate's inputs (:class:`posefix_bench.engine.gate.KeypointEvidence`), for calibration.
    """

    ungated: list
    gated: list | None
    accept: np.ndarray | None
    evidence: object

    @property
    def records(self) -> list:
        """The records ``refine`` returns: gated when a gate was applied, else ungated."""
        return self.ungated if self.gated is None else self.gated


@dataclass
class _Pending:
    """Crops waiting for the model: record positions, crops, poses and inverse matrices."""

    slots: list
    crops: list
    poses: list
    valid: list
    inverse: list

    def __len__(self) -> int:
        return len(self.slots)


class RefinePostProcessor:
    """A trained refiner applied to input poses.

    Args:
        model: a checkpoint path (``final.pth`` or a training checkpoint) or a :class:`~posefix_bench.models.Refiner`.
        device: ``cpu`` / ``cuda`` / ``cuda:1``.
        batch_size: crops per forward pass.
        flip: average with the mirrored crop (flip test).
        box: crop from the input keypoints' box (``keypoints``, PoseFix's test time) or the ``bbox`` field.
        absent_policy: which input keypoints count as not predicted.
        meta: provenance of an in-memory model (``trained`` etc.); without it such a model counts as untrained,
            so its outputs are marked (never mistaken for a trained refiner's).
        name: the ``refined_by`` value; default: the checkpoint's path (or ``refiner``).
        precision: ``auto`` (default: a short probe of this network on this device picks the fastest precision it
            runs natively, :func:`posefix_bench.engine.precision.resolve_precision`; bf16 is 1.5x faster on CPUs
            with bf16 matrix units and ~33x slower where it is emulated), or ``fp32``, ``bf16``, ``fp16`` (CUDA)
            as set. Reduced precisions differ from fp32 by a small fraction of a heatmap cell. The record is
            ``precision_record``. Inference runs on a copy of the network with BatchNorm folded into the
            convolutions (:func:`posefix_bench.models.fold_batchnorm`).
        gate: True (default): apply the checkpoint's gate when it has one (else refine ungated and add a line to
            :attr:`notices`); False / None: no gate; a gate record (dict) or :class:`~posefix_bench.engine.gate.Gate`:
            apply that one.

    Attributes:
        gate: the :class:`~posefix_bench.engine.gate.Gate` applied, or None.
        notices: one-line notices for the user (a command prints them; library code never does).
    """

    def __init__(
        self,
        model,
        device: str = "cpu",
        batch_size: int = 32,
        flip: bool = False,
        box: str = "keypoints",
        absent_policy: str = DEFAULT_ABSENT_POLICY,
        meta: dict | None = None,
        name: str | None = None,
        precision: str = "auto",
        gate=True,
    ):
        import torch

        from posefix_bench.engine.precision import check_precision, resolve_precision
        from posefix_bench.models import unwrap_model
        from posefix_bench.models.checkpoint import load_refiner_and_gate

        if box not in BOX_MODES:
            raise PosefixError(f"unknown crop box {box!r} (known: {', '.join(BOX_MODES)})")
        if int(batch_size) < 1:
            raise PosefixError(f"refine: batch size must be >= 1, got {batch_size}")
        absent_mask(np.zeros((1, 3)), absent_policy)  # unknown policy: one-line error now
        self.device = torch.device(device)
        check_precision(precision, self.device, "refine: precision")
        stored_gate = None
        if isinstance(model, (str, os.PathLike)):
            self.checkpoint = Path(model)
            self.model, self.meta, stored_gate = load_refiner_and_gate(self.checkpoint, map_location=self.device)
            self.name = name or str(self.checkpoint)
        else:
            self.checkpoint = None
            self.model = unwrap_model(model).to(self.device).eval()
            self.meta = {"trained": False, **dict(meta or {})}
            self.name = name or "refiner"
        self.notices: list[str] = []
        self.gate = self._pick_gate(gate, stored_gate)
        self.model.eval()
        self._net = self._inference_network()
        self.precision_record = resolve_precision(precision, self.device, "infer", net=self._net, batch=batch_size,
                                                  what="refine: precision")
        self.precision = self.precision_record["precision"]
        self.trained = bool(self.meta.get("trained"))
        self.batch_size, self.flip, self.box, self.absent_policy = int(batch_size), bool(flip), box, absent_policy

    def _pick_gate(self, gate, stored):
        from posefix_bench.engine.gate import Gate

        if gate is None or gate is False:
            return None
        if isinstance(gate, Gate):
            return gate
        if gate is True:
            if stored is None:
                self.notices.append(f"{self.name} has no calibrated gate (an older checkpoint, or not calibrated "
                                    "yet): every refinable keypoint is refined (calibrate one with "
                                    "`posefix-bench calibrate`)")
                return None
            return Gate.from_dict(stored, source=f"{self.name}: gate")
        if isinstance(gate, dict):
            return Gate.from_dict(gate)
        raise PosefixError(f"refine: gate must be true, false or a gate record, got {type(gate).__name__}")

    def _inference_network(self):
        from posefix_bench.models import fold_batchnorm

        try:
            return fold_batchnorm(self.model)
        except PosefixError:  # a backbone without a folding rule runs as it is
            return self.model

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.model.config.input_size)

    def _check_schema(self, num_keypoints: int, what: str) -> None:
        k = self.model.config.num_keypoints
        if num_keypoints != k:
            raise PosefixError(f"{what}: poses have {num_keypoints} keypoints, the refiner {self.name} expects {k}")

    # -- the core: crops -> refined crops ----------------------------------------------------------------------
    def refine_crops(self, crops: np.ndarray, poses: np.ndarray, valid: np.ndarray, flip_index=None):
        """Run the refiner on crops.

        Args:
            crops: (B, H, W, 3) uint8 RGB; poses: (B, K, 2) input keypoints in crop pixels; valid: (B, K) bool.
            flip_index: (K,) mirror partners (needed for the flip test).

        Returns:
            coords (B, K, 2) float64 crop pixels, confidence (B, K) float64.
        """
        out = self.refine_crops_detailed(crops, poses, valid, flip_index)
        return out["coords"], out["confidence"]

    def refine_crops_detailed(self, crops: np.ndarray, poses: np.ndarray, valid: np.ndarray, flip_index=None) -> dict:
        """:meth:`refine_crops` plus what the gate reads from the heatmaps.

        Returns:
            ``coords`` (B, K, 2) and ``confidence`` (B, K) as :meth:`refine_crops`, and ``input_mass`` (B, K)
            float64: the softmax mass within 1.5 output-grid pixels of the input keypoint (the same window as the
            confidence; with the flip test, of the averaged logits).
        """
        import torch

        from posefix_bench.engine.precision import autocast
        from posefix_bench.codecs.heatmap import input_to_grid, peak_mass
        from posefix_bench.models import flip_test

        with torch.inference_mode(), autocast(self.device, self.precision):
            images = self._net.preprocess(torch.from_numpy(np.ascontiguousarray(crops)).to(self.device))
            pose = torch.as_tensor(np.asarray(poses, dtype=np.float32), device=self.device)
            pv = torch.as_tensor(np.asarray(valid, dtype=bool), device=self.device)
            if self.flip:
                out = flip_test(self._net, images, pose, pv, flip_index)
            else:
                out = self._net(images, pose, pv)
            logits = out["logits"].to(torch.float32)
            probs = torch.softmax(logits.flatten(-2), dim=-1).view_as(logits)
            mass = peak_mass(probs, input_to_grid(pose, self.model.stride))
            return {"coords": out["coords"].double().cpu().numpy(),
                    "confidence": out["confidence"].double().cpu().numpy(),
                    "input_mass": mass.double().cpu().numpy()}

    def refine_image(
        self,
        image: np.ndarray,
        keypoints: np.ndarray,
        bboxes: np.ndarray | None = None,
        flip_index=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Refine the poses of one image (the API for estimator adapters and the video mode); gated when a gate
        is applied (see :meth:`refine_image_detailed` for both readings).

        Args:
            image: (H, W, 3) uint8 RGB.
            keypoints: (N, K, 3) input poses x, y, confidence in image pixels.
            bboxes: optional (N, 4) person boxes (NaN rows: none).
            flip_index: (K,) mirror partners, for the flip test (e.g. ``schema.flip_index``).

        Returns:
            refined (N, K, 3) x, y, confidence (absent input keypoints, unrefinable poses and keypoints the gate
            rejects returned unchanged), and refined_ok (N,) bool.
        """
        out = self.refine_image_detailed(image, keypoints, bboxes, flip_index)
        return (out["ungated"] if out["gated"] is None else out["gated"]), out["ok"]

    def refine_image_detailed(self, image: np.ndarray, keypoints: np.ndarray, bboxes: np.ndarray | None = None,
                              flip_index=None) -> dict:
        """:meth:`refine_image` with both readings: ``ungated`` (N, K, 3), ``gated`` (N, K, 3) or None,
        ``accept`` (N, K) bool or None, ``ok`` (N,) bool and ``evidence`` (the gate's inputs)."""
        kp = np.asarray(keypoints, dtype=np.float64)
        self._check_schema(kp.shape[1], "refine")
        mats, ok = crop_matrices(kp, bboxes, self.input_size, self.box, self.absent_policy)
        refined, evidence = kp.copy(), self._empty_evidence(kp, ok)
        sigmas = self._builtin_sigmas()
        idx = np.flatnonzero(ok)
        for s in range(0, len(idx), self.batch_size):
            sel = idx[s:s + self.batch_size]
            batch = self._crop_batch(image, kp[sel], mats[sel], sel)
            self._store(self._run(batch, flip_index), kp, refined, evidence, sigmas)
        gated, accept = self._apply_gate(kp, refined, evidence)
        return {"ungated": refined, "gated": gated, "accept": accept, "ok": ok, "evidence": evidence}

    def _crop_batch(self, image: np.ndarray, kp: np.ndarray, mats: np.ndarray, slots=None) -> _Pending:
        crops = np.stack([warp_image(image, m, self.input_size) for m in mats])
        poses = apply_affine(kp, mats)
        valid = ~absent_mask(kp, self.absent_policy)
        slots = list(range(len(kp))) if slots is None else list(slots)
        return _Pending(slots, list(crops), list(poses), list(valid), list(invert_affine(mats)))

    # -- whole results files -----------------------------------------------------------------------------------
    def refine(self, dataset: CocoDataset, results: Sequence[dict], progress: Progress = no_progress) -> list[dict]:
        """Refine validated COCO results on ``dataset``'s images; one output record per input, in the same order.

        The records are gated when a gate is applied (:attr:`gate`), else ungated; :meth:`refine_detailed` gives
        both from the same pass. Raises a one-line :class:`PosefixError` for results whose images are missing from
        ``dataset`` (ids or files), an unreadable image, or a keypoint count other than the refiner's; nothing is
        returned partially.
        """
        return self.refine_detailed(dataset, results, progress).records

    def refine_detailed(self, dataset: CocoDataset, results: Sequence[dict],
                        progress: Progress = no_progress) -> RefineOutput:
        """One refinement pass, both readings: the ungated records (exactly what ``refine`` gives without a gate),
        the gated records with ``refine_accepted`` and the (N, K) accept mask (None without a gate), and the
        gate's evidence (:class:`~posefix_bench.engine.gate.KeypointEvidence`)."""
        from posefix_bench.engine.gate import KeypointEvidence

        records = list(results)
        k = self.model.config.num_keypoints
        if not records:
            return RefineOutput([], [] if self.gate is not None else None,
                                np.zeros((0, k), bool) if self.gate is not None else None,
                                KeypointEvidence.empty(0, k, np.zeros((0, k))))
        self._check_schema(dataset.schema.num_keypoints, str(dataset.path))
        kp = np.asarray([r["keypoints"] for r in records], dtype=np.float64)
        if kp.ndim != 2 or kp.shape[1] != 3 * k:
            raise PosefixError(f"results: keypoint lists of length {kp.shape[-1]}, the refiner expects {3 * k}")
        kp = kp.reshape(len(records), k, 3)
        unknown = sorted({int(r["image_id"]) for r in records} - set(dataset.coco.imgs))
        if unknown:
            raise PosefixError(f"results: image id {unknown[0]} is not in {dataset.path}")
        check_images(dataset, (r["image_id"] for r in records))
        bboxes = record_bboxes(records)
        if self.box == "bbox" and np.isnan(bboxes).any():
            i = int(np.flatnonzero(np.isnan(bboxes).any(axis=1))[0])
            raise PosefixError(f"results: record {i} has no valid 'bbox' (needed to crop with box='bbox')")
        mats, ok = crop_matrices(kp, bboxes, self.input_size, self.box, self.absent_policy)
        refined, evidence = kp.copy(), self._empty_evidence(kp, ok)
        for out in self._batches(dataset, records, kp, mats, ok, progress):
            self._store(out, kp, refined, evidence, dataset.schema.sigma_array)
        ungated = [self.output_record(r, refined[i], bool(ok[i])) for i, r in enumerate(records)]
        gated_kp, accept = self._apply_gate(kp, refined, evidence)
        gated = None
        if gated_kp is not None:
            gated = [dict(self.output_record(r, gated_kp[i], bool(ok[i])),
                          refine_accepted=[int(v) for v in accept[i]]) for i, r in enumerate(records)]
        return RefineOutput(ungated, gated, accept, evidence)

    def _empty_evidence(self, kp: np.ndarray, ok: np.ndarray):
        from posefix_bench.engine.gate import KeypointEvidence

        ev = KeypointEvidence.empty(kp.shape[0], kp.shape[1], kp[..., 2])
        ev.refinable = ok[:, None] & ~absent_mask(kp, self.absent_policy)
        return ev

    def _store(self, out: dict, kp: np.ndarray, refined: np.ndarray, ev, sigmas: np.ndarray | None) -> None:
        """Write one model batch's refined keypoints and gate evidence into the (N, ...) arrays; ``sigmas`` (K,)
        are the OKS sigmas the move is measured with (None: the move stays NaN)."""
        from posefix_bench.codecs.oks import keypoint_similarity
        from posefix_bench.engine.gate import person_area_in_crop

        slots = out["slots"]
        refined[slots] = _merge(kp[slots], out["coords"], out["confidence"], out["inverse"], self.absent_policy)
        ev.ref_conf[slots] = out["confidence"]
        ev.input_mass[slots] = out["input_mass"]
        if sigmas is not None:  # the move in OKS units: -ln KS of the step, the person box's area in the crop
            d2 = ((out["coords"] - out["poses"]) ** 2).sum(axis=-1)
            ks = keypoint_similarity(d2, np.float64(person_area_in_crop(self.input_size, self.box)), sigmas)
            ev.move[slots] = -np.log(np.maximum(ks, 1e-300))

    def _builtin_sigmas(self) -> np.ndarray | None:
        """(K,) OKS sigmas of the refiner's built-in keypoint schema; None for another schema (then a gate cannot
        be applied without a dataset: :meth:`refine_detailed` takes the dataset's)."""
        from posefix_bench.structures.schema import SCHEMAS

        schema = SCHEMAS.get(self.model.config.schema)
        if schema is None or schema.num_keypoints != self.model.config.num_keypoints:
            if self.gate is not None:
                raise PosefixError(f"refine: the gate needs OKS sigmas, and the refiner's schema "
                                   f"{self.model.config.schema!r} is not built in (refine a dataset instead)")
            return None
        return schema.sigma_array

    def _apply_gate(self, kp: np.ndarray, refined: np.ndarray, ev):
        """(gated (N, K, 3), accept (N, K)) or (None, None) without a gate."""
        if self.gate is None:
            return None, None
        accept = self.gate.decide(ev)
        return np.where(accept[..., None], refined, kp), accept

    def _batches(self, dataset, records, kp, mats, ok, progress) -> Iterator[dict]:
        """One dict per model batch (:meth:`_run`), reading every image once."""
        by_image: OrderedDict[int, list[int]] = OrderedDict()
        for i, r in enumerate(records):
            if ok[i]:
                by_image.setdefault(int(r["image_id"]), []).append(i)
        flip_index = dataset.schema.flip_index
        pending = _Pending([], [], [], [], [])
        for image_id, slots in progress(by_image.items(), total=len(by_image), desc="refine"):
            image = dataset.read_image(image_id)
            part = self._crop_batch(image, kp[slots], mats[slots], slots)
            for j in range(len(part)):
                pending.slots.append(part.slots[j])
                pending.crops.append(part.crops[j])
                pending.poses.append(part.poses[j])
                pending.valid.append(part.valid[j])
                pending.inverse.append(part.inverse[j])
                if len(pending) == self.batch_size:
                    yield self._run(pending, flip_index)
                    pending = _Pending([], [], [], [], [])
        if len(pending):
            yield self._run(pending, flip_index)

    def _run(self, p: _Pending, flip_index) -> dict:
        """Model outputs of pending crops: ``slots``, ``coords``, ``confidence``, ``input_mass``, ``inverse``,
        ``poses`` (the input keypoints in crop pixels)."""
        poses = np.stack(p.poses)
        out = self.refine_crops_detailed(np.stack(p.crops), poses, np.stack(p.valid), flip_index)
        return dict(out, slots=np.asarray(p.slots), inverse=np.stack(p.inverse), poses=poses)

    def output_record(self, rec: dict, keypoints: np.ndarray, ok: bool) -> dict:
        """A copy of input record ``rec`` with refined (K, 3) ``keypoints``, ``refined_by``, ``refine_precision``,
        ``refine_skipped`` when ``ok`` is False, and ``untrained: true`` for an untrained refiner."""
        out = dict(rec)
        out["keypoints"] = [float(v) for v in keypoints.reshape(-1)]
        out["refined_by"] = self.name
        out["refine_precision"] = self.precision
        if not ok:
            out["refine_skipped"] = "no box: fewer than two distinct predicted keypoints and no bbox"
        if not self.trained:
            out["untrained"] = True
        return out


def _merge(kp: np.ndarray, coords: np.ndarray, conf: np.ndarray, inverse: np.ndarray, policy: str) -> np.ndarray:
    """(B, K, 3): refined image coordinates and confidences, absent input keypoints kept as they were."""
    xy = apply_affine(coords, inverse)
    out = np.concatenate([xy, conf[..., None]], axis=-1)
    absent = absent_mask(kp, policy)
    out[absent] = kp[absent]
    return out


class RefinedSource:
    """Any upstream source (``.name``, ``.info``, ``.predict(dataset, boxes, progress)``) followed by a refiner."""

    def __init__(self, source, post: RefinePostProcessor):
        from posefix_bench.sources.base import SourceInfo

        self.source, self.post = source, post
        up = source.info
        self.info = SourceInfo(
            name=f"{up.name}+refiner",
            kind="refined",
            family=up.family,
            schema=up.schema,
            input_size=post.input_size,
            weights=str(post.checkpoint) if post.checkpoint else None,
            trained=bool(up.trained and post.trained),
            published=None,
            description=f"{up.name} refined by {post.name}",
            extra={"upstream": up.name, "refiner": post.name, "flip": post.flip, "box": post.box,
                   "precision": post.precision},
        )

    @property
    def name(self) -> str:
        return self.info.name

    def predict(self, dataset: CocoDataset, boxes=None, progress: Progress = no_progress) -> list[dict]:
        return self.post.refine(dataset, self.source.predict(dataset, boxes, progress=progress), progress=progress)
