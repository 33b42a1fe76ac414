"""Person boxes for top-down estimation: ground-truth boxes, or a COCO detection-results file.

Top-down estimators (SimpleBaseline, HRNet, RTMPose, PoseFix's own evaluation) run on person boxes. COCO's
keypoint protocol as mmpose runs it (``BaseCocoStyleDataset._load_detection_results``): every box of the person
category in a detection-results file (``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``), the
box score kept for rescoring; mmpose's COCO configs use no score threshold (``score_thr=0``), and a threshold can
be set as the original SimpleBaseline code allowed (``image_thre``). With ground-truth boxes (mmpose's
``bbox_file=None``), every non-crowd person with at least one labelled keypoint and a non-empty box is used, with
score 1 (``BaseCocoStyleDataset._is_valid_instance``).

Shape legend: N boxes of one image.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.structures.io import read_json

__all__ = ["BoxSet", "load_boxes", "gt_boxes", "detection_boxes", "boxed_images"]


@dataclass(frozen=True)
class BoxSet:
    """Person boxes of a set of images.

    Attributes:
        boxes: image id -> (N, 5) float64 ``x, y, w, h, score`` (N may be 0: an image with no box above the
            threshold still belongs to the set, as COCO evaluation counts it).
        origin: ``"gt"`` or the detection file's path.
        score_thr: boxes with a lower score were dropped.
    """

    boxes: Mapping[int, np.ndarray]
    origin: str
    score_thr: float = 0.0

    @property
    def image_ids(self) -> list[int]:
        """The images the boxes cover, sorted (evaluate on these)."""
        return sorted(self.boxes)

    @property
    def num_boxes(self) -> int:
        return int(sum(b.shape[0] for b in self.boxes.values()))

    def for_image(self, image_id: int) -> np.ndarray:
        """(N, 5) boxes of one image (empty if the image is not in the set)."""
        return self.boxes.get(int(image_id), np.zeros((0, 5)))

    def __len__(self) -> int:
        return len(self.boxes)

    def __repr__(self) -> str:
        return f"BoxSet({self.origin!r}, images={len(self)}, boxes={self.num_boxes}, score_thr={self.score_thr})"


def _freeze(boxes: dict[int, list]) -> Mapping[int, np.ndarray]:
    out = {}
    for image_id, rows in boxes.items():
        a = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        a.setflags(write=False)
        out[int(image_id)] = a
    return MappingProxyType(out)


def gt_boxes(dataset) -> BoxSet:
    """Ground-truth boxes (score 1) of every non-crowd person with a labelled keypoint, for every image."""
    boxes: dict[int, list] = {}
    for image_id in dataset.image_ids:
        arr = dataset.gt_arrays(image_id)
        valid = ~arr.iscrowd & (arr.keypoints[:, :, 2] > 0).any(axis=1)
        valid &= (arr.boxes[:, 2] > 0) & (arr.boxes[:, 3] > 0)
        boxes[image_id] = [list(b) + [1.0] for b in arr.boxes[valid]]
    if not any(boxes.values()):
        raise file_error(dataset.path, "no person with labelled keypoints, so no ground-truth box to estimate on")
    return BoxSet(_freeze(boxes), "gt", 0.0)


def _check_detection(path: Path, i: int, det) -> tuple[int, list[float]]:
    if not isinstance(det, dict):
        raise file_error(path, f"box {i} is not a JSON object")
    for key in ("image_id", "bbox", "score"):
        if key not in det:
            raise file_error(path, f"box {i} has no '{key}'")
    bbox, score = det["bbox"], det["score"]
    if not isinstance(det["image_id"], int) or isinstance(det["image_id"], bool):
        raise file_error(path, f"box {i} has a non-integer image_id {det['image_id']!r}")
    if not isinstance(bbox, list) or len(bbox) < 4:
        raise file_error(path, f"box {i} has a 'bbox' that is not a list x, y, w, h")
    values = bbox[:4] + [score]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise file_error(path, f"box {i} has a non-numeric or non-finite bbox/score value")
    if bbox[2] <= 0 or bbox[3] <= 0:
        raise file_error(path, f"box {i} has a non-positive width or height ({bbox[2]} x {bbox[3]})")
    return int(det["image_id"]), [float(v) for v in values]


def detection_boxes(path: str | os.PathLike, dataset, score_thr: float = 0.0, category_id: int | None = None) -> BoxSet:
    """Boxes from a COCO detection-results file, checked against ``dataset``.

    Args:
        path: JSON list of ``{"image_id", "category_id", "bbox", "score"}``.
        dataset: the ground truth; every image id of the file must be in it.
        score_thr: drop boxes with ``score < score_thr``.
        category_id: the person category of the file (default: the dataset's keypoint category); boxes of other
            categories are skipped, as mmpose does.
    """
    p = Path(path)
    data = read_json(p, "detection file")
    if not isinstance(data, list):
        raise file_error(p, "expected a JSON list of detections (COCO detection-results format)")
    if not data:
        raise file_error(p, "empty box list")
    cat = dataset.category_id if category_id is None else int(category_id)
    boxes: dict[int, list] = {}
    for i, det in enumerate(data):
        image_id, row = _check_detection(p, i, det)
        if det.get("category_id", cat) != cat:
            continue
        boxes.setdefault(image_id, [])
        if row[4] >= score_thr:
            boxes[image_id].append(row)
    if not boxes:
        raise file_error(p, f"no box of category {cat} (the keypoint category of {dataset.path})")
    unknown = sorted(set(boxes) - set(dataset.image_ids))
    if unknown:
        raise file_error(
            p, f"boxes for {len(unknown)} image ids that are not in {dataset.path} (e.g. {unknown[0]}): a box file "
               "for other images",
        )
    if not any(boxes.values()):
        raise file_error(p, f"empty box list: no box with score >= {score_thr}")
    return BoxSet(_freeze(boxes), str(p), float(score_thr))


def load_boxes(path_or_gt: str | os.PathLike, dataset, score_thr: float = 0.0) -> BoxSet:
    """``"gt"`` -> :func:`gt_boxes`; a path -> :func:`detection_boxes` with ``score_thr``."""
    if score_thr < 0 or not math.isfinite(score_thr):
        raise PosefixError(f"box score threshold must be finite and >= 0, got {score_thr}")
    if isinstance(path_or_gt, str) and path_or_gt == "gt":
        return gt_boxes(dataset)
    return detection_boxes(path_or_gt, dataset, score_thr)


def boxed_images(dataset, boxes: BoxSet) -> list[int]:
    """The image ids that have at least one box, after checking that each image file exists (so a top-down
    source fails before any work rather than half-way)."""
    ids = [i for i in boxes.image_ids if len(boxes.for_image(i))]
    for image_id in ids:
        path = dataset.image_path(image_id)
        if not path.is_file():
            raise file_error(path, "image not found")
    return ids
