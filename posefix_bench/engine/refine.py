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
    DEFAULT_PADDING,
    affine_matrix,
    apply_affine,
    box_to_center_scale,
    invert_affine,
    keypoints_to_box,
    warp_image,
)

__all__ = ["BOX_MODES", "KEYPOINT_BOX_SCALE", "RefinePostProcessor", "RefinedSource", "check_images", "crop_matrices"]

BOX_MODES = ("keypoints", "bbox")
KEYPOINT_BOX_SCALE = 1.2  # PoseFix test time: the input pose's keypoint box enlarged by 1.2


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
    kp = np.asarray(keypoints, dtype=np.float64)
    n = kp.shape[0]
    bb = np.full((n, 4), np.nan) if bboxes is None else np.asarray(bboxes, dtype=np.float64).reshape(n, 4)
    bb_ok = np.isfinite(bb).all(axis=1) & (np.nan_to_num(bb[:, 2]) > 1) & (np.nan_to_num(bb[:, 3]) > 1)
    if box == "bbox":
        boxes, ok = np.where(bb_ok[:, None], bb, 0.0), bb_ok
    elif box == "keypoints":
        kb = keypoints_to_box(kp, ~absent_mask(kp, absent_policy))
        c = kb[:, :2] + kb[:, 2:] / 2
        kb = np.concatenate([c - kb[:, 2:] * KEYPOINT_BOX_SCALE / 2, kb[:, 2:] * KEYPOINT_BOX_SCALE], axis=1)
        kb_ok = (kb[:, 2] > 1) | (kb[:, 3] > 1)  # a pose spread along one line still has a scale
        boxes = np.where(kb_ok[:, None], kb, np.where(bb_ok[:, None], bb, 0.0))
        ok = kb_ok | bb_ok
    else:
        raise PosefixError(f"unknown crop box {box!r} (known: {', '.join(BOX_MODES)})")
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
    ):
        import torch

        from posefix_bench.engine.precision import check_precision, resolve_precision
        from posefix_bench.models import load_refiner, unwrap_model

        if box not in BOX_MODES:
            raise PosefixError(f"unknown crop box {box!r} (known: {', '.join(BOX_MODES)})")
        if int(batch_size) < 1:
            raise PosefixError(f"refine: batch size must be >= 1, got {batch_size}")
        absent_mask(np.zeros((1, 3)), absent_policy)  # unknown policy: one-line error now
        self.device = torch.device(device)
        check_precision(precision, self.device, "refine: precision")
        if isinstance(model, (str, os.PathLike)):
            self.checkpoint = Path(model)
            self.model, self.meta = load_refiner(self.checkpoint, map_location=self.device)
            self.name = name or str(self.checkpoint)
        else:
            self.checkpoint = None
            self.model = unwrap_model(model).to(self.device).eval()
            self.meta = {"trained": False, **dict(meta or {})}
            self.name = name or "refiner"
        self.model.eval()
        self._net = self._inference_network()
        self.precision_record = resolve_precision(precision, self.device, "infer", net=self._net, batch=batch_size,
                                                  what="refine: precision")
        self.precision = self.precision_record["precision"]
        self.trained = bool(self.meta.get("trained"))
        self.batch_size, self.flip, self.box, self.absent_policy = int(batch_size), bool(flip), box, absent_policy

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
        import torch

        from posefix_bench.engine.precision import autocast
        from posefix_bench.models import flip_test

        with torch.inference_mode(), autocast(self.device, self.precision):
            images = self._net.preprocess(torch.from_numpy(np.ascontiguousarray(crops)).to(self.device))
            pose = torch.as_tensor(np.asarray(poses, dtype=np.float32), device=self.device)
            pv = torch.as_tensor(np.asarray(valid, dtype=bool), device=self.device)
            if self.flip:
                out = flip_test(self._net, images, pose, pv, flip_index)
            else:
                out = self._net(images, pose, pv)
            return (out["coords"].double().cpu().numpy(), out["confidence"].double().cpu().numpy())

    def refine_image(
        self,
        image: np.ndarray,
        keypoints: np.ndarray,
        bboxes: np.ndarray | None = None,
        flip_index=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Refine the poses of one image (the API for estimator adapters and the video mode).

        Args:
            image: (H, W, 3) uint8 RGB.
            keypoints: (N, K, 3) input poses x, y, confidence in image pixels.
            bboxes: optional (N, 4) person boxes (NaN rows: none).
            flip_index: (K,) mirror partners, for the flip test (e.g. ``schema.flip_index``).

        Returns:
            refined (N, K, 3) x, y, confidence (absent input keypoints and unrefinable poses returned unchanged),
            and refined_ok (N,) bool.
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        self._check_schema(kp.shape[1], "refine")
        out = kp.copy()
        mats, ok = crop_matrices(kp, bboxes, self.input_size, self.box, self.absent_policy)
        idx = np.flatnonzero(ok)
        for s in range(0, len(idx), self.batch_size):
            sel = idx[s:s + self.batch_size]
            batch = self._crop_batch(image, kp[sel], mats[sel])
            coords, conf = self.refine_crops(batch.crops, batch.poses, batch.valid, flip_index)
            out[sel] = _merge(kp[sel], coords, conf, np.asarray(batch.inverse), self.absent_policy)
        return out, ok

    def _crop_batch(self, image: np.ndarray, kp: np.ndarray, mats: np.ndarray) -> _Pending:
        crops = np.stack([warp_image(image, m, self.input_size) for m in mats])
        poses = apply_affine(kp, mats)
        valid = ~absent_mask(kp, self.absent_policy)
        return _Pending(list(range(len(kp))), crops, poses, valid, invert_affine(mats))

    # -- whole results files -----------------------------------------------------------------------------------
    def refine(self, dataset: CocoDataset, results: Sequence[dict], progress: Progress = no_progress) -> list[dict]:
        """Refine validated COCO results on ``dataset``'s images; one output record per input, in the same order.

        Raises a one-line :class:`PosefixError` for results whose images are missing from ``dataset`` (ids or
        files), an unreadable image, or a keypoint count other than the refiner's; nothing is returned partially.
        """
        records = list(results)
        if not records:
            return []
        k = self.model.config.num_keypoints
        self._check_schema(dataset.schema.num_keypoints, str(dataset.path))
        kp = np.asarray([r["keypoints"] for r in records], dtype=np.float64)
        if kp.ndim != 2 or kp.shape[1] != 3 * k:
            raise PosefixError(f"results: keypoint lists of length {kp.shape[-1]}, the refiner expects {3 * k}")
        kp = kp.reshape(len(records), k, 3)
        unknown = sorted({int(r["image_id"]) for r in records} - set(dataset.coco.imgs))
        if unknown:
            raise PosefixError(f"results: image id {unknown[0]} is not in {dataset.path}")
        check_images(dataset, (r["image_id"] for r in records))
        bboxes = np.asarray([_bbox(r) for r in records], dtype=np.float64)
        if self.box == "bbox" and np.isnan(bboxes).any():
            i = int(np.flatnonzero(np.isnan(bboxes).any(axis=1))[0])
            raise PosefixError(f"results: record {i} has no valid 'bbox' (needed to crop with box='bbox')")
        mats, ok = crop_matrices(kp, bboxes, self.input_size, self.box, self.absent_policy)
        refined = kp.copy()
        for slots, coords, conf, inverse in self._batches(dataset, records, kp, mats, ok, progress):
            refined[slots] = _merge(kp[slots], coords, conf, inverse, self.absent_policy)
        return [self.output_record(r, refined[i], bool(ok[i])) for i, r in enumerate(records)]

    def _batches(self, dataset, records, kp, mats, ok, progress) -> Iterator:
        """(slots, coords, confidence, inverse matrices) per model batch, reading every image once."""
        by_image: OrderedDict[int, list[int]] = OrderedDict()
        for i, r in enumerate(records):
            if ok[i]:
                by_image.setdefault(int(r["image_id"]), []).append(i)
        flip_index = dataset.schema.flip_index
        pending = _Pending([], [], [], [], [])
        for image_id, slots in progress(by_image.items(), total=len(by_image), desc="refine"):
            image = dataset.read_image(image_id)
            part = self._crop_batch(image, kp[slots], mats[slots])
            for j, slot in enumerate(slots):
                pending.slots.append(slot)
                pending.crops.append(part.crops[j])
                pending.poses.append(part.poses[j])
                pending.valid.append(part.valid[j])
                pending.inverse.append(part.inverse[j])
                if len(pending) == self.batch_size:
                    yield self._run(pending, flip_index)
                    pending = _Pending([], [], [], [], [])
        if len(pending):
            yield self._run(pending, flip_index)

    def _run(self, p: _Pending, flip_index):
        coords, conf = self.refine_crops(np.stack(p.crops), np.stack(p.poses), np.stack(p.valid), flip_index)
        return np.asarray(p.slots), coords, conf, np.stack(p.inverse)

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


def _bbox(record: dict) -> list[float]:
    b = record.get("bbox")
    if isinstance(b, (list, tuple)) and len(b) == 4:
        try:
            return [float(v) for v in b]
        except (TypeError, ValueError):
            pass
    return [np.nan] * 4


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
