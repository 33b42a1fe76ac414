"""COCO keypoint results: the format every stage exchanges, its validation, and the absent-keypoint policy.

A results file is the COCO detection-results format for keypoints: a JSON list of
``{"image_id": int, "category_id": int, "keypoints": [x1, y1, c1, ..., xK, yK, cK], "score": float}``
(extra fields such as ``bbox`` or ``source`` are kept). In memory the same records are a ``list[dict]``;
:func:`results_to_arrays` gives the vectorised view (N detections, K keypoints).

Absent keypoints (issue: coco-analyze counted undetected keypoints placed at (0, 0) as predictions): under the
``absent`` policy a keypoint whose confidence is exactly 0 or whose position is exactly (0, 0) is "not
predicted"; under the ``pycocotools`` policy every keypoint counts as predicted, as pycocotools does. The policy
is applied through :func:`absent_mask` by evaluation, diagnosis and refinement alike.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.structures.checks import check_coordinates
from posefix_bench.structures.io import atomic_write_json, read_json
from posefix_bench.structures.rows import ArrayRows

__all__ = [
    "ABSENT_POLICIES",
    "DEFAULT_ABSENT_POLICY",
    "ResultArrays",
    "absent_mask",
    "validate_results",
    "load_results",
    "save_results",
    "results_to_arrays",
    "arrays_to_results",
]

ABSENT_POLICIES = ("absent", "pycocotools")
DEFAULT_ABSENT_POLICY = "absent"


def absent_mask(keypoints: np.ndarray, policy: str = DEFAULT_ABSENT_POLICY) -> np.ndarray:
    """(..., K) bool: which keypoints are "not predicted" under ``policy``.

    Args:
        keypoints: (..., K, 3) x, y, confidence.
        policy: ``absent`` (confidence == 0 or (x, y) == (0, 0)) or ``pycocotools`` (nothing is absent).
    """
    kp = np.asarray(keypoints)
    if policy == "pycocotools":
        return np.zeros(kp.shape[:-1], dtype=bool)
    if policy != "absent":
        raise PosefixError(f"unknown absent-keypoint policy {policy!r} (known: {', '.join(ABSENT_POLICIES)})")
    return (kp[..., 2] == 0) | ((kp[..., 0] == 0) & (kp[..., 1] == 0))


@dataclass(frozen=True)
class ResultArrays(ArrayRows, rows="scores"):
    """Results as arrays (N detections, K keypoints).

    Attributes:
        image_ids: (N,) int64.
        category_ids: (N,) int64.
        keypoints: (N, K, 3) float64 x, y, per-keypoint confidence.
        scores: (N,) float64 instance scores.
    """

    image_ids: np.ndarray
    category_ids: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


_JSON_NUMBERS = {int, float}  # what JSON numbers parse to; both pass _is_num


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def validate_results(
    records,
    source: str | os.PathLike = "results",
    num_keypoints: int | None = None,
    image_ids: Iterable[int] | None = None,
    category_ids: Iterable[int] | None = None,
    gt_name: str | os.PathLike = "the ground truth",
) -> list[dict]:
    """Check COCO keypoint results and return them as normalised records (ints, floats, lists).

    Raises a one-line :class:`PosefixError` naming ``source`` and the first problem: not a list, empty, a record
    that is not an object, a missing field, a keypoint list of the wrong length, a non-numeric/NaN/inf value, a
    missing or negative score, a coordinate beyond :data:`~posefix_bench.structures.checks.MAX_COORDINATE`, or image /
    category ids that the ground truth does not have. Duplicated entries are a warning, not an error
    (:func:`~posefix_bench.structures.checks.check_results`).
    """
    src = os.fspath(source)
    if not isinstance(records, list):
        raise PosefixError(f"{src}: expected a JSON list of keypoint results, got a JSON {_json_type(records)}")
    if not records:
        raise PosefixError(f"{src}: empty results list (no poses to evaluate)")
    expected = None if num_keypoints is None else 3 * num_keypoints
    out = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise PosefixError(f"{src}: result {i} is a JSON {_json_type(r)}, expected an object")
        for key in ("image_id", "category_id", "keypoints"):
            if key not in r:
                raise PosefixError(f"{src}: result {i} has no '{key}'")
        if "score" not in r:
            raise PosefixError(f"{src}: result {i} has no 'score'")
        if not _is_int(r["image_id"]):
            raise PosefixError(f"{src}: result {i} has a non-integer image_id {r['image_id']!r}")
        if not _is_int(r["category_id"]):
            raise PosefixError(f"{src}: result {i} has a non-integer category_id {r['category_id']!r}")
        kps = r["keypoints"]
        if not isinstance(kps, list) or not kps or len(kps) % 3:
            n = len(kps) if isinstance(kps, list) else type(kps).__name__
            raise PosefixError(f"{src}: result {i} has keypoints of length {n}, expected a list of x, y, c triples")
        if expected is None:
            expected = len(kps)  # no K given: the first record sets it
        if len(kps) != expected:
            k = num_keypoints if num_keypoints is not None else expected // 3
            raise PosefixError(
                f"{src}: result {i} has {len(kps)} keypoint values, expected {expected} ({k} keypoints x 3)"
            )
        if not set(map(type, kps)) <= _JSON_NUMBERS and not all(_is_num(v) for v in kps):  # fast path first
            raise PosefixError(f"{src}: result {i} has a non-numeric keypoint value")
        score = r["score"]
        if not _is_num(score):
            raise PosefixError(f"{src}: result {i} has a non-numeric score {score!r}")
        if not math.isfinite(score):
            raise PosefixError(f"{src}: result {i} has a non-finite score ({score})")
        if score < 0:
            raise PosefixError(f"{src}: result {i} has a negative score ({score})")
        rec = dict(r)
        rec["image_id"] = int(r["image_id"])
        rec["category_id"] = int(r["category_id"])
        rec["keypoints"] = list(map(float, kps))
        rec["score"] = float(score)
        out.append(rec)
    flat = np.asarray([r["keypoints"] for r in out], dtype=np.float64)
    bad = ~np.isfinite(flat)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise PosefixError(f"{src}: result {i} has a non-finite keypoint value ({flat[i, j]}) at index {j}")
    check_coordinates(flat, src)
    if image_ids is not None:
        known = set(int(x) for x in image_ids)
        unknown = sorted({r["image_id"] for r in out} - known)
        if unknown:
            n = sum(r["image_id"] not in known for r in out)
            raise PosefixError(
                f"{src}: {n} results refer to {len(unknown)} image ids absent from {os.fspath(gt_name)} "
                f"(e.g. {unknown[0]})"
            )
    if category_ids is not None:
        known_c = set(int(x) for x in category_ids)
        unknown_c = sorted({r["category_id"] for r in out} - known_c)
        if unknown_c:
            raise PosefixError(
                f"{src}: category id {unknown_c[0]} is not the keypoint category of {os.fspath(gt_name)} "
                f"({sorted(known_c)})"
            )
    return out


def _json_type(v) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number" if _is_num(v) else type(v).__name__
    )


def load_results(path: str | os.PathLike, gt=None, num_keypoints: int | None = None,
                 gt_images_only: bool = False) -> list[dict]:
    """Read and validate a results file; with ``gt`` (a :class:`CocoDataset`) also check K, image and category ids.
    ``gt_images_only``: keep the results of ``gt``'s images and drop the others (a run on part of the split the
    file covers, such as ``bench --smoke``); every record is still validated."""
    records = read_json(path, "results file")
    if gt is not None and gt_images_only:
        checked = validate_results(records, path, num_keypoints=gt.schema.num_keypoints,
                                   category_ids=[gt.category_id], gt_name=gt.path)
        ids = gt.coco.imgs.keys()
        kept = [r for r in checked if r["image_id"] in ids]
        if not kept:
            raise PosefixError(f"{os.fspath(path)}: no result refers to an image of {os.fspath(gt.path)}")
        return kept
    if gt is not None:
        return validate_results(
            records, path, num_keypoints=gt.schema.num_keypoints, image_ids=gt.coco.imgs.keys(),
            category_ids=[gt.category_id], gt_name=gt.path,
        )
    return validate_results(records, path, num_keypoints=num_keypoints)


def save_results(path: str | os.PathLike, records: Sequence[dict]) -> Path:
    """Validate and write results atomically (temporary file, then rename)."""
    checked = validate_results(list(records), source=path)
    return atomic_write_json(path, checked, indent=None)


def results_to_arrays(records: Sequence[dict], num_keypoints: int | None = None) -> ResultArrays:
    """Records -> :class:`ResultArrays` (in record order)."""
    n = len(records)
    if n == 0:
        k = num_keypoints or 0
        return ResultArrays(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, k, 3)), np.zeros(0))
    kps = np.asarray([r["keypoints"] for r in records], dtype=np.float64)
    k = kps.shape[1] // 3
    if num_keypoints is not None and k != num_keypoints:
        raise PosefixError(f"results have {k} keypoints, expected {num_keypoints}")
    return ResultArrays(
        image_ids=np.asarray([r["image_id"] for r in records], dtype=np.int64),
        category_ids=np.asarray([r["category_id"] for r in records], dtype=np.int64),
        keypoints=kps.reshape(n, k, 3),
        scores=np.asarray([r["score"] for r in records], dtype=np.float64),
    )


def arrays_to_results(
    image_ids: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    category_ids: np.ndarray | int = 1,
    extra: Sequence[dict] | None = None,
) -> list[dict]:
    """Arrays -> records; ``extra[i]`` fields (e.g. ``bbox``, ``source``) are merged into record i."""
    image_ids = np.asarray(image_ids)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    cats = np.broadcast_to(np.asarray(category_ids), image_ids.shape)
    out = []
    for i in range(image_ids.shape[0]):
        rec = dict(extra[i]) if extra is not None else {}
        rec.update(
            image_id=int(image_ids[i]),
            category_id=int(cats[i]),
            keypoints=[float(v) for v in keypoints[i].reshape(-1)],
            score=float(scores[i]),
        )
        out.append(rec)
    return out
