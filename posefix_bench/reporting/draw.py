"""Skeleton drawing on images, contact sheets of images with their poses, and PNG writing.

Used for the sandbox's visual check (``posefix-bench sandbox`` writes ``contact_sheet.png``), the bench's
"input vs refined" crop panels and the video mode. Drawing is OpenCV on RGB uint8 arrays, anti-aliased; the
layout (links, left/right partners) comes from the :class:`~posefix_bench.structures.schema.KeypointSchema`.

Left and right stay distinguishable in every colour: a pose's left links are a lighter tint of its colour, its
right links a darker one, and left joints are drawn as circles, right joints as squares (centre joints as
diamonds). Without an explicit colour, mmpose's COCO visualiser convention is used (left green, right orange,
centre blue). Keypoints are "present" when finite, not at exactly (0, 0) (the COCO placeholder of unlabelled
joints and the ``absent`` policy of :mod:`posefix_bench.structures.results`) and, with a third column, above
``min_score`` (COCO visibility or confidence). ``hollow`` joints (e.g. ground truth labelled occluded, v = 1)
are drawn as outlines and their links thinner.

Shape legend: K keypoints, N persons, H x W image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.structures.io import atomic_write_bytes
from posefix_bench.structures.schema import KeypointSchema

__all__ = [
    "SIDE_COLORS", "PALETTE", "pose_colors", "side_of", "draw_pose", "draw_poses", "contact_sheet",
    "coco_contact_sheet", "encode_png", "write_image",
]  # fmt: skip

# mmpose's COCO visualiser: left limbs green, right limbs orange, centre links blue (RGB)
SIDE_COLORS = {"left": (0, 255, 0), "right": (255, 128, 0), "center": (51, 153, 255)}
# distinct pose colours (RGB) for several poses on one image: input vs refined, one per person
PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (255, 255, 255),
)  # fmt: skip


def pose_colors(n: int) -> list[tuple[int, int, int]]:
    """``n`` colours from :data:`PALETTE`, cycling."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def side_of(schema: KeypointSchema) -> np.ndarray:
    """(K,) int: 1 for the left member of each flip pair, -1 for the right one, 0 for unpaired keypoints."""
    side = np.zeros(schema.num_keypoints, np.int64)
    for a, b in schema.flip_pairs:
        side[a], side[b] = 1, -1
    return side


def _tint(color, amount: float) -> tuple[int, int, int]:
    """Blend towards white (amount > 0) or black (amount < 0)."""
    c = np.asarray(color, np.float64)
    target = 255.0 if amount > 0 else 0.0
    return tuple(int(round(x)) for x in c + (target - c) * abs(amount))


def _present(kp: np.ndarray, min_score: float) -> np.ndarray:
    ok = np.isfinite(kp[:, :2]).all(axis=1) & ~((kp[:, 0] == 0) & (kp[:, 1] == 0))
    if kp.shape[1] >= 3:
        ok &= np.nan_to_num(kp[:, 2], nan=-np.inf) > min_score
    return ok


def _marker(img, center, radius, color, shape: int, filled: bool, edge, aa) -> None:
    import cv2

    x, y = center
    s = 16  # fixed-point scale (shift 4)
    th = -1 if filled else max(1, radius // 2)
    if shape > 0:  # left: circle
        cv2.circle(img, (int(x * s), int(y * s)), radius * s, color, th, aa, shift=4)
        if filled:
            cv2.circle(img, (int(x * s), int(y * s)), radius * s, edge, 1, aa, shift=4)
        return
    if shape < 0:  # right: square
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    else:  # centre: diamond
        pts = np.array([[0, -1.3], [1.3, 0], [0, 1.3], [-1.3, 0]], np.float64)
    poly = np.round((pts * radius + [x, y]) * s).astype(np.int32)
    if filled:
        cv2.fillPoly(img, [poly], color, aa, shift=4)
        cv2.polylines(img, [poly], True, edge, 1, aa, shift=4)
    else:
        cv2.polylines(img, [poly], True, color, th, aa, shift=4)


def draw_pose(
    image: np.ndarray,
    keypoints: np.ndarray,
    schema: KeypointSchema,
    color: Sequence[int] | None = None,
    *,
    thickness: int | None = None,
    radius: int | None = None,
    label: str | None = None,
    min_score: float = 0.0,
    hollow: np.ndarray | None = None,
    copy: bool = True,
) -> np.ndarray:
    """Draw one pose's links and joints.

    Args:
        image: (H, W, 3) uint8 RGB.
        keypoints: (K, 2) x, y or (K, 3) x, y, visibility/score, in the image's pixel coordinates.
        schema: the keypoint layout (links, left/right pairs).
        color: RGB of this pose (left links lighter, right darker); None: green left, orange right, blue centre.
        thickness: link width in pixels (default: from the image size); radius: joint marker radius.
        label: text written above the pose's top-left joint.
        min_score: joints whose third column is not above it are not drawn.
        hollow: (K,) bool, joints drawn as outlines with thin links (e.g. ground truth with v == 1).
        copy: draw on a copy (default) or in place.

    Returns:
        the (H, W, 3) uint8 image with the pose.
    """
    import cv2

    img = _check_image(image)
    img = img.copy() if copy else img
    kp = np.asarray(keypoints, dtype=np.float64)
    k = schema.num_keypoints
    if kp.ndim != 2 or kp.shape[0] != k or kp.shape[1] < 2:
        raise PosefixError(f"draw_pose: keypoints of shape {kp.shape}, expected ({k}, 2) or ({k}, 3) for {schema.name}")
    ok = _present(kp, min_score)
    hol = np.zeros(k, bool) if hollow is None else np.asarray(hollow, bool).reshape(k)
    t = thickness or max(1, int(round(min(img.shape[:2]) / 160)))
    r = radius or t + 1
    side = side_of(schema)
    if color is None:
        cols = {1: SIDE_COLORS["left"], -1: SIDE_COLORS["right"], 0: SIDE_COLORS["center"]}
    else:
        cols = {1: _tint(color, 0.45), -1: _tint(color, -0.35), 0: tuple(int(c) for c in color)}
    aa = cv2.LINE_AA
    for a, b in schema.skeleton:
        if ok[a] and ok[b]:
            s = side[a] if side[a] == side[b] else 0
            w = max(1, t // 2) if (hol[a] or hol[b]) else t
            p, q = (np.round(kp[[a, b], :2] * 16).astype(np.int64)).tolist()
            cv2.line(img, tuple(p), tuple(q), cols[s], w, aa, shift=4)
    edge = (0, 0, 0)
    for j in np.flatnonzero(ok):
        _marker(img, kp[j, :2], r, cols[side[j]], side[j], not hol[j], edge, aa)
    if label and ok.any():
        x0, y0 = kp[ok, 0].min(), kp[ok, 1].min()
        _text(img, label, (x0, y0 - r - 2), cols[0])
    return img


def draw_poses(
    image: np.ndarray,
    poses: np.ndarray,
    schema: KeypointSchema,
    colors: Sequence[Sequence[int]] | None = None,
    labels: Sequence[str] | None = None,
    hollow: np.ndarray | None = None,
    **kwargs,
) -> np.ndarray:
    """Draw several poses (N, K, 2|3) on a copy of ``image``, one colour each (default :func:`pose_colors`).

    ``hollow``: (N, K) bool or None; other keyword arguments go to :func:`draw_pose`.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.size == 0:
        return _check_image(image).copy()
    if poses.ndim != 3:
        raise PosefixError(f"draw_poses: poses of shape {poses.shape}, expected (N, K, 2) or (N, K, 3)")
    colors = pose_colors(len(poses)) if colors is None else colors
    img = _check_image(image).copy()
    for n, kp in enumerate(poses):
        draw_pose(img, kp, schema, colors[n], label=labels[n] if labels else None,
                  hollow=None if hollow is None else hollow[n], copy=False, **kwargs)
    return img


def _text(img, text: str, org, color) -> None:
    import cv2

    h, w = img.shape[:2]
    scale = max(0.35, min(h, w) / 700)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = int(np.clip(org[0], 1, max(1, w - tw - 1)))
    y = int(np.clip(org[1], th + 1, h - 2))
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(c) for c in color), 1, cv2.LINE_AA)


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise PosefixError(f"draw: expected an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}")
    return img


def contact_sheet(
    images: Sequence[np.ndarray],
    poses: Sequence[np.ndarray],
    schema: KeypointSchema,
    *,
    cols: int = 4,
    tile: tuple[int, int] = (256, 256),
    labels: Sequence[str] | None = None,
    colors: Sequence[Sequence[Sequence[int]] | None] | None = None,
    hollow: Sequence[np.ndarray | None] | None = None,
    pad: int = 4,
    background: Sequence[int] = (32, 32, 32),
    **kwargs,
) -> np.ndarray:
    """A grid of images, each resized to fit ``tile`` (w, h) with its poses drawn at the tile's resolution.

    Args:
        images: M (H_i, W_i, 3) uint8 RGB images.
        poses: M arrays (N_i, K, 2|3) in each image's own coordinates (N_i may be 0).
        labels: M captions (top-left of each tile).
        colors: M lists of N_i colours (default: :func:`pose_colors` per image).
        hollow: M (N_i, K) bool masks or None (see :func:`draw_pose`).
        kwargs: passed to :func:`draw_pose` (``thickness``, ``radius``, ``min_score``).

    Returns:
        (rows * (tile_h + pad) + pad, cols * (tile_w + pad) + pad, 3) uint8 RGB.
    """
    import cv2

    if len(poses) != len(images):
        raise PosefixError(f"contact_sheet: {len(images)} images but {len(poses)} pose arrays")
    if not images:
        raise PosefixError("contact_sheet: no images")
    tw, th = int(tile[0]), int(tile[1])
    cols = max(1, min(int(cols), len(images)))
    rows = -(-len(images) // cols)
    sheet = np.empty((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), np.uint8)
    sheet[:] = np.asarray(background, np.uint8)
    k = schema.num_keypoints
    for m, image in enumerate(images):
        img = _check_image(image)
        f = min(tw / img.shape[1], th / img.shape[0])
        w, h = max(1, int(round(img.shape[1] * f))), max(1, int(round(img.shape[0] * f)))
        small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        pm = np.array(poses[m], dtype=np.float64)
        if pm.size == 0:
            pm = np.zeros((0, k, 2))
        pm[..., :2] = np.where(_present_all(pm), (pm[..., :2] + 0.5) * f - 0.5, pm[..., :2])
        small = draw_poses(small, pm, schema, colors=None if colors is None else colors[m],
                           hollow=None if hollow is None else hollow[m], **kwargs)
        if labels:
            _text(small, str(labels[m]), (3, 3), (255, 255, 255))
        r, c = divmod(m, cols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        sheet[y:y + h, x:x + w] = small
    return sheet


def _present_all(poses: np.ndarray) -> np.ndarray:
    """(N, K, 1) mask keeping (0, 0) placeholders at (0, 0) when rescaling."""
    return ~((poses[..., 0] == 0) & (poses[..., 1] == 0))[..., None]


def coco_contact_sheet(dataset, image_ids: Sequence[int], **kwargs) -> np.ndarray:
    """A contact sheet of a :class:`~posefix_bench.structures.coco.CocoDataset`'s images with their ground truth.

    Joints labelled occluded (v = 1) are drawn hollow; each tile is captioned with its image id and, where the
    annotations carry ``lower_body_occluded``, how many of its persons are lower-body occluded.
    """
    images, poses, hollow, labels = [], [], [], []
    for image_id in image_ids:
        arr = dataset.gt_arrays(image_id)
        keep = ~arr.iscrowd
        images.append(dataset.read_image(image_id))
        poses.append(arr.keypoints[keep])
        hollow.append(arr.keypoints[keep][..., 2] == 1)
        occl = sum(bool(a.get("lower_body_occluded")) for a in dataset.annotations(image_id))
        labels.append(f"#{image_id}" + (f" occl {occl}" if occl else ""))
    return contact_sheet(images, poses, dataset.schema, labels=labels, hollow=hollow, **kwargs)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB image."""
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(_check_image(image), cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise PosefixError("draw: PNG encoding failed")
    return buf.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB image as PNG, atomically (see :mod:`posefix_bench.structures.io`)."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise PosefixError(f"{p}: images are written as PNG (use a .png name)")
    return atomic_write_bytes(p, encode_png(image))
