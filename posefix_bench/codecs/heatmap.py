"""The heatmap codec of the PoseFix refiner: input-pose rendering, integral (soft-argmax) decoding, training targets.

PoseFix (Moon et al., CVPR 2019, Sec. 5) feeds the refiner the image crop concatenated with one Gaussian heatmap per
input keypoint, rendered at input resolution (sigma 7 px at 256x192, 9 px at 384x288), and reads coordinates from
the output heatmaps by soft-argmax, i.e. integral regression (Sun et al., "Integral Human Pose Regression", ECCV
2018, Eq. 3: the expectation of the pixel position under the softmax of the logits). Its training loss is a
cross-entropy against a one-hot target spread bilinearly over the 4 pixels around the true position, plus L1 on the
decoded coordinates (PoseFix ``model.py``: ``render_onehot_heatmap``, ``extract_coordinate``).

All functions are pure, batched and run on the device of their input tensors (the re-implementation's bottleneck
was rendering per sample on the CPU). Rendering is separable: a 2-D Gaussian is the outer product of two 1-D
Gaussians, so a (B, K, H, W) batch costs B*K*(H+W) exponentials plus one broadcast multiply that only writes the
output (:func:`render_heatmaps_loop` is the straightforward per-person, per-keypoint reference). The bilinear
one-hot target is separable in the same way (the outer product of two 1-D "tent" functions).

Coordinate convention: pixels of any grid have their centers at integer coordinates (the convention of
``cv2.warpAffine`` and of :func:`posefix_bench.structures.transforms.flip_keypoints`). A stride-``s`` grid
(e.g. the refiner's output, ``s = 4``) has cell ``i`` covering input pixels ``s*i .. s*i + s - 1``, whose center is
``s*i + (s - 1) / 2``; :func:`input_to_grid` and :func:`grid_to_input` are that one conversion. With it, a
horizontal flip ``x -> W - 1 - x`` in input pixels is ``g -> w - 1 - g`` on the grid, so flipping commutes with
rendering, pooling and decoding. (The published code used ``x / s``, which shifts the grid by (s - 1) / (2 s) cells.)

Shape legend: B batch (persons), K keypoints, H x W input resolution, h x w output grid.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "input_to_grid",
    "grid_to_input",
    "render_heatmaps",
    "render_heatmaps_loop",
    "soft_argmax",
    "decode_heatmaps",
    "peak_mass",
    "bilinear_target",
    "flip_heatmaps",
]


def input_to_grid(coords, stride: int):
    """Input-pixel coordinates -> coordinates on a stride-``stride`` grid (tensor, array or float)."""
    return (coords - (stride - 1) / 2.0) / stride


def grid_to_input(coords, stride: int):
    """Coordinates on a stride-``stride`` grid -> input-pixel coordinates (inverse of :func:`input_to_grid`)."""
    return coords * stride + (stride - 1) / 2.0


def _clean(coords: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 coordinates with invalid / non-finite points set to 0, and the (..., K) bool mask of usable points."""
    c = coords.to(torch.float32)
    ok = torch.isfinite(c).all(dim=-1)
    if valid is not None:
        ok = ok & valid.to(device=c.device, dtype=torch.bool)
    return torch.where(ok[..., None], c, torch.zeros((), dtype=c.dtype, device=c.device)), ok


def _axis(n: int, ref: torch.Tensor) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float32, device=ref.device)


def render_heatmaps(
    coords: torch.Tensor,
    valid: torch.Tensor | None,
    size: tuple[int, int],
    sigma: float,
    dtype: torch.dtype | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gaussian heatmaps of keypoints (peak 1 at the keypoint, zero for invalid keypoints).

    ``exp(-((x - cx)**2 + (y - cy)**2) / (2 sigma**2))`` computed separably on the device of ``coords``.

    Args:
        coords: (B, K, 2) x, y in pixels of the (H, W) grid (any leading dimensions work).
        valid: (B, K) bool, or None for all; non-finite coordinates count as invalid.
        size: (H, W) of the heatmaps.
        sigma: Gaussian standard deviation in pixels of that grid.
        dtype: output dtype (default float32); the exponentials are always evaluated in float32.
        out: optional preallocated (B, K, H, W) tensor (any strides, e.g. a slice of the network input) to
            write into; it is returned.

    Returns:
        (B, K, H, W) heatmaps.
    """
    h, w = int(size[0]), int(size[1])
    c, ok = _clean(coords, valid)
    inv = -0.5 / float(sigma) ** 2
    gx = torch.exp((_axis(w, c) - c[..., 0:1]) ** 2 * inv)  # (..., K, W)
    gy = torch.exp((_axis(h, c) - c[..., 1:2]) ** 2 * inv) * ok[..., None]  # (..., K, H), zero where invalid
    target = dtype if dtype is not None else (out.dtype if out is not None else torch.float32)
    gx, gy = gx.to(target), gy.to(target)
    if out is not None:
        return torch.mul(gy[..., :, None], gx[..., None, :], out=out)
    return gy[..., :, None] * gx[..., None, :]


def render_heatmaps_loop(coords, valid, size: tuple[int, int], sigma: float) -> np.ndarray:
    """Reference renderer: one full-grid 2-D Gaussian per person and keypoint, in numpy (the per-sample approach).

    Same arguments and result as :func:`render_heatmaps` (arrays or CPU tensors in), returned as a float32
    (B, K, H, W) numpy array. Used to check the vectorised renderer and as the baseline of the rendering benchmark.
    """
    c = np.asarray(coords.detach().cpu() if isinstance(coords, torch.Tensor) else coords, dtype=np.float64)
    v = np.ones(c.shape[:-1], bool) if valid is None else np.asarray(
        valid.detach().cpu() if isinstance(valid, torch.Tensor) else valid, dtype=bool)
    h, w = int(size[0]), int(size[1])
    b_n, k_n = c.shape[0], c.shape[1]
    out = np.zeros((b_n, k_n, h, w), dtype=np.float32)
    for b in range(b_n):
        for k in range(k_n):
            x, y = c[b, k]
            if not v[b, k] or not (np.isfinite(x) and np.isfinite(y)):
                continue
            xx, yy = np.meshgrid(np.arange(w), np.arange(h))
            out[b, k] = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * sigma**2))
    return out


def _expectation(probs: torch.Tensor) -> torch.Tensor:
    """(..., h, w) probabilities -> (..., 2) expected x, y (separably, from the two marginals)."""
    h, w = probs.shape[-2:]
    x = (probs.sum(dim=-2) * _axis(w, probs)).sum(dim=-1)
    y = (probs.sum(dim=-1) * _axis(h, probs)).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


def soft_argmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integral regression: the expected position under the spatial softmax of each map.

    Args:
        logits: (B, K, h, w) (any dtype; evaluated in float32).

    Returns:
        coords (B, K, 2) x, y in grid pixels, and probs (B, K, h, w) float32 (each map sums to 1).
    """
    h, w = logits.shape[-2:]
    flat = logits.to(torch.float32).flatten(-2)
    probs = torch.softmax(flat, dim=-1).unflatten(-1, (h, w))
    return _expectation(probs), probs


def decode_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """Expected position under non-negative heatmaps normalised to sum 1 (the decoder of rendered heatmaps).

    Args:
        heatmaps: (B, K, h, w) non-negative maps (e.g. from :func:`render_heatmaps`, possibly pooled).

    Returns:
        (B, K, 2) x, y in grid pixels; NaN for an all-zero map (an invalid keypoint). A Gaussian cut by the grid
        border decodes towards the inside (its visible part's mean).
    """
    hm = heatmaps.to(torch.float32).clamp_min(0)
    total = hm.sum(dim=(-2, -1))
    probs = hm / torch.where(total > 0, total, torch.ones_like(total))[..., None, None]
    coords = _expectation(probs)
    return torch.where((total > 0)[..., None], coords, torch.full_like(coords, float("nan")))


def peak_mass(probs: torch.Tensor, coords: torch.Tensor, radius: float = 1.5) -> torch.Tensor:
    """Probability mass within ``radius`` grid pixels (per axis) of the decoded position: a confidence in [0, 1].

    Args:
        probs: (B, K, h, w) maps that sum to 1 (from :func:`soft_argmax`).
        coords: (B, K, 2) decoded x, y in grid pixels.
        radius: half-width of the square window (1.5: the 3 x 3 pixels around an integer position).

    Returns:
        (B, K) float32.
    """
    h, w = probs.shape[-2:]
    c = coords.to(torch.float32)
    mx = ((_axis(w, probs) - c[..., 0:1]).abs() <= radius).to(probs.dtype)  # (B, K, w)
    my = ((_axis(h, probs) - c[..., 1:2]).abs() <= radius).to(probs.dtype)  # (B, K, h)
    return ((probs * mx[..., None, :]).sum(dim=-1) * my).sum(dim=-1)


def bilinear_target(coords: torch.Tensor, valid: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
    """One-hot targets spread bilinearly over the 4 grid pixels around each point (PoseFix's heatmap target).

    The weights are the outer product of 1-D tent functions ``max(0, 1 - |i - x|)``, so each map sums to 1 when
    the point lies inside the grid (``0 <= x <= w - 1``, ``0 <= y <= h - 1``). Points that are invalid,
    non-finite or outside the grid get an all-zero map (no heatmap loss, as the published code's valid mask).

    Args:
        coords: (B, K, 2) x, y in grid pixels.
        valid: (B, K) bool or None.
        size: (h, w) of the grid.

    Returns:
        (B, K, h, w) float32.
    """
    h, w = int(size[0]), int(size[1])
    c, ok = _clean(coords, valid)
    x, y = c[..., 0], c[..., 1]
    ok = ok & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    tx = (1.0 - (_axis(w, c) - x[..., None]).abs()).clamp_min(0)  # (B, K, w)
    ty = (1.0 - (_axis(h, c) - y[..., None]).abs()).clamp_min(0) * ok[..., None]  # (B, K, h)
    return ty[..., :, None] * tx[..., None, :]


def flip_heatmaps(heatmaps: torch.Tensor, flip_index) -> torch.Tensor:
    """Mirror (B, K, h, w) maps horizontally and swap left/right channels (``KeypointSchema.flip_index``)."""
    idx = torch.as_tensor(np.asarray(flip_index), dtype=torch.long, device=heatmaps.device)
    return heatmaps.flip(-1).index_select(-3, idx)
