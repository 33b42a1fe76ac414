"""Data checks: what makes a ground truth or a results file unusable (an error) or skews its numbers (a warning).

pycocotools evaluates whatever it is given: a results file whose every entry is duplicated loses 40% of its AP, a
ground-truth person annotated twice can never be fully recalled, an annotation for an image that is not in
``images`` is silently dropped, and a non-finite or non-positive area turns the OKS (``exp(-d^2 / (2 s^2 k^2))``,
s^2 the area; Ronchi & Perona, ICCV 2017, Sec. 2) into NaN or into a similarity above 1. This module decides,
per case, between refusing the file and a recorded warning (the policy, also in the README):

=======================================================  =======  ==============================================
case                                                     policy   why
=======================================================  =======  ==============================================
results: a NaN / inf value, a negative score             error    the numbers are undefined
                                                                  (:func:`~.results.validate_results`)
results: a coordinate beyond :data:`MAX_COORDINATE`      error    no image is that large; squares and affine
                                                                  inverses of such values overflow
results: identical entries (image, category, keypoints)  warning  legal COCO, but every copy is a detection:
                                                                  false positives, lower AP
ground truth: a non-finite keypoint, box or area         error    the OKS is undefined (the file is corrupt)
ground truth: a coordinate beyond :data:`MAX_COORDINATE` error    as for results
ground truth: a negative area                            error    OKS above 1: detections vanish into it
ground truth: zero area of a labelled non-crowd person   error    the OKS divides by the area
ground truth: two annotations with one id                error    pycocotools keeps one of them: ambiguous
ground truth: an annotation without an id                error    pycocotools cannot index it
ground truth: an annotation of an image not in images    warning  pycocotools ignores it (the numbers leave
                                                                  it out)
ground truth: a labelled person annotated twice          warning  one copy can never be matched: recall and AP
                                                                  are capped
ground truth: no person with labelled keypoints          error    every metric is undefined
                                                                  (:func:`require_persons`, in the commands
                                                                  that evaluate, diagnose, profile, synthesise)
=======================================================  =======  ==============================================

Errors raise a one-line :class:`~posefix_bench.errors.PosefixError` naming the file and the first offending entry
(:func:`validate_annotations` runs inside :class:`~posefix_bench.structures.coco.CocoDataset`, so every stage gets
them). Warnings are :class:`DataWarning` records returned by :func:`check_results` and :func:`check_ground_truth`;
a command prints each as one line and records :func:`warning_records` in its output (``metrics.json``,
``diagnosis.json``, the error profile's ``meta``), so a skewed number never travels without its warning.

Shape legend: M annotations, N results, K keypoints.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from posefix_bench.errors import PosefixError, file_error

__all__ = ["MAX_COORDINATE", "DataWarning", "validate_annotations", "check_coordinates", "check_results",
           "check_ground_truth", "require_persons", "warning_records"]

MAX_COORDINATE = 1e6  # px; a keypoint farther from the image origin than this is not a pose but a broken number


@dataclass(frozen=True)
class DataWarning:
    """Degenerate data that does not stop the run but skews what is computed from it.

    Attributes:
        code: a stable identifier (``duplicate-results``, ``orphan-annotations``, ``duplicate-persons``).
        source: the file it concerns.
        count: how many entries are affected.
        message: the one line shown to the user, ``"<source>: <problem>"``.
    """

    code: str
    source: str
    count: int
    message: str

    def to_record(self) -> dict:
        return {"code": self.code, "source": self.source, "count": int(self.count), "message": self.message}

    def __str__(self) -> str:
        return self.message


def warning_records(warnings: Iterable[DataWarning]) -> list[dict]:
    """JSON records of warnings, for ``metrics.json`` / ``diagnosis.json`` / profile meta (``"warnings"``)."""
    return [w.to_record() for w in warnings]


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _numeric(rows: list, path, what: str, ids: Sequence, width: int) -> np.ndarray:
    """(M, width) float64 of lists that must be numbers; strings, nulls and the like are a one-line error."""
    arr = np.asarray(rows) if rows else np.zeros((0, width))
    if arr.dtype.kind not in "biuf" or arr.shape != (len(rows), width):
        for i, row in enumerate(rows):
            if not all(isinstance(v, (int, float, np.integer, np.floating)) for v in row):
                raise file_error(path, f"annotation {ids[i]} has a non-numeric {what} value")
        raise file_error(path, f"{what} values are not numbers")  # pragma: no cover (rows of equal length)
    return arr.astype(np.float64, copy=False)


def validate_annotations(anns: Sequence[Mapping], path: str | os.PathLike, category_id: int,
                         num_keypoints: int) -> None:
    """The ground truth's hard errors (see the module table), checked before pycocotools indexes the file.

    Args:
        anns: the file's ``annotations`` list (each already known to be an object with ``image_id`` and ``bbox``,
            and, for the keypoint category, 3K keypoint values).
        path: the file, named in the errors.
        category_id: the keypoint category; annotations of other categories are checked for ids only.
        num_keypoints: K.
    """
    ids = [a.get("id") for a in anns]
    for i, ann_id in enumerate(ids):
        if not (_is_int(ann_id) or isinstance(ann_id, str)):
            raise file_error(path, f"annotation {i} has no 'id' (an integer; got {ann_id!r})")
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise file_error(path, f"{len(dup)} annotation ids are used more than once (e.g. {min(dup)}): "
                               "pycocotools would keep only one of each")
    kp_anns = [a for a in anns if a.get("category_id") == category_id]
    if not kp_anns:
        return
    kid = [a["id"] for a in kp_anns]
    k3 = 3 * num_keypoints
    kps = _numeric([a["keypoints"] for a in kp_anns], path, "keypoint", kid, k3).reshape(len(kp_anns), -1, 3)
    boxes = _numeric([a["bbox"] if isinstance(a["bbox"], list) and len(a["bbox"]) == 4 else [None] * 4
                      for a in kp_anns], path, "bbox", kid, 4)
    raw_area = [a.get("area", float(boxes[j, 2] * boxes[j, 3])) for j, a in enumerate(kp_anns)]
    for j, v in enumerate(raw_area):
        if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
            raise file_error(path, f"annotation {kid[j]} has a non-numeric area {v!r}")
    area = np.asarray(raw_area, dtype=np.float64)
    for what, arr in (("keypoint", kps), ("bbox", boxes), ("area", area)):
        bad = ~np.isfinite(arr.reshape(len(kp_anns), -1)).all(axis=1)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise file_error(path, f"annotation {kid[j]} has a non-finite {what} value "
                                   f"({int(bad.sum())} annotations with NaN or inf {what}s)")
    far = (np.abs(kps[..., :2]) > MAX_COORDINATE).any(axis=(1, 2)) | (np.abs(boxes) > MAX_COORDINATE).any(axis=1)
    if far.any():
        j = int(np.flatnonzero(far)[0])
        raise file_error(path, f"annotation {kid[j]} has a coordinate beyond {MAX_COORDINATE:g} px "
                               f"({int(far.sum())} such annotations): not an image position")
    if (area < 0).any():
        j = int(np.flatnonzero(area < 0)[0])
        raise file_error(path, f"annotation {kid[j]} has a negative area ({area[j]:g}): the OKS would exceed 1")
    labelled = (kps[..., 2] > 0).any(axis=1)
    crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in kp_anns])
    flat = labelled & ~crowd & (area <= 0)
    if flat.any():
        j = int(np.flatnonzero(flat)[0])
        raise file_error(path, f"annotation {kid[j]} is a person with labelled keypoints and area {area[j]:g}: "
                               "the OKS divides by the area")


def check_ground_truth(dataset) -> list[DataWarning]:
    """The ground truth's warnings (see the module table): orphan annotations and persons annotated twice.

    Args:
        dataset: a :class:`~posefix_bench.structures.coco.CocoDataset` (its hard errors were raised when it loaded).
    """
    src = os.fspath(dataset.path)
    anns = dataset.coco.dataset["annotations"]
    images = dataset.coco.imgs
    out = []
    orphans = [a for a in anns if a["image_id"] not in images]
    if orphans:
        out.append(DataWarning(
            "orphan-annotations", src, len(orphans),
            f"{src}: {len(orphans)} annotations refer to image ids not in 'images' (e.g. image "
            f"{orphans[0]['image_id']}, annotation {orphans[0]['id']}); they are not evaluated"))
    seen: dict = {}
    dups = []
    for a in anns:
        if a.get("category_id") != dataset.category_id or a["image_id"] not in images:
            continue
        kp = a["keypoints"]
        if not any(kp[i] > 0 for i in range(2, len(kp), 3)):
            continue
        key = (a["image_id"], tuple(kp))
        if key in seen:
            dups.append((seen[key], a["id"]))
        else:
            seen[key] = a["id"]
    if dups:
        first, again = dups[0]
        out.append(DataWarning(
            "duplicate-persons", src, len(dups),
            f"{src}: {len(dups)} labelled persons are annotated twice with identical keypoints (e.g. annotations "
            f"{first} and {again}); one copy of each can never be matched, so recall and AP are lower"))
    return out


def require_persons(dataset, what: str = "evaluate") -> int:
    """The number of non-crowd persons with labelled keypoints; zero is a one-line error (nothing to ``what``)."""
    images = dataset.coco.imgs
    n = sum(1 for a in dataset.coco.dataset["annotations"]
            if a.get("category_id") == dataset.category_id and a["image_id"] in images and not a.get("iscrowd", 0)
            and any(v > 0 for v in a["keypoints"][2::3]))
    if n == 0:
        raise file_error(dataset.path, f"no non-crowd person with labelled keypoints in {len(dataset)} images: "
                                       f"nothing to {what} (every metric would be undefined)")
    return n


def check_results(records: Sequence[Mapping], source: str | os.PathLike = "results") -> list[DataWarning]:
    """The warnings of validated results (:func:`~posefix_bench.structures.results.validate_results`): entries that
    repeat another one's image, category and keypoints (each copy is a detection of its own to pycocotools)."""
    src = os.fspath(source)
    first: dict = {}
    dups = []
    for i, r in enumerate(records):
        key = (r["image_id"], r["category_id"], tuple(r["keypoints"]))
        if key in first:
            dups.append((first[key], i))
        else:
            first[key] = i
    if not dups:
        return []
    a, b = dups[0]
    return [DataWarning(
        "duplicate-results", src, len(dups),
        f"{src}: {len(dups)} of {len(records)} entries repeat an earlier entry's image and keypoints (e.g. entries "
        f"{a} and {b}); every copy counts as a detection, so AP is lower than without them")]


def check_coordinates(flat: np.ndarray, src: str, what: str = "result") -> None:
    """(N, 3K) x, y, c rows: a coordinate beyond :data:`MAX_COORDINATE` is a one-line error naming row and index."""
    xy = np.abs(flat.reshape(len(flat), -1, 3)[..., :2]) > MAX_COORDINATE
    if xy.any():
        i, k, c = map(int, np.argwhere(xy)[0])
        value = flat[i, 3 * k + c]
        raise PosefixError(f"{src}: {what} {i} has a coordinate {value:g} at index {3 * k + c}, beyond "
                           f"{MAX_COORDINATE:g} px: not an image position ({int(xy.any(axis=(1, 2)).sum())} such "
                           f"{what}s)")
