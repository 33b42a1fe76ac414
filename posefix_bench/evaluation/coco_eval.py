"""COCO keypoint AP/AR with pycocotools, silenced and returned as a plain record.

The ten numbers are ``COCOeval.stats`` for ``iouType='keypoints'`` (OKS thresholds 0.50:0.05:0.95, 20 detections
per image, area ranges all / medium / large), restricted to the ground truth's image ids, with the OKS sigmas of
the dataset's keypoint schema. Under the ``pycocotools`` absent-keypoint policy, or whenever no keypoint is
absent, pycocotools runs unmodified and the numbers equal ``COCOeval.stats`` exactly. Under the ``absent`` policy
with absent keypoints, only ``computeOks`` changes: an absent keypoint contributes KS = 0 (and the detection's
area, used for the area ranges, is taken from its predicted keypoints only).
"""

from __future__ import annotations

import contextlib
import io
from typing import Iterable, Sequence

import numpy as np

from posefix_bench.codecs.oks import oks_matrix
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY, absent_mask
from posefix_bench.structures.transforms import keypoints_to_box

__all__ = ["METRIC_KEYS", "evaluate", "coco_eval_stats"]

METRIC_KEYS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def _make_cocoeval(gt: CocoDataset, dt, absent_policy: str, person_ids: set[int] | None):
    """Stock ``COCOeval`` unless the absent policy or a person subset needs one of two overrides."""
    from pycocotools.cocoeval import COCOeval

    k = gt.schema.num_keypoints
    absent = {}
    if absent_policy != "pycocotools":
        absent = {
            ann_id: absent_mask(np.asarray(a["keypoints"], dtype=np.float64).reshape(k, 3), absent_policy)
            for ann_id, a in dt.anns.items()
        }
        if not any(m.any() for m in absent.values()):
            absent = {}
    if not absent and person_ids is None:
        return COCOeval(gt.coco, dt, iouType="keypoints")

    for ann_id, m in absent.items():  # area ranges from the predicted keypoints only
        a = dt.anns[ann_id]
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(1, k, 3)
        box = keypoints_to_box(kp, ~m[None])[0]
        a["bbox"] = box.tolist()
        a["area"] = float(box[2] * box[3])

    class PosefixCOCOeval(COCOeval):
        def _prepare(self):
            super()._prepare()
            if person_ids is not None:  # persons outside the subset become ignore regions, like crowds
                for gts in self._gts.values():
                    for g in gts:
                        if g["id"] not in person_ids:
                            g["ignore"] = 1

        def computeOks(self, imgId, catId):  # noqa: N802 (pycocotools' name)
            if not absent:
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
                det_absent=np.stack([absent[d["id"]] for d in dts]),
            )

    return PosefixCOCOeval(gt.coco, dt, iouType="keypoints")


def coco_eval_stats(
    gt: CocoDataset,
    results: Sequence[dict],
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    image_ids: Iterable[int] | None = None,
    person_ids: Iterable[int] | None = None,
) -> np.ndarray:
    """``COCOeval.stats`` (10 floats, -1 where undefined) for validated results."""
    if not results:
        return np.full(len(METRIC_KEYS), -1.0)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.coco.loadRes([dict(r) for r in results])
        ev = _make_cocoeval(gt, dt, absent_policy, None if person_ids is None else set(person_ids))
        ev.params.kpt_oks_sigmas = gt.schema.sigma_array
        ev.params.imgIds = sorted(gt.image_ids if image_ids is None else set(image_ids))
        ev.params.catIds = [gt.category_id]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)


def evaluate(
    gt: CocoDataset,
    results: Sequence[dict],
    absent_policy: str = DEFAULT_ABSENT_POLICY,
    image_ids: Iterable[int] | None = None,
    person_ids: Iterable[int] | None = None,
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

    Returns a record::

        {"metrics": {"AP": ..., ..., "ARl": ...},   # floats in [0, 1], None where pycocotools gives -1
         "num_results", "num_images", "num_gt_persons", "absent_policy", "absent_keypoints"}
    """
    subset = None if person_ids is None else set(int(i) for i in person_ids)
    if image_ids is None:
        image_ids = gt.image_ids if subset is None else {gt.coco.anns[i]["image_id"] for i in subset}
    ids = sorted(set(image_ids))
    stats = coco_eval_stats(gt, results, absent_policy, ids, subset)
    metrics = {k: (float(v) if v >= 0 else None) for k, v in zip(METRIC_KEYS, stats)}
    k = gt.schema.num_keypoints
    id_set = set(ids)
    in_scope = [r for r in results if r["image_id"] in id_set]
    n_absent = 0
    if in_scope:
        kps = np.asarray([r["keypoints"] for r in in_scope], dtype=np.float64).reshape(len(in_scope), k, 3)
        n_absent = int(absent_mask(kps, absent_policy).sum())
    n_persons = sum(
        1 for a in gt.coco.anns.values()
        if a["image_id"] in id_set and a.get("category_id") == gt.category_id and not a.get("iscrowd", 0)
        and a.get("num_keypoints", 0) > 0 and (subset is None or a["id"] in subset)
    )
    return {
        "metrics": metrics,
        "num_results": len(in_scope),
        "num_images": len(ids),
        "num_gt_persons": n_persons,
        "absent_policy": absent_policy,
        "absent_keypoints": n_absent,
    }
