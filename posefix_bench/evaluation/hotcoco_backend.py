"""The fast COCO keypoint evaluator: hotcoco (a Rust port of pycocotools' ``COCOeval``) behind our evaluation rules.

:mod:`posefix_bench.evaluation.coco_eval` runs pycocotools (the reference) or this backend; ``auto`` takes this one
only where its ten stats were shown equal to pycocotools' (``tests/evaluation/test_evaluator_parity.py``: COCO-17,
custom OKS sigmas, CrowdPose-14 and MPII-16 layouts, person subsets, both absent policies; largest difference 0.0).
It feeds hotcoco exactly what pycocotools would see:

- Ground truth: the keypoint category's annotations reduced to the fields ``COCOeval`` reads (id, image_id,
  category_id, keypoints, num_keypoints, area, bbox, iscrowd), indexed once per :class:`CocoDataset` and kept for
  later calls (a diagnosis runs seven evaluations, the bench one per source, ablation, seed and subset).
  A person subset (``person_ids``) is a second index in which the other persons have ``num_keypoints`` 0: that is
  how ``COCOeval._prepare`` marks an ignore region, the same effect as the reference's ``ignore = 1``.
- Detections: the areas (used for the medium/large ranges) are computed here by pycocotools' ``loadRes`` rule
  (the keypoint extent, or the ``bbox`` field when the first record has one) or, under the ``absent`` policy, from
  the predicted keypoints only; they are written onto hotcoco's detections. An absent keypoint is moved to
  (:data:`FAR`, :data:`FAR`), where its KS underflows to exactly 0.0, the value the reference gives it.

A case outside what was verified (another hotcoco version, a ground-truth field ``COCOeval`` would read differently,
detections whose area pycocotools takes from a segmentation) is reported by :func:`unsupported` so that ``auto``
falls back to pycocotools; the reason goes into the evaluation record.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import math
import warnings
import weakref
from typing import Sequence

import numpy as np

from posefix_bench.codecs.oks import AREA_EPS
from posefix_bench.structures.coco import CocoDataset

__all__ = ["NAME", "VERIFIED_VERSIONS", "FAR", "available", "unsupported", "hotcoco_stats"]

NAME = "hotcoco"
VERIFIED_VERSIONS = ("1.3.0",)  # parity-tested against pycocotools 2.0.x (pyproject pins this one)
FAR = 1e15  # where absent keypoints go: KS = exp(-e) with e >= MIN_EXPONENT underflows to exactly 0.0
MIN_EXPONENT = 1e3  # exp(-746) is already 0.0 in float64
_GT_FIELDS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "area", "bbox", "iscrowd")
_MAX_SUBSETS = 8  # person-subset indexes kept per ground truth
_cache: "weakref.WeakKeyDictionary[CocoDataset, _GroundTruth]" = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=1)
def available() -> str | None:
    """None when hotcoco is importable in a parity-tested version, else the reason it is not used."""
    try:
        import hotcoco
    except ImportError:
        return "hotcoco is not installed"
    version = getattr(hotcoco, "__version__", "?")
    if version not in VERIFIED_VERSIONS:
        return f"hotcoco {version} is not a parity-tested version ({', '.join(VERIFIED_VERSIONS)})"
    return _params_problem()


def _params_problem() -> str | None:
    """hotcoco's keypoint defaults must be pycocotools' ``Params.setKpParams`` (checked once per process)."""
    import hotcoco

    p = hotcoco.Params("keypoints")
    iou = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
    rec = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
    if not (np.array_equal(p.iou_thrs, iou) and np.array_equal(p.rec_thrs, rec) and list(p.max_dets) == [20]
            and [list(r) for r in p.area_rng] == [[0, 1e5**2], [32**2, 96**2], [96**2, 1e5**2]]):
        return "hotcoco's keypoint parameters differ from pycocotools'"
    return None


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _plain_numbers(values) -> bool:
    """Whether every value is a finite int or float (no bool, no None, no string): JSON numbers."""
    values = list(values)
    return set(map(type, values)) <= {int, float} and bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())


def _annotation_problem(a: dict, k3: int) -> bool:
    """The slow, per-annotation form of the checks in :meth:`_GroundTruth._check` (to name the first culprit)."""
    kp, box, nk = a["keypoints"], a["bbox"], a["num_keypoints"]
    return (not all(_num(a[f]) for f in ("id", "image_id", "area")) or a["id"] != int(a["id"])
            or a["image_id"] != int(a["image_id"]) or not isinstance(box, list) or len(box) != 4
            or not all(_num(v) for v in box) or not isinstance(kp, list) or len(kp) != k3
            or not all(_num(v) for v in kp) or not _num(nk) or nk != int(nk) or nk < 0 or not _num(a["iscrowd"])
            or a["iscrowd"] not in (0, 1))


class _GroundTruth:
    """One CocoDataset's annotations as hotcoco indexes (the full one, and one per person subset)."""

    def __init__(self, gt: CocoDataset):
        cat, k3 = gt.category_id, 3 * gt.schema.num_keypoints
        anns = [a for a in gt.coco.dataset["annotations"] if a.get("category_id") == cat]
        self.anns: list[dict] = []
        self.images = [{"id": int(i)} for i in gt.coco.imgs]
        self.categories = [dict(gt.category)]
        self.extent = self.max_area = 0.0
        self._full = None
        self._subsets: dict[frozenset, object] = {}
        self.problem: str | None = self._check(anns, k3)
        if self.problem is not None:
            return
        self.anns = [{"id": int(a["id"]), "image_id": int(a["image_id"]), "category_id": cat,
                      "keypoints": a["keypoints"], "num_keypoints": int(a["num_keypoints"]),
                      "area": float(a["area"]), "bbox": a["bbox"], "iscrowd": int(a["iscrowd"])} for a in anns]
        kps = np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, 3)
        boxes = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        # the largest coordinate a distance to an absent keypoint at FAR can start from (keypoints, box margins)
        self.extent = float(max(np.abs(kps[:, :2]).max(initial=0.0),
                                (np.abs(boxes[:, :2]) + 2 * np.abs(boxes[:, 2:])).max(initial=0.0)))
        self.max_area = float(max((a["area"] for a in self.anns), default=0.0))

    @staticmethod
    def _check(anns: list[dict], k3: int) -> str | None:
        """Fields COCOeval reads must be present, finite JSON numbers, integral ids and num_keypoints >= 0,
        iscrowd 0 or 1: where they are not, pycocotools' own reading is the reference (vectorised checks first)."""
        for a in anns:
            for f in _GT_FIELDS:
                if f not in a:
                    return f"ground-truth annotation {a.get('id')!r} has no {f!r}"
        kps, boxes = [a["keypoints"] for a in anns], [a["bbox"] for a in anns]
        cols = [[a[f] for a in anns] for f in ("id", "image_id", "area", "num_keypoints", "iscrowd")]
        ok = (all(type(k) is list and len(k) == k3 for k in kps) and all(type(b) is list and len(b) == 4 for b in boxes)
              and _plain_numbers(itertools.chain.from_iterable(kps))
              and _plain_numbers(itertools.chain.from_iterable(boxes)) and _plain_numbers(itertools.chain(*cols)))
        if ok:
            ids, image_ids, _, nk, crowd = (np.asarray(c, dtype=np.float64) for c in cols)
            ok = bool((ids == np.floor(ids)).all() and (image_ids == np.floor(image_ids)).all()
                      and (nk == np.floor(nk)).all() and (nk >= 0).all() and np.isin(crowd, (0, 1)).all())
        if ok:
            return None
        bad = next((a["id"] for a in anns if _annotation_problem(a, k3)), "?")
        return f"ground-truth annotation {bad!r} has a field COCOeval may read differently"

    def _index(self, anns: list[dict]):
        import hotcoco

        return hotcoco.COCO({"images": self.images, "categories": self.categories, "annotations": anns})

    def index(self, person_ids: frozenset | None):
        if person_ids is None:
            if self._full is None:
                self._full = self._index(self.anns)
            return self._full
        if person_ids not in self._subsets:
            if len(self._subsets) >= _MAX_SUBSETS:
                self._subsets.pop(next(iter(self._subsets)))
            self._subsets[person_ids] = self._index(
                [a if a["id"] in person_ids else dict(a, num_keypoints=0) for a in self.anns])
        return self._subsets[person_ids]


def _ground_truth(gt: CocoDataset) -> _GroundTruth:
    g = _cache.get(gt)
    if g is None:
        g = _cache[gt] = _GroundTruth(gt)
    return g


def unsupported(gt: CocoDataset, results: Sequence[dict], keypoints: np.ndarray,
                absent: np.ndarray | None) -> str | None:
    """Why hotcoco cannot stand in for pycocotools on these inputs (None: it can).

    Args:
        results: the validated records (N); keypoints: (N, K, 3) theirs; absent: (N, K) bool or None.
    """
    reason = available()
    if reason is not None:
        return reason
    g = _ground_truth(gt)
    if g.problem is not None:
        return g.problem
    if not results:
        return None
    if any(r["category_id"] != gt.category_id for r in results):
        return "detections of another category"  # validated results never have them
    first = results[0]
    if "caption" in first or (("bbox" not in first or first["bbox"] == []) and "segmentation" in first):
        return "detections carry a caption or segmentation (pycocotools' loadRes reads their area from it)"
    if "bbox" in first and first["bbox"] != [] and not all(
            isinstance(r.get("bbox"), (list, tuple)) and len(r["bbox"]) == 4 and all(_num(v) for v in r["bbox"])
            for r in results):
        return "detections' bbox fields are not all four finite numbers"
    if absent is not None and absent.any():
        sig = float(np.max(gt.schema.sigma_array))
        extent = max(g.extent, float(np.abs(keypoints[..., :2][~absent]).max(initial=0.0)))
        if (FAR - extent) ** 2 / (8 * sig**2) / (g.max_area + AREA_EPS) < MIN_EXPONENT:
            return "coordinates or areas too large to encode absent keypoints for hotcoco"
    return None


def loadres_areas(results: Sequence[dict], keypoints: np.ndarray) -> np.ndarray:
    """(N,) detection areas as pycocotools' ``loadRes`` sets them: the first record decides the rule (its ``bbox``
    w * h for every record, else the extent of all keypoints).

    Args:
        keypoints: (N, K, 3) the records' keypoints.
    """
    if results and "bbox" in results[0] and results[0]["bbox"] != []:
        return np.asarray([r["bbox"][2] * r["bbox"][3] for r in results], dtype=np.float64)
    x, y = keypoints[..., 0], keypoints[..., 1]
    return (x.max(axis=1) - x.min(axis=1)) * (y.max(axis=1) - y.min(axis=1))


def hotcoco_stats(
    gt: CocoDataset,
    results: Sequence[dict],
    keypoints: np.ndarray,
    absent: np.ndarray | None,
    areas: np.ndarray,
    image_ids: Sequence[int],
    person_ids: frozenset | None,
) -> np.ndarray:
    """``COCOeval.stats`` by hotcoco (check :func:`unsupported` first). Detections are numbered 1..N in record
    order, as ``loadRes`` numbers them (ties in score keep that order in both evaluators).

    Args:
        results: validated records (N), all of the ground truth's keypoint category; keypoints: (N, K, 3) theirs.
        absent: (N, K) bool keypoints that count as not predicted (KS 0), or None.
        areas: (N,) detection areas (:func:`loadres_areas`, or the absent policy's).
        image_ids: the images to evaluate; person_ids: the person subset (others are ignore regions) or None.
    """
    import hotcoco

    cat = gt.category_id
    if absent is not None and absent.any():
        kp = keypoints.copy()
        kp[..., :2][absent] = FAR
        kp_lists = kp.reshape(len(results), -1).tolist()
    else:
        kp_lists = [r["keypoints"] for r in results]
    dets = [{"image_id": r["image_id"], "category_id": cat, "keypoints": kp, "score": r["score"]}
            for r, kp in zip(results, kp_lists)]
    coco_gt = _ground_truth(gt).index(person_ids)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # hotcoco warns that custom sigmas are not COCO's: they are the schema's
        coco_dt = coco_gt.load_res(dets)
        coco_dt.update_anns(ids=np.arange(1, len(dets) + 1), area=np.asarray(areas, dtype=np.float64))
        ev = hotcoco.COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.img_ids = [int(i) for i in image_ids]
        ev.params.cat_ids = [cat]
        ev.params.kpt_oks_sigmas = [float(s) for s in gt.schema.sigma_array]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)
