"""COCO-format person-keypoint ground truth and its images, loaded with pycocotools.

One class, :class:`CocoDataset`, serves every stage: the evaluator takes its ``coco`` object, the diagnosis and
synthesis take per-image arrays from :meth:`CocoDataset.gt_arrays`, the training data and the refiner read images
through :meth:`CocoDataset.read_image`. The keypoint layout comes from the dataset's own category
(:meth:`KeypointSchema.from_coco_category`), so a COCO root, the generated sandbox and a CrowdPose-style file are
read the same way.

A COCO root is laid out as ``ROOT/annotations/person_keypoints_<split>.json`` with images in ``ROOT/<split>/``
(e.g. ``val2017``); :func:`coco_split_paths` resolves that layout.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.structures.checks import validate_annotations
from posefix_bench.structures.io import read_json
from posefix_bench.structures.rows import ArrayRows
from posefix_bench.structures.schema import KeypointSchema

__all__ = ["CocoDataset", "PersonArrays", "coco_split_paths", "default_cache_root", "default_coco_mini_root",
           "gc_paused", "read_image_file"]

COCO_MINI_ENV = "POSEFIX_COCO_MINI"
CACHE_ENV = "POSEFIX_CACHE"


def default_cache_root() -> Path:
    """Where generated data, trained models and bench steps are cached: ``$POSEFIX_CACHE``, else ``.cache/posefix-bench``
    in the repository root."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".cache" / "posefix-bench"


def default_coco_mini_root() -> Path:
    """``$POSEFIX_COCO_MINI``, else ``../shared/data/coco-mini`` beside the repository root."""
    env = os.environ.get(COCO_MINI_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco-mini"


def coco_split_paths(root: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of ``split`` (e.g. ``val2017``) in a COCO root."""
    root = Path(root)
    ann = root / "annotations" / f"person_keypoints_{split}.json"
    return ann, root / split


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while a large, acyclic structure is built (a parsed annotation file and
    its index). Its collections keep traversing the growing heap: with them, loading the 29,736-person COCO-val-sized
    sandbox cost 15% more CPU per person than a quarter of it; paused, 3% more, and 15% less CPU at full size
    (measured side by side in one process, issue 20)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_image_file(path: str | os.PathLike) -> np.ndarray:
    """An image file as an (H, W, 3) uint8 RGB array; a missing or undecodable file is a one-line error."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise file_error(p, "image not found")
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise file_error(p, "cannot be decoded as an image (corrupt or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class PersonArrays(ArrayRows, rows="ann_ids"):
    """The ground-truth persons of one image as arrays (G persons, K keypoints).

    Attributes:
        keypoints: (G, K, 3) float64, x, y, visibility flag v (0 unlabelled, 1 labelled occluded, 2 visible).
        boxes: (G, 4) float64 COCO boxes x, y, w, h.
        areas: (G,) float64 segmentation areas (the OKS scale s**2).
        iscrowd: (G,) bool.
        ann_ids: (G,) int64 annotation ids.
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    iscrowd: np.ndarray
    ann_ids: np.ndarray


class CocoDataset:
    """COCO person-keypoint ground truth (pycocotools ``COCO``), its keypoint schema and its image folder.

    Args:
        ann_file: a COCO keypoint annotation JSON.
        image_dir: folder holding the images by ``file_name``; default: the COCO-root folder named after the
            annotation file's split (``annotations/person_keypoints_val2017.json`` -> ``val2017/``), if present.
        category_id: the keypoint category to use when the file has several.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike | None = None,
        category_id: int | None = None,
    ):
        with gc_paused():
            self._load(ann_file, category_id)
        if image_dir is None:
            stem = self.path.stem
            split = stem[len("person_keypoints_"):] if stem.startswith("person_keypoints_") else stem
            guess = self.path.parent.parent / split
            image_dir = guess if guess.is_dir() else None
        self.image_dir = Path(image_dir) if image_dir is not None else None
        self._arrays: dict[int, PersonArrays] = {}

    def _load(self, ann_file, category_id) -> None:
        from pycocotools.coco import COCO

        self.path = Path(ann_file)
        data = read_json(self.path, "COCO annotation file")
        if not isinstance(data, dict):
            raise file_error(self.path, f"expected a COCO annotation object, got a JSON {type(data).__name__}")
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise file_error(self.path, f"not a COCO annotation file (no '{key}' list)")
        kp_cats = [c for c in data["categories"] if isinstance(c, Mapping) and c.get("keypoints")]
        if category_id is not None:
            kp_cats = [c for c in kp_cats if c.get("id") == category_id]
        if not kp_cats:
            which = f"with id {category_id} " if category_id is not None else ""
            raise file_error(self.path, f"no keypoint category {which}in 'categories'")
        if len(kp_cats) > 1:
            ids = [c.get("id") for c in kp_cats]
            raise file_error(self.path, f"several keypoint categories {ids}: choose one with category_id")
        self.category = dict(kp_cats[0])
        self.category_id = int(self.category["id"])
        self.schema: KeypointSchema = KeypointSchema.from_coco_category(self.category, source=str(self.path))
        k3 = 3 * self.schema.num_keypoints
        for i, ann in enumerate(data["annotations"]):
            if not isinstance(ann, Mapping) or "image_id" not in ann or "bbox" not in ann:
                raise file_error(self.path, f"annotation {i} lacks 'image_id' or 'bbox'")
            if ann.get("category_id") == self.category_id and len(ann.get("keypoints", ())) != k3:
                raise file_error(
                    self.path,
                    f"annotation {ann.get('id', i)} has {len(ann.get('keypoints', ()))} keypoint values, "
                    f"expected {k3}",
                )
        validate_annotations(data["annotations"], self.path, self.category_id, self.schema.num_keypoints)
        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()

    # -- images --------------------------------------------------------------------------------------------
    @property
    def image_ids(self) -> list[int]:
        return sorted(self.coco.imgs)

    def image_info(self, image_id: int) -> dict:
        try:
            return self.coco.imgs[image_id]
        except KeyError:
            raise file_error(self.path, f"image id {image_id} not in the ground truth") from None

    def image_path(self, image_id: int) -> Path:
        if self.image_dir is None:
            raise PosefixError(f"{self.path}: no image folder known for this annotation file (give image_dir)")
        return self.image_dir / self.image_info(image_id)["file_name"]

    def read_image(self, image_id: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        return read_image_file(self.image_path(image_id))

    # -- persons -------------------------------------------------------------------------------------------
    def annotations(self, image_id: int) -> list[dict]:
        """All annotations of the keypoint category in one image (crowd regions included), in id order."""
        ids = self.coco.getAnnIds(imgIds=[image_id], catIds=[self.category_id])
        return self.coco.loadAnns(sorted(ids))

    def gt_arrays(self, image_id: int) -> PersonArrays:
        """The image's persons as arrays (cached); see :class:`PersonArrays`."""
        cached = self._arrays.get(image_id)
        if cached is not None:
            return cached
        anns = self.annotations(image_id)
        k = self.schema.num_keypoints
        arr = PersonArrays(
            keypoints=np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(len(anns), k, 3),
            boxes=np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(len(anns), 4),
            areas=np.asarray([a.get("area", a["bbox"][2] * a["bbox"][3]) for a in anns], dtype=np.float64),
            iscrowd=np.asarray([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
            ann_ids=np.asarray([a.get("id", i) for i, a in enumerate(anns)], dtype=np.int64),
        )
        for a in (arr.keypoints, arr.boxes, arr.areas, arr.iscrowd, arr.ann_ids):
            a.setflags(write=False)
        self._arrays[image_id] = arr
        return arr

    def persons(self, min_keypoints: int = 1, include_crowd: bool = False) -> Iterator[tuple[int, dict]]:
        """(image_id, annotation) of every person with at least ``min_keypoints`` labelled keypoints."""
        for image_id in self.image_ids:
            for ann in self.annotations(image_id):
                if ann.get("iscrowd", 0) and not include_crowd:
                    continue
                if int(ann.get("num_keypoints", 0)) >= min_keypoints:
                    yield image_id, ann

    def __len__(self) -> int:
        return len(self.coco.imgs)

    def __repr__(self) -> str:
        return (f"CocoDataset({str(self.path)!r}, images={len(self)}, annotations={len(self.coco.anns)}, "
                f"schema={self.schema.name})")
