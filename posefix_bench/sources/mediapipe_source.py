"""mediapipe's BlazePose as an upstream source: the one pretrained pose estimator available offline here.

BlazePose (Bazarevsky et al., "BlazePose: On-device Real-time Body Pose tracking", CVPR Workshops 2020) in its
"full" variant (``model_complexity=1``) ships inside the mediapipe 0.10.21 wheel (``pose_detection.tflite`` and
``pose_landmark_full.tflite``), so it runs without network through the legacy ``mediapipe.solutions.pose`` API.
It finds one person per call, so it runs top-down on person crops: each box, padded by 1.25 as SimpleBaseline and
PoseFix crop (:mod:`posefix_bench.structures.transforms`), is warped to a crop whose longer side is ``crop_size``
pixels with the box's aspect ratio. Its 33 landmarks map to the dataset's keypoints by name (``nose``,
``left_eye``, ... are BlazePose landmark names too), visibility is the keypoint confidence, and the instance score
is the box score times the mean visibility of the mapped keypoints. A crop in which BlazePose finds nobody gives
no result.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.progress import no_progress
from posefix_bench.sources.base import Source, SourceInfo
from posefix_bench.sources.boxes import BoxSet, boxed_images, gt_boxes
from posefix_bench.structures.schema import COCO17
from posefix_bench.structures.transforms import (
    DEFAULT_PADDING,
    affine_matrix,
    apply_affine,
    box_to_center_scale,
    invert_affine,
    warp_image,
)

__all__ = ["MEDIAPIPE_INFO", "MediapipeSource", "blazepose_index", "crop_geometry"]

MODEL_COMPLEXITY = 1  # "full": the only variant whose model ships in the 0.10.21 wheel


def _model_file() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(list(spec.submodule_search_locations)[0]) / "modules" / "pose_landmark" /
               "pose_landmark_full.tflite")


MEDIAPIPE_INFO = SourceInfo(
    name="mediapipe", kind="mediapipe", family="BlazePose", schema=COCO17.name, input_size=(256, 256),
    weights=_model_file(), trained=True, published=None,
    description="BlazePose full (mediapipe 0.10.21, pretrained, offline) on 1.25x person crops, 33 landmarks "
                "mapped to COCO-17 by name, visibility as confidence",
)


def blazepose_index(schema) -> np.ndarray:
    """(K,) BlazePose landmark index of each keypoint of ``schema`` (matched by name)."""
    import mediapipe as mp

    names = {lm.name.lower(): int(lm.value) for lm in mp.solutions.pose.PoseLandmark}
    missing = [k for k in schema.keypoints if k not in names]
    if missing:
        raise PosefixError(f"keypoint schema {schema.name!r}: BlazePose has no landmark {missing[0]!r}")
    return np.asarray([names[k] for k in schema.keypoints], dtype=np.int64)


def crop_geometry(box: np.ndarray, crop_size: int, padding: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Image -> crop matrix (2, 3) and crop size (w, h): the padded box, longer side ``crop_size`` pixels."""
    w, h = float(box[2]), float(box[3])
    if w >= h:
        out = (int(crop_size), max(1, int(round(crop_size * h / w))))
    else:
        out = (max(1, int(round(crop_size * w / h))), int(crop_size))
    center, scale = box_to_center_scale(np.asarray(box[:4], dtype=np.float64), out[0] / out[1], padding)
    return affine_matrix(center, scale, 0.0, out), out


class MediapipeSource(Source):
    """BlazePose full on person crops.

    Args:
        crop_size: longer side of each crop in pixels.
        padding: box enlargement before cropping (1.25 as SimpleBaseline / PoseFix).
        min_detection_confidence: BlazePose's person-detector threshold (mediapipe's default 0.5).
    """

    def __init__(self, crop_size: int = 256, padding: float = DEFAULT_PADDING, min_detection_confidence: float = 0.5):
        if crop_size < 32:
            raise PosefixError(f"source 'mediapipe': crop_size must be >= 32, got {crop_size}")
        weights = MEDIAPIPE_INFO.weights
        if weights is None or not os.path.isfile(weights):
            raise PosefixError(f"source 'mediapipe': BlazePose full model not found ({weights}); install "
                               "mediapipe==0.10.21, the last release that ships it in the wheel")
        self.crop_size = int(crop_size)
        self.padding = float(padding)
        self.min_detection_confidence = float(min_detection_confidence)
        self.info = MEDIAPIPE_INFO

    def _pose(self):
        os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ INFO lines
        import mediapipe as mp

        return mp.solutions.pose.Pose(static_image_mode=True, model_complexity=MODEL_COMPLEXITY,
                                      enable_segmentation=False,
                                      min_detection_confidence=self.min_detection_confidence)

    def estimate_person(self, pose, image: np.ndarray, box: np.ndarray, index: np.ndarray) -> np.ndarray | None:
        """(K, 3) x, y, visibility in image coordinates for one box, or None if BlazePose finds nobody."""
        matrix, out = crop_geometry(box, self.crop_size, self.padding)
        crop = np.ascontiguousarray(warp_image(image, matrix, out))
        found = pose.process(crop).pose_landmarks
        if found is None:
            return None
        lm = found.landmark
        xy = np.asarray([[lm[i].x * out[0], lm[i].y * out[1]] for i in index], dtype=np.float64)
        vis = np.asarray([lm[i].visibility for i in index], dtype=np.float64)
        return np.concatenate([apply_affine(xy, invert_affine(matrix)), vis[:, None]], axis=1)

    def predict(self, dataset, boxes: BoxSet | None = None, progress=no_progress) -> list[dict]:
        boxes = gt_boxes(dataset) if boxes is None else boxes
        index = blazepose_index(dataset.schema)
        image_ids = boxed_images(dataset, boxes)
        records = []
        with self._pose() as pose:
            for image_id in progress(image_ids, total=len(image_ids), desc=self.name):
                image = dataset.read_image(image_id)  # RGB, as mediapipe expects
                for box in boxes.for_image(image_id):
                    kp = self.estimate_person(pose, image, box, index)
                    if kp is None:
                        continue
                    records.append({
                        "image_id": int(image_id), "category_id": int(dataset.category_id),
                        "keypoints": [float(v) for v in kp.reshape(-1)],
                        "score": float(box[4]) * float(kp[:, 2].mean()),
                        "bbox": [float(v) for v in box[:4]],
                    })
        return records
