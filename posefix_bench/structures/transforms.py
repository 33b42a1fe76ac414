"""The top-down crop transform, shared by every stage that crops a person (training, refinement, estimators).

Conventions as in mmpose's top-down pipeline (``TopdownAffine`` with ``get_warp_matrix``, non-UDP): a person box
``(x, y, w, h)`` gives a center ``(x + w/2, y + h/2)`` and a scale ``(w, h)`` enlarged to the output aspect ratio
and padded by 1.25 (SimpleBaseline, Xiao et al. ECCV 2018; PoseFix uses the same crops). The affine matrix maps
image coordinates to crop coordinates::

    crop = out_center + S @ R(rot) @ (p - center),   S = diag(out_w / scale_w, out_h / scale_h)

with ``out_center = (out_w / 2, out_h / 2)`` and ``R(rot)`` a rotation by ``rot`` degrees (positive: the person
turns counter-clockwise in the crop, as in mmpose). The matrix is built in closed form, so the inverse is exact
(round trip image -> crop -> image within float rounding). Points are continuous pixel coordinates as in COCO.

PoseFix's test-time box (Moon et al., CVPR 2019, Sec. 5.2; its released ``test.py``) is the input pose's predicted
keypoints' box enlarged by 1.2 (:func:`pose_boxes`), padded and fitted to the crop's aspect ratio as above; the
refiner and the re-estimate method (:mod:`posefix_bench.methods.re_estimate`) crop each input pose that way.

Shape legend: N persons, K keypoints.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY, absent_mask

__all__ = [
    "DEFAULT_PADDING",
    "BOX_MODES",
    "KEYPOINT_BOX_SCALE",
    "pose_boxes",
    "record_bboxes",
    "box_to_center_scale",
    "keypoints_to_box",
    "affine_matrix",
    "invert_affine",
    "apply_affine",
    "warp_image",
    "flip_keypoints",
]

DEFAULT_PADDING = 1.25
BOX_MODES = ("keypoints", "bbox")
KEYPOINT_BOX_SCALE = 1.2  # PoseFix test time: the input pose's keypoint box enlarged by 1.2


def box_to_center_scale(
    boxes: np.ndarray, aspect_ratio: float, padding: float = DEFAULT_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes -> (center, scale).

    Args:
        boxes: (..., 4) x, y, w, h.
        aspect_ratio: output width / height (e.g. 192 / 256).
        padding: scale enlargement factor (1.25 in SimpleBaseline / PoseFix).

    Returns:
        center (..., 2) and scale (..., 2) (width, height) with ``scale_w / scale_h == aspect_ratio``.
    """
    b = np.asarray(boxes, dtype=np.float64)
    x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    center = np.stack([x + 0.5 * w, y + 0.5 * h], axis=-1)
    wide = w > aspect_ratio * h
    sw = np.where(wide, w, h * aspect_ratio)
    sh = np.where(wide, w / aspect_ratio, h)
    scale = np.stack([sw, sh], axis=-1) * padding
    return center, scale


def keypoints_to_box(keypoints: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Tight boxes around the valid keypoints.

    Args:
        keypoints: (N, K, >=2) x, y, ...
        valid: (N, K) bool; default: all keypoints.

    Returns:
        (N, 4) x, y, w, h; a person with no valid keypoint gets a zero box at the origin.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    v = np.ones(kp.shape[:2], bool) if valid is None else np.asarray(valid, bool)
    x0 = np.where(v, kp[..., 0], np.inf).min(axis=1)
    x1 = np.where(v, kp[..., 0], -np.inf).max(axis=1)
    y0 = np.where(v, kp[..., 1], np.inf).min(axis=1)
    y1 = np.where(v, kp[..., 1], -np.inf).max(axis=1)
    with np.errstate(invalid="ignore"):  # rows without a valid keypoint: inf - inf, zeroed below
        boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=-1)
    boxes[~v.any(axis=1)] = 0.0
    return boxes


def affine_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rotation: np.ndarray | float,
    output_size: tuple[int, int],
) -> np.ndarray:
    """Image -> crop affine matrices.

    Args:
        center: (..., 2) crop center in the image.
        scale: (..., 2) width and height of the image region mapped onto the crop.
        rotation: (...) or scalar, degrees.
        output_size: (out_w, out_h) in pixels.

    Returns:
        (..., 2, 3) float64 matrices M with ``crop = M[:, :2] @ p + M[:, 2]``.
    """
    c = np.asarray(center, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    out_w, out_h = float(output_size[0]), float(output_size[1])
    theta = np.deg2rad(np.asarray(rotation, dtype=np.float64))
    batch = np.broadcast_shapes(c.shape[:-1], s.shape[:-1], theta.shape)
    c = np.broadcast_to(c, batch + (2,))
    s = np.broadcast_to(s, batch + (2,))
    theta = np.broadcast_to(theta, batch)
    sx, sy = out_w / s[..., 0], out_h / s[..., 1]
    cos, sin = np.cos(theta), np.sin(theta)
    # S @ R with R = [[cos, sin], [-sin, cos]] (counter-clockwise on screen, y pointing down)
    a = np.empty(batch + (2, 3), dtype=np.float64)
    a[..., 0, 0], a[..., 0, 1] = sx * cos, sx * sin
    a[..., 1, 0], a[..., 1, 1] = -sy * sin, sy * cos
    lin = a[..., :2]
    a[..., :, 2] = np.array([out_w / 2.0, out_h / 2.0]) - np.einsum("...ij,...j->...i", lin, c)
    return a


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """(..., 2, 3) -> (..., 2, 3): the inverse affine map (crop -> image for an image -> crop matrix)."""
    m = np.asarray(matrix, dtype=np.float64)
    lin = m[..., :2]
    inv = np.linalg.inv(lin)
    out = np.empty_like(m)
    out[..., :2] = inv
    out[..., :, 2] = -np.einsum("...ij,...j->...i", inv, m[..., :, 2])
    return out


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Transform points.

    Args:
        points: (N, K, 2) or (K, 2) coordinates (extra trailing columns are ignored).
        matrix: (N, 2, 3) or (2, 3) matching the leading dimension of ``points``.

    Returns:
        points with the same leading shape and 2 columns.
    """
    p = np.asarray(points, dtype=np.float64)[..., :2]
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 2:
        return p @ m[:, :2].T + m[:, 2]
    return np.einsum("nij,nkj->nki", m[..., :2], p) + m[:, None, :, 2]


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Crop one image with an image -> crop matrix (bilinear, zero border): (H, W, C) -> (out_h, out_w, C)."""
    import cv2

    return cv2.warpAffine(
        image,
        np.asarray(matrix, dtype=np.float64),
        (int(output_size[0]), int(output_size[1])),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def flip_keypoints(keypoints: np.ndarray, width: float, flip_index: np.ndarray) -> np.ndarray:
    """Mirror keypoints horizontally in a frame of the given width and swap left/right partners.

    Args:
        keypoints: (..., K, C) with x in column 0.
        width: frame width in pixels; x -> width - 1 - x (pixel centers at integer coordinates, the convention of
            ``cv2.warpAffine``, of ``torch.flip`` on a crop and of the heatmap codec).
        flip_index: (K,) partner index of each keypoint (``KeypointSchema.flip_index``).
    """
    kp = np.array(keypoints, dtype=np.float64, copy=True)
    kp[..., 0] = (width - 1.0) - kp[..., 0]
    return kp[..., np.asarray(flip_index), :]


def pose_boxes(keypoints: np.ndarray, bboxes: np.ndarray | None, box: str = "keypoints",
               absent_policy: str = DEFAULT_ABSENT_POLICY) -> tuple[np.ndarray, np.ndarray]:
    """The person box PoseFix crops each input pose around (before the top-down padding and aspect ratio).

    Args:
        keypoints: (N, K, 3) input poses x, y, confidence (image pixels).
        bboxes: (N, 4) x, y, w, h, NaN rows where a record has no ``bbox``; None: no boxes at all.
        box: ``keypoints`` (the predicted keypoints' box x 1.2; a pose with a degenerate box falls back to its
            bbox) or ``bbox`` (the bbox field).

    Returns:
        boxes (N, 4) x, y, w, h and ok (N,) bool (False: no usable box; its row is zeros).
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    n = kp.shape[0]
    bb = np.full((n, 4), np.nan) if bboxes is None else np.asarray(bboxes, dtype=np.float64).reshape(n, 4)
    bb_ok = np.isfinite(bb).all(axis=1) & (np.nan_to_num(bb[:, 2]) > 1) & (np.nan_to_num(bb[:, 3]) > 1)
    if box == "bbox":
        return np.where(bb_ok[:, None], bb, 0.0), bb_ok
    if box != "keypoints":
        raise PosefixError(f"unknown crop box {box!r} (known: {', '.join(BOX_MODES)})")
    kb = keypoints_to_box(kp, ~absent_mask(kp, absent_policy))
    c = kb[:, :2] + kb[:, 2:] / 2
    kb = np.concatenate([c - kb[:, 2:] * KEYPOINT_BOX_SCALE / 2, kb[:, 2:] * KEYPOINT_BOX_SCALE], axis=1)
    kb_ok = (kb[:, 2] > 1) | (kb[:, 3] > 1)  # a pose spread along one line still has a scale
    return np.where(kb_ok[:, None], kb, np.where(bb_ok[:, None], bb, 0.0)), kb_ok | bb_ok


def record_bboxes(records: Sequence[dict]) -> np.ndarray:
    """(N, 4) the records' ``bbox`` fields, NaN rows where a record has none."""
    return np.asarray([_bbox(r) for r in records], dtype=np.float64).reshape(len(records), 4)


def _bbox(record: dict) -> list[float]:
    b = record.get("bbox")
    if isinstance(b, (list, tuple)) and len(b) == 4:
        try:
            return [float(v) for v in b]
        except (TypeError, ValueError):
            pass
    return [np.nan] * 4
