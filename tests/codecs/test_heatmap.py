"""The heatmap codec: rendering (against the per-keypoint reference), decoding round trips, targets, flip symmetry."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posefix_bench.codecs.heatmap import (
    bilinear_target,
    decode_heatmaps,
    flip_heatmaps,
    grid_to_input,
    input_to_grid,
    peak_mass,
    render_heatmaps,
    render_heatmaps_loop,
    soft_argmax,
)
from posefix_bench.structures.schema import COCO17
from posefix_bench.structures.transforms import flip_keypoints

K = COCO17.num_keypoints


def _coords(b, k, w, h, seed, margin=0.0):
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([margin, margin])
    hi = torch.tensor([w - 1 - margin, h - 1 - margin])
    return lo + torch.rand(b, k, 2, generator=g) * (hi - lo)


def test_render_equals_the_per_keypoint_loop():
    c = _coords(3, K, 48, 64, seed=0)
    c[0, 1] = torch.tensor([-2.0, 65.0])  # outside the grid: a partial Gaussian
    c[1, 2] = torch.tensor([float("nan"), 5.0])  # non-finite: treated as invalid
    valid = torch.ones(3, K, dtype=torch.bool)
    valid[2, 5] = False
    fast = render_heatmaps(c, valid, (64, 48), sigma=1.75)
    ref = render_heatmaps_loop(c, valid, (64, 48), sigma=1.75)
    assert fast.shape == (3, K, 64, 48) and fast.dtype == torch.float32
    np.testing.assert_allclose(fast.numpy(), ref, atol=2e-6)
    assert fast[2, 5].abs().max() == 0 and fast[1, 2].abs().max() == 0
    assert fast[0, 1].max() > 0  # a keypoint off the grid still leaves its tail


def test_render_peak_dtype_and_out_buffer():
    c = torch.tensor([[[10.0, 20.0], [3.0, 4.0]]])
    hm = render_heatmaps(c, None, (32, 24), sigma=2.0)
    assert hm[0, 0, 20, 10] == 1.0 and hm[0, 0].argmax() == 20 * 24 + 10
    assert render_heatmaps(c, None, (32, 24), 2.0, dtype=torch.bfloat16).dtype == torch.bfloat16
    buf = torch.zeros(1, 5, 32, 24).contiguous(memory_format=torch.channels_last)
    out = render_heatmaps(c, None, (32, 24), 2.0, out=buf[:, 3:])
    assert out.data_ptr() == buf[:, 3:].data_ptr()
    torch.testing.assert_close(buf[:, 3:], hm)
    assert buf[:, :3].abs().max() == 0


@pytest.mark.parametrize("size,sigma", [((256, 192), 7.0), ((384, 288), 9.0), ((64, 48), 1.75)])
def test_round_trip_through_the_output_grid(size, sigma):
    """Acceptance: decode(render(x)) recovers x within 0.5 px at output resolution (stride 4)."""
    h, w = size
    stride = 4
    x = _coords(4, K, w, h, seed=1, margin=3 * sigma)  # interior points (a Gaussian cut by the border decodes inward)
    pooled = F.avg_pool2d(render_heatmaps(x, None, size, sigma), stride)  # input resolution -> output grid
    err_pooled = (decode_heatmaps(pooled) - input_to_grid(x, stride)).abs().max()
    g = input_to_grid(x, stride)  # rendered directly on the grid
    err_grid = (decode_heatmaps(render_heatmaps(g, None, (h // stride, w // stride), sigma / stride)) - g).abs().max()
    logits = torch.log(render_heatmaps(g, None, (h // stride, w // stride), sigma / stride) + 1e-30)
    err_soft = (soft_argmax(logits)[0] - g).abs().max()
    assert err_pooled < 0.5 and err_grid < 0.5 and err_soft < 0.5
    assert err_pooled < 0.1 and err_grid < 0.1  # in fact far below the acceptance bound


def test_decode_of_empty_map_is_nan():
    hm = torch.zeros(1, 2, 8, 6)
    hm[0, 0, 3, 2] = 1
    d = decode_heatmaps(hm)
    assert d[0, 0].tolist() == [2.0, 3.0] and torch.isnan(d[0, 1]).all()


def test_soft_argmax_probabilities_and_peaks():
    logits = torch.full((2, 3, 16, 12), -50.0)
    logits[0, 0, 5, 7] = 50.0
    logits[1, 2, 15, 0] = 50.0
    coords, probs = soft_argmax(logits.to(torch.bfloat16))
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(dim=(-2, -1)), torch.ones(2, 3))
    torch.testing.assert_close(coords[0, 0], torch.tensor([7.0, 5.0]))
    torch.testing.assert_close(coords[1, 2], torch.tensor([0.0, 15.0]))
    torch.testing.assert_close(coords[0, 1], torch.tensor([5.5, 7.5]))  # uniform map: the grid center
    assert peak_mass(probs, coords)[0, 0] > 0.999
    assert 9 / (16 * 12) - 1e-6 <= peak_mass(probs, coords)[0, 1] <= 16 / (16 * 12) + 1e-6  # 3x3 to 4x4 pixels


def test_bilinear_target_is_exact_and_masked():
    g = torch.tensor([[[3.25, 4.5], [0.0, 0.0], [11.0, 15.0], [11.5, 3.0], [2.0, 2.0]]])
    valid = torch.tensor([[True, True, True, True, False]])
    t = bilinear_target(g, valid, (16, 12))
    sums = t.sum(dim=(-2, -1))[0]
    assert sums.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]  # point 3 lies beyond the last column, point 4 is invalid
    torch.testing.assert_close(decode_heatmaps(t[:, :3]), g[:, :3])  # the bilinear expectation is the point itself
    assert (t[0, 0] > 0).sum() == 4
    assert t[0, 0, 4, 3] == pytest.approx(0.75 * 0.5)


def test_grid_conversion_is_one_invertible_map():
    x = torch.tensor([0.0, 1.5, 191.0])
    torch.testing.assert_close(grid_to_input(input_to_grid(x, 4), 4), x)
    assert input_to_grid(1.5, 4) == 0.0 and grid_to_input(0.0, 4) == 1.5  # cell 0 covers input pixels 0..3
    # a flip x -> W - 1 - x in input pixels is g -> w - 1 - g on the grid
    assert input_to_grid(191.0 - 10.0, 4) == pytest.approx(47 - input_to_grid(10.0, 4))


def test_flip_commutes_with_render_and_decode():
    """Rendering a mirrored pose gives the mirrored heatmaps, and decoding mirrored logits the mirrored pose."""
    c = _coords(2, K, 48, 64, seed=3)
    valid = torch.rand(2, K, generator=torch.Generator().manual_seed(4)) > 0.3
    fi = COCO17.flip_index
    flipped = torch.as_tensor(flip_keypoints(c.numpy(), 48, fi), dtype=torch.float32)
    a = render_heatmaps(flipped, valid[:, fi], (64, 48), 2.0)
    b = flip_heatmaps(render_heatmaps(c, valid, (64, 48), 2.0), fi)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    logits = torch.randn(2, K, 16, 12, generator=torch.Generator().manual_seed(5)) * 3
    direct = soft_argmax(logits)[0]
    mirrored = soft_argmax(flip_heatmaps(logits, fi))[0]
    torch.testing.assert_close(mirrored, torch.as_tensor(flip_keypoints(direct.numpy(), 12, fi), dtype=torch.float32),
                               atol=1e-5, rtol=0)
