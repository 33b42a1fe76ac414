"""Keypoint similarity (KS) and object keypoint similarity (OKS): the one implementation of the COCO formula.

COCO keypoint evaluation (``pycocotools.cocoeval.COCOeval.computeOks``; Ronchi & Perona, ICCV 2017, Eq. 1)::

    KS_j = exp(-d_j**2 / (2 * s**2 * k_j**2)),   k_j = 2 * sigma_j,   s**2 = ground-truth area
    OKS  = mean of KS_j over the ground truth's labelled keypoints (v > 0)

A ground truth without labelled keypoints is compared through its box: each keypoint's distance is how far the
prediction lies outside the box enlarged by its own size on every side (pycocotools' rule). pycocotools adds
``np.spacing(1)`` to the area; so does this module, so the numbers agree to the last bit.

The inverse, the distance at which KS takes a value (PoseFix Sec. 4 defines its synthesis regions with it)::

    d(ks) = sqrt(-2 * s**2 * k_j**2 * ln ks)

Shape legend: D detections, G ground truths, K keypoints.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AREA_EPS", "keypoint_similarity", "ks_distance", "oks_matrix"]

AREA_EPS = np.spacing(1)


def keypoint_similarity(sq_dist: np.ndarray, area: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """KS from squared distances.

    Args:
        sq_dist: (..., K) squared pixel distances.
        area: (...) ground-truth areas, broadcastable against ``sq_dist[..., 0]``.
        sigmas: (K,) per-keypoint sigmas.
    """
    var = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    e = np.asarray(sq_dist, dtype=np.float64) / var / (np.asarray(area, dtype=np.float64)[..., None] + AREA_EPS) / 2.0
    return np.exp(-e)


def ks_distance(ks: np.ndarray | float, area: np.ndarray | float, sigmas: np.ndarray) -> np.ndarray:
    """Distance at which KS equals ``ks``: (...) ks and area broadcast against (K,) sigmas -> (..., K)."""
    var = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    ks = np.asarray(ks, dtype=np.float64)[..., None]
    area = np.asarray(area, dtype=np.float64)[..., None] + AREA_EPS
    return np.sqrt(-2.0 * area * var * np.log(ks))


def oks_matrix(
    det_keypoints: np.ndarray,
    gt_keypoints: np.ndarray,
    gt_areas: np.ndarray,
    gt_boxes: np.ndarray,
    sigmas: np.ndarray,
    det_absent: np.ndarray | None = None,
) -> np.ndarray:
    """OKS of every detection against every ground truth, exactly as ``COCOeval.computeOks``.

    Args:
        det_keypoints: (D, K, >=2) detected x, y.
        gt_keypoints: (G, K, 3) ground-truth x, y, v.
        gt_areas: (G,) areas.
        gt_boxes: (G, 4) x, y, w, h (used only for ground truths without labelled keypoints).
        sigmas: (K,).
        det_absent: optional (D, K) bool; an absent keypoint contributes KS = 0.

    Returns:
        (D, G) float64.
    """
    det = np.asarray(det_keypoints, dtype=np.float64)[..., :2]
    gt = np.asarray(gt_keypoints, dtype=np.float64)
    d_n, g_n = det.shape[0], gt.shape[0]
    if d_n == 0 or g_n == 0:
        return np.zeros((d_n, g_n))
    vis = gt[..., 2] > 0  # (G, K)
    n_vis = vis.sum(axis=1)  # (G,)
    dx = det[:, None, :, 0] - gt[None, :, :, 0]  # (D, G, K)
    dy = det[:, None, :, 1] - gt[None, :, :, 1]
    no_kp = n_vis == 0
    if no_kp.any():
        b = np.asarray(gt_boxes, dtype=np.float64)
        x0, x1 = b[:, 0] - b[:, 2], b[:, 0] + 2 * b[:, 2]
        y0, y1 = b[:, 1] - b[:, 3], b[:, 1] + 2 * b[:, 3]
        xd, yd = det[:, None, :, 0], det[:, None, :, 1]
        bx = np.maximum(0, x0[None, :, None] - xd) + np.maximum(0, xd - x1[None, :, None])
        by = np.maximum(0, y0[None, :, None] - yd) + np.maximum(0, yd - y1[None, :, None])
        dx = np.where(no_kp[None, :, None], bx, dx)
        dy = np.where(no_kp[None, :, None], by, dy)
    ks = keypoint_similarity(dx**2 + dy**2, np.asarray(gt_areas, dtype=np.float64)[None, :], sigmas)
    if det_absent is not None:
        ks = np.where(np.asarray(det_absent, bool)[:, None, :], 0.0, ks)
    weight = np.where(no_kp[:, None], True, vis)  # (G, K): all keypoints count when none is labelled
    return (ks * weight[None]).sum(axis=2) / weight.sum(axis=1)[None, :]
