"""COCO keypoint AP/AR, computed by pycocotools (the reference) or hotcoco (a Rust port, same numbers), as a record.

The ten numbers are ``COCOeval.stats`` for ``iouType='keypoints'`` (OKS thresholds 0.50:0.05:0.95, 20 detections
per image, area ranges all / medium / large), restricted to the ground truth's image ids, with the OKS sigmas of
the dataset's keypoint schema. Under the ``pycocotools`` absent-keypoint policy, or whenever no keypoint is
absent, pycocotools runs unmodified and the numbers equal ``COCOeval.stats`` exactly. Under the ``absent`` policy
with absent keypoints, only ``computeOks`` changes: an absent keypoint contributes KS = 0 (and the detection's
area, used for the area ranges, is taken from its predicted keypoints only).

Evaluators (``evaluator=``): ``pycocotools`` always runs the reference; ``hotcoco`` runs
:mod:`posefix_bench.evaluation.hotcoco_backend` (about 50x faster here on 5,000 detections) and fails when it
cannot stand in; ``auto`` (default) takes hotcoco where it was shown to give the same ten numbers (parity tests on
coco-mini, every schema, subsets, both policies) and pycocotools otherwise. The record names the backend that
produced its numbers (``evaluator``) and why ``auto`` fell back (``evaluator_fallback``).
"""

from __future__ import annotations

import contextlib
import io
from typing import Iterable, Sequence

import numpy as np

from posefix_bench.codecs.oks import oks_matrix
from posefix_bench.errors import PosefixError
from posefix_bench.evaluation import hotcoco_backend
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY, absent_mask
from posefix_bench.structures.transforms import keypoints_to_box

__all__ = ["METRIC_KEYS", "EVALUATORS", "DEFAULT_EVALUATOR", "check_evaluator", "evaluate",
           "evaluate_stats", "per_image_evaluation"]

METRIC_KEYS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
PYCOCOTOOLS = "pycocotools"
EVALUATORS = ("auto", PYCOCOTOOLS, hotcoco_backend.NAME)
DEFAULT_EVALUATOR = "auto"


def check_evaluator(name: str) -> str:
    if name not in EVALUATORS:
        raise PosefixError(f"evaluator {name!r}: unknown (known: {', '.join(EVALUATORS)})")
    return name


def _detections(gt: CocoDataset, results: Sequence[dict], absent_policy: str):
    """(N, K, 3) keypoints, (N, K) absent mask (None when nothing is absent), (N,) areas under the absent policy
    (from the predicted keypoints only; None when nothing is absent)."""
    k = gt.schema.num_keypoints
    kps = np.asarray([r["keypoints"] for r in results], dtype=np.float64).reshape(len(results), k, 3)
    absent = absent_mask(kps, absent_policy)
    if not absent.any():
        return kps, None, None
    box = keypoints_to_box(kps, ~absent)
    return kps, absent, box[:, 2] * box[:, 3]


def _pycocotools_eval(gt: CocoDataset, results, absent, areas, image_ids, person_ids, area_all_only: bool = False):
    """A stock ``COCOeval`` (unless the absent policy or a person subset needs one of two overrides) after
    ``evaluate()``; ``area_all_only``: only the area range "all" (what AP and the bootstrap read)."""
    from pycocotools.cocoeval import COCOeval

    k = gt.schema.num_keypoints
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.coco.loadRes([dict(r) for r in results])
    det_absent = {}
    if absent is not None:  # area ranges from the predicted keypoints only (loadRes numbers records from 1)
        for i, (a, m) in enumerate(zip(areas, absent)):
            d = dt.anns[i + 1]
            kp = np.asarray(d["keypoints"], dtype=np.float64).reshape(1, k, 3)
            d["bbox"] = keypoints_to_box(kp, ~m[None])[0].tolist()
            d["area"] = float(a)
            det_absent[i + 1] = m

    class PosefixCOCOeval(COCOeval):
        def _prepare(self):
            super()._prepare()
            if person_ids is not None:  # persons outside the subset become ignore regions, like crowds
                for gts in self._gts.values():
                    for g in gts:
                        if g["id"] not in person_ids:
                            g["ignore"] = 1

        def computeOks(self, imgId, catId):  # noqa: N802 (pycocotools' name)
            if not det_absent:
                return super().computeOks(imgId, catId)
            p = self.params
            gts = self._gts[imgId, catId]
            dts = self._dts[imgId, catId]
            order = np.argsort([-d["score"] for d in dts], kind="mergesort")
            dts = [dts[i] for i in order][: p.maxDets[-1]]
            if not gts or not dts:
                return []
            return oks_matrix(
                np.asarray([d["keypoints"] for d in dts], dtype=np.float64).reshape(len(dts), k, 3),
                np.asarray([g["keypoints"] for g in gts], dtype=np.float64).reshape(len(gts), k, 3),
                np.asarray([g["area"] for g in gts], dtype=np.float64),
                np.asarray([g["bbox"] for g in gts], dtype=np.float64),
                np.asarray(p.kpt_oks_sigmas, dtype=np.float64),
                det_absent=np.stack([det_absent[d["id"]] for d in dts]),
            )

    with contextlib.redirect_stdout(io.StringIO()):
        cls = COCOeval if not det_absent and person_ids is None else PosefixCOCOeval
        ev = cls(gt.coco, dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = gt.schema.sigma_array
        ev.params.imgIds = list(image_ids)
        ev.params.catIds = [gt.category_id]
        if area_all_only:
            ev.params.areaRng, ev.params.areaRngLbl = ev.params.areaRng[:1], ev.params.areaRngLbl[:1]
        ev.evaluate()
    return ev


def _pycocotools_stats(gt: CocoDataset, results, absent, areas, image_ids, person_ids) -> np.ndarray:
    ev = _pycocotools_eval(gt, results, absent, areas, image_ids, person_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)


def per_image_evaluation(
    gt: CocoDataset,
    results: Sequence[dict],
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    image_ids: Iterable[int] | None = None,
    person_ids: Iterable[int] | None = None,
) -> tuple[list[int], list, np.ndarray]:
    """pycocotools' per-image matching of validated, non-empty results, under the rules of :func:`evaluate`:
    (the evaluated image ids, sorted; ``COCOeval.evaluateImg``'s record of each (area range "all", top 20
    detections; None for an image with neither ground truth nor detections); the (T,) OKS thresholds).
    ``image_ids`` defaults as in :func:`evaluate`. What :mod:`posefix_bench.evaluation.bootstrap` resamples."""
    if not results:
        raise PosefixError("results: empty results list (no per-image matches to evaluate)")
    subset = None if person_ids is None else frozenset(int(i) for i in person_ids)
    if image_ids is None:
        image_ids = gt.image_ids if subset is None else {gt.coco.anns[i]["image_id"] for i in subset}
    ids = sorted(set(int(i) for i in image_ids))
    _, absent, areas = _detections(gt, results, absent_policy)
    ev = _pycocotools_eval(gt, results, absent, areas, ids, subset, area_all_only=True)
    return ids, list(ev.evalImgs[:len(ids)]), np.asarray(ev.params.iouThrs, dtype=np.float64)


def _stats(gt, results, absent_policy, image_ids, person_ids, evaluator):
    """(stats (10,), backend name, why auto fell back or None, (N, K) absent mask or None)."""
    check_evaluator(evaluator)
    kps, absent, areas = _detections(gt, results, absent_policy)
    backend, fallback = PYCOCOTOOLS, None
    if evaluator != PYCOCOTOOLS:
        fallback = hotcoco_backend.unsupported(gt, results, kps, absent)
        if fallback is None:
            backend = hotcoco_backend.NAME
        elif evaluator == hotcoco_backend.NAME:
            raise PosefixError(f"evaluator {evaluator!r}: {fallback}")
    ids = sorted(set(int(i) for i in (gt.image_ids if image_ids is None else image_ids)))
    subset = None if person_ids is None else frozenset(int(i) for i in person_ids)
    if not results:
        stats = np.full(len(METRIC_KEYS), -1.0)
    elif backend == PYCOCOTOOLS:
        stats = _pycocotools_stats(gt, results, absent, areas, ids, subset)
    else:
        if areas is None:
            areas = hotcoco_backend.loadres_areas(results, kps)
        stats = hotcoco_backend.hotcoco_stats(gt, results, kps, absent, areas, ids, subset)
    return stats, backend, fallback, absent


def evaluate_stats(
    gt: CocoDataset,
    results: Sequence[dict],
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    image_ids: Iterable[int] | None = None,
    person_ids: Iterable[int] | None = None,
    evaluator: str = DEFAULT_EVALUATOR,
) -> tuple[np.ndarray, str, str | None]:
    """(``COCOeval.stats`` (10 floats, -1 where undefined), the backend that computed them, why ``auto`` fell back
    to pycocotools or None) for validated results."""
    stats, backend, fallback, _ = _stats(gt, results, absent_policy, image_ids, person_ids, evaluator)
    return stats, backend, fallback


def evaluate(
    gt: CocoDataset,
    results: Sequence[dict],
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    image_ids: Iterable[int] | None = None,
    person_ids: Iterable[int] | None = None,
    evaluator: str = DEFAULT_EVALUATOR,
) -> dict:
    """COCO keypoint AP/AR of validated results (see :func:`posefix_bench.structures.results.load_results`).

    Args:
        gt: the ground truth.
        results: validated result records.
        absent_policy: ``absent`` or ``pycocotools`` (see :mod:`posefix_bench.structures.results`).
        image_ids: evaluate on these images only (default: every ground-truth image).
        person_ids: evaluate on this subset of persons (annotation ids), e.g. the lower-body-occluded ones; the
            other persons become ignore regions as crowds are (a detection matched to them is neither a true nor a
            false positive). ``image_ids`` then defaults to the images of these persons.
        evaluator: ``auto``, ``pycocotools`` or ``hotcoco`` (see the module docstring).

    Returns a record::

        {"metrics": {"AP": ..., ..., "ARl": ...},   # floats in [0, 1], None where pycocotools gives -1
         "num_results", "num_images", "num_gt_persons", "absent_policy", "absent_keypoints",
         "evaluator",            # the backend that computed the metrics: "pycocotools" or "hotcoco"
         "evaluator_fallback"}   # why auto used pycocotools (e.g. "hotcoco is not installed"), else None
    """
    subset = None if person_ids is None else set(int(i) for i in person_ids)
    if image_ids is None:
        image_ids = gt.image_ids if subset is None else {gt.coco.anns[i]["image_id"] for i in subset}
    ids = sorted(set(int(i) for i in image_ids))
    stats, backend, fallback, absent = _stats(gt, results, absent_policy, ids, subset, evaluator)
    metrics = {k: (float(v) if v >= 0 else None) for k, v in zip(METRIC_KEYS, stats)}
    id_set = set(ids)
    in_scope = np.asarray([r["image_id"] in id_set for r in results], dtype=bool)
    n_persons = sum(
        1 for a in gt.coco.anns.values()
        if a["image_id"] in id_set and a.get("category_id") == gt.category_id and not a.get("iscrowd", 0)
        and a.get("num_keypoints", 0) > 0 and (subset is None or a["id"] in subset)
    )
    return {
        "metrics": metrics,
        "num_results": int(in_scope.sum()),
        "num_images": len(ids),
        "num_gt_persons": n_persons,
        "absent_policy": absent_policy,
        "absent_keypoints": 0 if absent is None else int(absent[in_scope].sum()),
        "evaluator": backend,
        "evaluator_fallback": fallback,
    }
