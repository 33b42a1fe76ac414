"""mmpose top-down estimators as upstream sources, built and run through mmpose's own API.

The model comes from an estimator card (:mod:`posefix_bench.sources.cards`): mmpose builds it from the card's
config (``mmpose.apis.init_model``), weights come from a local path or a URL through mmengine's
``CheckpointLoader`` (which caches downloads under torch hub's ``checkpoints/`` folder), and inference is mmpose's
top-down path (``inference_topdown``) batched across images: each person box goes through the config's own test
pipeline (``GetBBoxCenterScale`` with padding 1.25, ``TopdownAffine``, ``PackPoseInputs``) and batches go through
``model.test_step``.

Test-time post-processing is the source's choice, not the config's (every official mmpose config turns the flip
test on): by default the plain estimator, no flip test and the standard decoding (heatmaps: argmax plus a
quarter-pixel step, ``MSRAHeatmap(unbiased=False)``); ``flip_test=True`` adds mmpose's flip test and
``decode='dark'`` DARK's distribution-aware decoding (Zhang et al., CVPR 2020) for heatmap heads. Decoding is all
that changes: a model keeps the weights (and so the target encoding) it was trained with. The info records the
choice (``extra["method"]``, ``extra["post_processing"]``); :mod:`posefix_bench.sources.post_processing` names the
methods and times them.

The instance score is mmpose's (``mmpose.evaluation.CocoMetric.compute_metrics``, settings from the config's
``val_evaluator``): with the default ``score_mode='bbox_keypoint'`` the box score times the mean of the keypoint
scores above ``keypoint_score_thr`` (0.2), then OKS-NMS at ``nms_thr`` (0.9) per image, as SimpleBaseline
(Xiao et al., ECCV 2018) and mmpose evaluate on COCO.

A model with random weights needs ``untrained=True`` (seeded initialisation, mmpose's ``init_weights``); its info
says ``trained=False`` and every record it returns carries ``"untrained": true``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.progress import no_progress
from posefix_bench.sources.base import Source, SourceInfo, mark_untrained
from posefix_bench.sources.boxes import BoxSet, boxed_images, gt_boxes
from posefix_bench.sources.cards import EstimatorCard
from posefix_bench.structures.schema import COCO17

__all__ = ["DECODE_MODES", "MmposeSource", "build_mmpose_model", "checkpoint_cache_dir", "dark_blur_kernel",
           "load_checkpoint_file", "quiet_mmengine"]

_SCORE_MODES = ("bbox", "keypoint", "bbox_keypoint")
DECODE_MODES = ("standard", "dark")


@contextlib.contextmanager
def quiet_mmengine(level: int = logging.ERROR):
    """Silence mmengine's INFO/WARNING log lines and the ``pkg_resources`` deprecation warnings its imports raise
    (library code never prints) inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*torch.cuda.amp.autocast.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message="The metainfo config file", category=UserWarning)
        from mmengine.logging import MMLogger

        loggers = [logging.getLogger("mmengine"), MMLogger.get_current_instance()]  # what print_log uses
        saved = [(lg, lg.level) for lg in loggers]
        for lg in loggers:
            lg.setLevel(level)
        try:
            yield
        finally:
            for lg, lvl in saved:
                lg.setLevel(lvl)


def checkpoint_cache_dir() -> Path:
    """Where mmengine's http loader caches downloaded checkpoints (torch hub's ``checkpoints/``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _numpy_safe_globals() -> list:
    """What a released mmpose checkpoint pickles besides tensors (numpy arrays and scalars in its
    ``meta["dataset_meta"]``), allowed for torch's ``weights_only`` loader; nothing executable."""
    import numpy.core.multiarray as ma

    dtypes = {type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_,
                                           np.uint8, np.int8, np.int16)}
    return [ma._reconstruct, ma.scalar, np.ndarray, np.dtype, *dtypes]


def _unpickling_problem(e: Exception) -> str:
    """One line for a checkpoint torch refuses to unpickle (``weights_only``) or cannot read."""
    lines = str(e).strip().splitlines()
    refused = [ln.strip() for ln in lines if "Unsupported global" in ln]
    if refused:
        what = refused[0].split("GLOBAL", 1)[-1].split(" was not", 1)[0].strip()
        return (f"torch's safe (weights_only) loader refuses the pickled {what}: a full training checkpoint? keep "
                "only its 'state_dict' and 'meta' (as mmpose's tools/misc/publish_model.py does)")
    return f"not a readable checkpoint ({type(e).__name__}: {lines[0] if lines else ''})"


def load_checkpoint_file(checkpoint: str) -> dict:
    """A checkpoint dict from a local path or an http(s) URL, through mmengine's ``CheckpointLoader``.

    Raises a one-line :class:`PosefixError` for a missing file, a URL that cannot be downloaded (naming the file to
    download and the cache folder to put it in), or a file torch cannot read.
    """
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader

    is_url = checkpoint.startswith(("http://", "https://"))
    if not is_url and not Path(checkpoint).is_file():
        raise file_error(checkpoint, "checkpoint not found")
    try:
        with quiet_mmengine(), torch.serialization.safe_globals(_numpy_safe_globals()):
            ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location="cpu")
    except OSError as e:  # URLError, HTTPError, connection errors are OSErrors
        if is_url:
            target = checkpoint_cache_dir() / os.path.basename(checkpoint.split("?")[0])
            raise PosefixError(
                f"{checkpoint}: cannot download the checkpoint ({getattr(e, 'reason', e)}); download it on a machine "
                f"with network access and put it at {target} (mmengine's cache, used automatically), or pass a local "
                "file with --checkpoint PATH"
            ) from None
        raise file_error(checkpoint, f"cannot read the checkpoint ({e})") from None
    except Exception as e:  # torch.load's unpickling / zip errors
        raise file_error(checkpoint, _unpickling_problem(e)) from None
    if not isinstance(ckpt, dict):
        raise file_error(checkpoint, f"not a checkpoint (a pickled {type(ckpt).__name__}, expected a dict)")
    return ckpt


def _load_state(model, ckpt: dict, checkpoint: str, card_name: str) -> None:
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, dict) or not state:
        raise file_error(checkpoint, "checkpoint has no state_dict")
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shape:
        what = [f"{len(missing)} missing" if missing else "", f"{len(unexpected)} unexpected" if unexpected else "",
                f"{len(shape)} of another shape" if shape else ""]
        example = (missing or unexpected or shape)[0]
        raise file_error(checkpoint, f"does not fit {card_name}: {', '.join(w for w in what if w)} parameters "
                                     f"(e.g. {example})")
    model.load_state_dict(state, strict=True)


def _resolve_device(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise PosefixError(f"device {device!r}: CUDA is not available on this machine (use --device cpu)")
    if not str(device).startswith(("cpu", "cuda")):
        raise PosefixError(f"device {device!r}: expected cpu, cuda or cuda:N")
    return str(device)


def dark_blur_kernel(sigma: float) -> int:
    """The odd Gaussian-blur kernel size whose OpenCV default sigma (``0.3 * ((k - 1) / 2 - 1) + 0.8``, what
    mmpose's ``gaussian_blur`` uses) is nearest the training Gaussian's ``sigma`` (heatmap pixels): DARK modulates
    the predicted heatmap with the same Gaussian the targets were drawn with (Zhang et al., CVPR 2020, Sec. 3.1,
    Eq. 9). mmpose's default 11 is this rule at its default sigma 2."""
    half = max(1, int(round((float(sigma) - 0.8) / 0.3 + 1.0)))
    return 2 * half + 1


def _post_processing(cfg, card: EstimatorCard, flip_test: bool, decode: str) -> dict:
    """Set the model's test-time post-processing in ``cfg`` (in place) and return a record of it.

    ``flip_test``: mmpose's flip test (``test_cfg.flip_test``: the flipped crop goes through the network too and the
    flipped output, its left/right keypoints swapped by the dataset meta's ``flip_indices``, is averaged with the
    plain one), with the card's own ``flip_mode`` / ``shift_heatmap``. ``decode``: ``standard`` (heatmap heads:
    argmax plus a quarter-pixel step towards the higher neighbour, ``MSRAHeatmap(unbiased=False)``; SimCC heads:
    argmax without DARK) or ``dark`` (heatmap heads only: distribution-aware decoding, ``unbiased=True``, blur kernel
    from :func:`dark_blur_kernel` unless the card sets one). Only decoding changes: the encoding a model was trained
    with lives in the training pipeline, which inference never runs.
    """
    if decode not in DECODE_MODES:
        raise PosefixError(f"source {card.name!r}: decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    test_cfg = dict(cfg.model.get("test_cfg") or {})
    test_cfg["flip_test"] = bool(flip_test)
    cfg.model.test_cfg = test_cfg
    decoder = cfg.model.get("head", {}).get("decoder")
    if not decoder:
        raise PosefixError(f"source {card.name!r}: the config's head has no decoder to set decode={decode!r} on")
    kind = decoder.get("type")
    if kind == "MSRAHeatmap":
        decoder["unbiased"] = decode == "dark"
        if decode == "dark" and "blur_kernel_size" not in decoder:
            decoder["blur_kernel_size"] = dark_blur_kernel(decoder.get("sigma", 2.0))
        if decode == "standard":
            decoder.pop("blur_kernel_size", None)
    elif decode == "dark":
        raise PosefixError(f"source {card.name!r}: decode='dark' needs a heatmap head (MSRAHeatmap codec); this "
                           f"card's decoder is {kind}")
    elif kind == "SimCCLabel":
        decoder["use_dark"] = False
    method = "+".join([m for m, on in (("flip-test", flip_test), ("dark", decode == "dark")) if on]) or "plain"
    record = {"method": method, "flip_test": bool(flip_test), "decode": decode, "decoder": kind}
    if flip_test:
        record.update({k: test_cfg[k] for k in ("flip_mode", "shift_heatmap") if k in test_cfg})
    if kind == "MSRAHeatmap":
        record["unbiased"] = bool(decoder["unbiased"])
        if decode == "dark":
            record["blur_kernel_size"] = int(decoder["blur_kernel_size"])
    return record


def build_mmpose_model(card: EstimatorCard, checkpoint: str | None, device: str = "cpu", seed: int = 0,
                       flip_test: bool = False, decode: str = "standard"):
    """An mmpose top-down model in eval mode (seeded random init, then the checkpoint's weights if given) and the
    record of its post-processing (:func:`_post_processing`)."""
    import torch

    cfg = copy.deepcopy(card.config)
    cfg.model.backbone.init_cfg = None  # never fetch ImageNet weights; the checkpoint (or nothing) sets them
    post = _post_processing(cfg, card, flip_test, decode)
    with quiet_mmengine(), torch.random.fork_rng(devices=[]):
        from mmpose.apis import init_model

        torch.manual_seed(seed)
        model = init_model(cfg, None, device="cpu")
        model.init_weights()  # mmpose's initialisation (what training starts from)
    if checkpoint is not None:
        ckpt = load_checkpoint_file(checkpoint)
        _load_state(model, ckpt, checkpoint, card.name)
        meta = ckpt.get("meta", {}) if isinstance(ckpt.get("meta"), dict) else {}
        if isinstance(meta.get("dataset_meta"), dict):
            model.dataset_meta = {**model.dataset_meta, **meta["dataset_meta"]}
    if flip_test and not (model.dataset_meta or {}).get("flip_indices"):
        raise PosefixError(f"source {card.name!r}: flip test needs the dataset meta's flip_indices, which are missing")
    model.to(device)
    model.eval()
    return model, post


class MmposeSource(Source):
    """A top-down mmpose estimator from a card.

    Args:
        card: the estimator card.
        checkpoint: weights (local path or URL); default the card's published checkpoint.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: person crops per forward pass (across images).
        untrained: run with random weights (mmpose's init, seeded); every output is marked untrained.
        seed: seed of the random initialisation (matters only with ``untrained=True``).
        flip_test: mmpose's flip test (default off: the plain estimator, whatever the card's config says).
        decode: ``standard`` (default; argmax + quarter offset for heatmap heads) or ``dark`` (DARK's
            distribution-aware decoding, heatmap heads only). ``info.extra["post_processing"]`` records both and
            ``info.extra["method"]`` names the combination (``plain``, ``flip-test``, ``dark``, ``flip-test+dark``).
    """

    def __init__(self, card: EstimatorCard, checkpoint: str | os.PathLike | None = None, device: str = "cpu",
                 batch_size: int = 16, untrained: bool = False, seed: int = 0, flip_test: bool = False,
                 decode: str = "standard"):
        if untrained and checkpoint is not None:
            raise PosefixError(f"source {card.name!r}: give either a checkpoint or untrained=True, not both")
        if batch_size < 1:
            raise PosefixError(f"source {card.name!r}: batch_size must be >= 1, got {batch_size}")
        ckpt = None if untrained else (os.fspath(checkpoint) if checkpoint is not None else card.checkpoint)
        if ckpt is None and not untrained:
            raise PosefixError(
                f"source {card.name!r}: no checkpoint (a sandbox card has no published weights: train it with "
                "posefix_bench.sources.mmpose_train.train_mmpose_estimator and pass checkpoint=PATH, or pass "
                "untrained=True for random weights)"
            )
        self.card = card
        self.device = _resolve_device(device)
        self.batch_size = int(batch_size)
        self.untrained = bool(untrained)
        self.model, post = build_mmpose_model(card, ckpt, self.device, seed, flip_test=bool(flip_test),
                                              decode=decode)
        extras = {"flip-test": " + flip test", "dark": " + DARK decoding"}
        self.info = SourceInfo(
            name=card.name, kind="mmpose", family=card.family, schema=COCO17.name, input_size=card.input_size,
            weights=ckpt, trained=not untrained, published=card.published,
            description=card.description + "".join(extras.get(m, "") for m in post["method"].split("+"))
            + (" [UNTRAINED: random weights]" if untrained else ""),
            extra={"mmpose_config": card.mmpose_config, "card": str(card.path), "device": self.device,
                   "seed": seed if untrained else None, "method": post["method"], "post_processing": post},
        )
        self._pipeline = None

    # -- inference -----------------------------------------------------------------------------------------
    def _check_schema(self, dataset) -> None:
        meta = self.model.dataset_meta or {}
        names = [meta.get("keypoint_id2name", {}).get(i) for i in range(int(meta.get("num_keypoints", 0)))]
        if tuple(names) != tuple(dataset.schema.keypoints):
            raise file_error(dataset.path, f"keypoint layout {dataset.schema.name} ({dataset.schema.num_keypoints} "
                                           f"keypoints) is not the one {self.name} predicts ({len(names)} keypoints)")

    def _forward(self, items: list) -> list:
        import torch
        from mmengine.dataset import pseudo_collate

        with torch.no_grad():
            return self.model.test_step(pseudo_collate(items))

    def _person_item(self, image_bgr: np.ndarray, image_id: int, box: np.ndarray, index: int) -> dict:
        if self._pipeline is None:
            from mmengine.dataset import Compose

            self._pipeline = Compose(self.model.cfg.test_dataloader.dataset.pipeline)
        x, y, w, h, score = (float(v) for v in box)
        info = dict(img=image_bgr, img_id=image_id, id=index, bbox=np.array([[x, y, x + w, y + h]], np.float32),
                    bbox_score=np.array([score], np.float32))
        info.update(self.model.dataset_meta)
        return self._pipeline(info)

    def predict(self, dataset, boxes: BoxSet | None = None, progress=no_progress) -> list[dict]:
        import cv2
        from mmengine.registry import init_default_scope

        self._check_schema(dataset)
        boxes = gt_boxes(dataset) if boxes is None else boxes
        image_ids = boxed_images(dataset, boxes)
        init_default_scope(self.model.cfg.get("default_scope", "mmpose"))
        per_image: dict[int, list] = {i: [] for i in image_ids}
        inputs: list[np.ndarray] = []  # the input boxes, by person index
        batch: list = []

        def flush():
            for sample in self._forward(batch):
                index = int(sample.metainfo["id"])
                per_image[int(sample.metainfo["img_id"])].append(_instance(sample, inputs[index]))
            batch.clear()

        with quiet_mmengine():
            for image_id in progress(image_ids, total=len(image_ids), desc=self.name):
                image = cv2.cvtColor(dataset.read_image(image_id), cv2.COLOR_RGB2BGR)
                for box in boxes.for_image(image_id):
                    inputs.append(box)
                    batch.append(self._person_item(image, image_id, box, len(inputs) - 1))
                    if len(batch) >= self.batch_size:
                        flush()
            if batch:
                flush()
        records = []
        for image_id in image_ids:
            kept = rescore_and_nms(per_image[image_id], self.model.cfg, dataset.schema.sigma_array)
            records += [_record(inst, image_id, dataset.category_id) for inst in kept]
        return mark_untrained(records) if self.untrained else records


    def estimate_boxes(self, dataset, image_ids, boxes: np.ndarray, progress=no_progress) -> np.ndarray:
        """One pose per given box, in order, without rescoring or NMS (the re-estimate method's use): (N, K, 3)
        x, y, keypoint score for ``image_ids`` (N,) and ``boxes`` (N, 4) x, y, w, h; each image is read once."""
        import cv2
        from mmengine.registry import init_default_scope

        self._check_schema(dataset)
        ids = np.asarray(image_ids, dtype=np.int64)
        out = np.zeros((len(ids), dataset.schema.num_keypoints, 3))
        init_default_scope(self.model.cfg.get("default_scope", "mmpose"))
        batch: list = []

        def flush():
            for sample in self._forward(batch):
                out[int(sample.metainfo["id"])] = _instance(sample, np.zeros(5))["keypoints"]
            batch.clear()

        with quiet_mmengine():
            for image_id in progress(list(dict.fromkeys(ids.tolist())), desc=self.name):
                image = cv2.cvtColor(dataset.read_image(image_id), cv2.COLOR_RGB2BGR)
                for i in np.flatnonzero(ids == image_id):
                    batch.append(self._person_item(image, int(image_id), np.append(boxes[i], 1.0), int(i)))
                    if len(batch) >= self.batch_size:
                        flush()
            if batch:
                flush()
        return out


def _instance(sample, box: np.ndarray) -> dict:
    """One person's prediction from a ``PoseDataSample`` (top-down: one box per sample) and its input box (5,)."""
    pred, gt = sample.pred_instances, sample.gt_instances
    kps = np.asarray(pred.keypoints, dtype=np.float64)[0]  # (K, 2)
    scores = np.asarray(pred.keypoint_scores, dtype=np.float64)[0]  # (K,)
    return {
        "keypoints": np.concatenate([kps, scores[:, None]], axis=1),  # (K, 3)
        "keypoint_scores": scores,
        "bbox_score": float(np.asarray(gt.bbox_scores)[0]),
        "area": float(np.prod(np.asarray(gt.bbox_scales)[0])),  # mmpose: prod of bbox_scales
        "bbox": [float(v) for v in box[:4]],
    }


def _metric_settings(cfg) -> dict:
    ev = cfg.get("val_evaluator", {}) or {}
    ev = ev[0] if isinstance(ev, (list, tuple)) and ev else ev
    return {
        "score_mode": ev.get("score_mode", "bbox_keypoint"),
        "keypoint_score_thr": float(ev.get("keypoint_score_thr", 0.2)),
        "nms_mode": ev.get("nms_mode", "oks_nms"),
        "nms_thr": float(ev.get("nms_thr", 0.9)),
    }


def rescore_and_nms(instances: list[dict], cfg, sigmas: np.ndarray) -> list[dict]:
    """mmpose's COCO instance score and OKS-NMS for the persons of one image (``CocoMetric.compute_metrics``)."""
    from mmpose.evaluation.functional import oks_nms, soft_oks_nms

    s = _metric_settings(cfg)
    if s["score_mode"] not in _SCORE_MODES:
        raise PosefixError(f"val_evaluator score_mode {s['score_mode']!r} is not supported (known: {_SCORE_MODES})")
    for inst in instances:
        kp_scores = inst["keypoint_scores"]
        if s["score_mode"] == "bbox":
            inst["score"] = inst["bbox_score"]
        elif s["score_mode"] == "keypoint":
            inst["score"] = max(float(np.mean(kp_scores)), 0.0)
        else:
            valid = kp_scores[kp_scores > s["keypoint_score_thr"]]
            inst["score"] = inst["bbox_score"] * (float(valid.mean()) if valid.size else 0.0)
    if s["nms_mode"] == "none" or not instances:
        return instances
    nms = oks_nms if s["nms_mode"] == "oks_nms" else soft_oks_nms
    keep = nms(instances, s["nms_thr"], sigmas=np.asarray(sigmas))
    return [instances[int(i)] for i in keep]


def _record(inst: dict, image_id: int, category_id: int) -> dict:
    return {
        "image_id": int(image_id),
        "category_id": int(category_id),
        "keypoints": [float(v) for v in inst["keypoints"].reshape(-1)],
        "score": float(inst["score"]),
        "bbox": [float(v) for v in inst["bbox"]],
    }
