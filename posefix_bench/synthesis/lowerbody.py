"""Lower-body augmentation of training inputs (the PoseFix re-implementation's addition; off by default).

Estimators often pull occluded legs up toward the hips. To teach the refiner to extend them again, with
probability ``p`` a training sample's INPUT pose gets shorter legs and its image crop loses the lower body:

- :func:`shrink_lower_body`: every hip -> knee and knee -> ankle segment is shortened toward its proximal joint
  by ``factor`` (default 0.8): ``knee' = hip + f (knee - hip)``, ``ankle' = knee' + f (ankle - knee)``, so each
  segment keeps its direction and is ``f`` times as long. A knee without a valid hip stays and its ankle shrinks
  toward it; an ankle without a valid knee is left alone.
- :func:`cutout_lower_body`: the region below the hips that holds the lower-body keypoints (see
  :func:`lower_body_box`) is overwritten with noise (or zeros, or the crop's mean colour).

Hips, knees and ankles are resolved by keypoint name (``left_hip``/``right_hip``, ``l_knee``, ``left ankle``, ...),
so any schema that names them works (COCO-17, CrowdPose-14, MPII-16); a schema without them cannot use it.

Shape legend: N persons, K keypoints, H x W crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.structures.schema import KeypointSchema

__all__ = ["LowerBodyAug", "leg_chains", "shrink_lower_body", "lower_body_box", "cutout_lower_body",
           "apply_lower_body_aug", "FILLS"]

FILLS = ("noise", "zero", "mean")
_SIDES = (("left_", "l_", "left "), ("right_", "r_", "right "))


@dataclass(frozen=True)
class LowerBodyAug:
    """Configuration of the lower-body augmentation (the training config fills it).

    Attributes:
        p: probability per training sample (0 disables it).
        factor: segment shortening factor in (0, 1].
        cutout: also cut the lower body out of the image crop.
        margin: horizontal padding of the cut-out box, as a fraction of the crop width.
        fill: ``noise`` (uniform random pixels), ``zero`` or ``mean`` (the crop's mean colour).
    """

    p: float = 0.0
    factor: float = 0.8
    cutout: bool = True
    margin: float = 0.1
    fill: str = "noise"

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise PosefixError(f"lower-body augmentation: p must be in [0, 1], got {self.p}")
        if not 0.0 < self.factor <= 1.0:
            raise PosefixError(f"lower-body augmentation: factor must be in (0, 1], got {self.factor}")
        if not self.margin >= 0.0:
            raise PosefixError(f"lower-body augmentation: margin must be >= 0, got {self.margin}")
        if self.fill not in FILLS:
            raise PosefixError(f"lower-body augmentation: fill must be one of {', '.join(FILLS)}, got {self.fill!r}")


def leg_chains(schema: KeypointSchema) -> np.ndarray:
    """(L, 3) indices (hip, knee, ankle) of each leg named in ``schema`` (L = 2 for COCO-17)."""
    lookup = {n.lower(): i for i, n in enumerate(schema.keypoints)}
    chains = []
    for prefixes in _SIDES:
        for pre in prefixes:
            idx = [lookup.get(pre + part) for part in ("hip", "knee", "ankle")]
            if all(i is not None for i in idx):
                chains.append(idx)
                break
    if not chains:
        raise PosefixError(f"keypoint schema {schema.name!r} names no hip/knee/ankle: no lower-body augmentation")
    return np.asarray(chains, dtype=np.int64)


def shrink_lower_body(
    keypoints: np.ndarray, valid: np.ndarray, schema: KeypointSchema, factor: float = 0.8
) -> np.ndarray:
    """Shorten the hip -> knee and knee -> ankle segments toward the proximal joint.

    Args:
        keypoints: (..., K, C) with x, y in the first two columns (other columns are copied).
        valid: (..., K) bool, keypoints that exist.
        schema: the keypoint layout (legs resolved by name).
        factor: new segment length / old length.

    Returns:
        A new array like ``keypoints``.
    """
    kp = np.array(keypoints, dtype=np.float64, copy=True)
    v = np.asarray(valid, bool)
    for hip, knee, ankle in leg_chains(schema):
        old_knee = kp[..., knee, :2].copy()
        move_knee = v[..., hip] & v[..., knee]
        new_knee = kp[..., hip, :2] + factor * (old_knee - kp[..., hip, :2])
        kp[..., knee, :2] = np.where(move_knee[..., None], new_knee, old_knee)
        move_ankle = v[..., knee] & v[..., ankle]
        new_ankle = kp[..., knee, :2] + factor * (kp[..., ankle, :2] - old_knee)
        kp[..., ankle, :2] = np.where(move_ankle[..., None], new_ankle, kp[..., ankle, :2])
    return kp


def lower_body_box(
    keypoints: np.ndarray, valid: np.ndarray, schema: KeypointSchema, size: tuple[int, int], margin: float = 0.1
) -> np.ndarray | None:
    """The crop region treated as "lower body": from the hips (or the highest valid leg keypoint) down to the
    bottom of the crop, spanning the valid leg keypoints horizontally plus ``margin`` x crop width on each side.

    Args:
        keypoints: (K, >=2) keypoints of one person in crop pixels; valid: (K,) bool.
        size: (width, height) of the crop.

    Returns:
        (4,) int64 x0, y0, x1, y1 (exclusive ends) clipped to the crop, or None when no leg keypoint is valid or
        the region misses the crop.
    """
    kp = np.asarray(keypoints, dtype=np.float64)[:, :2]
    v = np.asarray(valid, bool)
    chains = leg_chains(schema)
    legs = chains.reshape(-1)[v[chains.reshape(-1)]]
    if legs.size == 0:
        return None
    hips = chains[:, 0][v[chains[:, 0]]]
    top = kp[hips, 1].mean() if hips.size else kp[legs, 1].min()
    w, h = int(size[0]), int(size[1])
    pad = margin * w
    x0 = int(np.clip(np.floor(kp[legs, 0].min() - pad), 0, w))
    x1 = int(np.clip(np.ceil(kp[legs, 0].max() + pad) + 1, 0, w))
    y0 = int(np.clip(np.floor(top), 0, h))
    if x1 <= x0 or y0 >= h:
        return None
    return np.asarray([x0, y0, x1, h], dtype=np.int64)


def cutout_lower_body(
    image_crop: np.ndarray,
    keypoints_in_crop: np.ndarray,
    valid: np.ndarray,
    schema: KeypointSchema,
    rng: np.random.Generator,
    margin: float = 0.1,
    fill: str = "noise",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Overwrite the lower-body region (:func:`lower_body_box`) of a crop.

    Args:
        image_crop: (H, W, C) or (H, W) uint8 or float image.
        keypoints_in_crop: (K, >=2) the person's keypoints in crop pixels (the ground truth, so the cut-out hides
            the true legs); valid: (K,) bool.
        rng: draws the noise.
        fill: ``noise`` (uniform over the image's value range: 0-255 for uint8, else [min, max] of the crop),
            ``zero``, or ``mean`` (per-channel mean of the crop).

    Returns:
        (a new image, the box x0, y0, x1, y1 or None when nothing was cut).
    """
    if fill not in FILLS:
        raise PosefixError(f"lower-body cut-out: fill must be one of {', '.join(FILLS)}, got {fill!r}")
    img = np.array(image_crop, copy=True)
    box = lower_body_box(keypoints_in_crop, valid, schema, (img.shape[1], img.shape[0]), margin)
    if box is None:
        return img, None
    x0, y0, x1, y1 = (int(b) for b in box)
    region = img[y0:y1, x0:x1]
    if fill == "zero":
        region[...] = 0
    elif fill == "mean":
        region[...] = np.asarray(image_crop).reshape(-1, *img.shape[2:]).mean(axis=0).astype(img.dtype)
    elif img.dtype == np.uint8:
        region[...] = rng.integers(0, 256, size=region.shape, dtype=np.uint8)
    else:
        lo, hi = float(np.min(image_crop)), float(np.max(image_crop))
        region[...] = rng.uniform(lo, hi, size=region.shape).astype(img.dtype)
    return img, box


def apply_lower_body_aug(
    aug: LowerBodyAug,
    rng: np.random.Generator,
    schema: KeypointSchema,
    input_keypoints: np.ndarray,
    input_valid: np.ndarray,
    image_crop: np.ndarray | None = None,
    gt_keypoints: np.ndarray | None = None,
    gt_valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """With probability ``aug.p``: shrink the input pose's legs and (``aug.cutout``) cut the lower body out of
    the crop, located by the ground truth (``gt_keypoints``/``gt_valid``, default: the input pose).

    Args:
        input_keypoints: (K, >=2) input pose in crop pixels; input_valid: (K,) bool.
        image_crop: (H, W, C) crop or None.

    Returns:
        (input keypoints, image crop, whether the augmentation was applied); unchanged inputs when it was not.
    """
    if aug.p <= 0.0 or rng.random() >= aug.p:
        return np.asarray(input_keypoints), image_crop, False
    kp = shrink_lower_body(input_keypoints, input_valid, schema, aug.factor)
    if aug.cutout and image_crop is not None:
        ref = input_keypoints if gt_keypoints is None else gt_keypoints
        ref_valid = input_valid if gt_valid is None else gt_valid
        image_crop, _ = cutout_lower_body(image_crop, ref, ref_valid, schema, rng, aug.margin, aug.fill)
    return kp, image_crop, True
