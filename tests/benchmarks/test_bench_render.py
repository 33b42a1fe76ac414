"""pytest-benchmark: heatmap rendering (vectorised vs the per-keypoint loop) and decoding at the published sizes.

Timings are reported by ``make bench-throughput`` (``--benchmark-enable``); in the normal suite each runs once and
only its output is checked. No timing assertions.
"""

import numpy as np
import pytest
import torch

from posefix_bench.codecs.heatmap import bilinear_target, render_heatmaps, render_heatmaps_loop, soft_argmax
from posefix_bench.structures.schema import COCO17

B, K = 16, COCO17.num_keypoints
SIZE, SIGMA = (384, 288), 9.0  # H, W and sigma of the published 384x288 model


@pytest.fixture(scope="module")
def pose():
    rng = np.random.default_rng(0)
    coords = rng.uniform([0, 0], [SIZE[1] - 1, SIZE[0] - 1], size=(B, K, 2)).astype(np.float32)
    return torch.from_numpy(coords), torch.from_numpy(rng.random((B, K)) > 0.1)


@pytest.mark.benchmark(group="render 16x17x384x288")
def test_bench_render_vectorized(benchmark, pose):
    out = benchmark(render_heatmaps, pose[0], pose[1], SIZE, SIGMA)
    assert out.shape == (B, K, *SIZE)


@pytest.mark.benchmark(group="render 16x17x384x288")
def test_bench_render_into_buffer(benchmark, pose):
    buf = torch.zeros(B, K, *SIZE)
    out = benchmark(render_heatmaps, pose[0], pose[1], SIZE, SIGMA, out=buf)
    assert out.data_ptr() == buf.data_ptr()


@pytest.mark.benchmark(group="render 16x17x384x288")
def test_bench_render_loop(benchmark, pose):
    out = benchmark.pedantic(render_heatmaps_loop, args=(pose[0], pose[1], SIZE, SIGMA), rounds=3, iterations=1)
    assert out.shape == (B, K, *SIZE)


@pytest.mark.benchmark(group="decode 16x17x96x72")
def test_bench_soft_argmax(benchmark):
    logits = torch.randn(B, K, SIZE[0] // 4, SIZE[1] // 4, generator=torch.Generator().manual_seed(0))
    coords, probs = benchmark(soft_argmax, logits)
    assert coords.shape == (B, K, 2)


@pytest.mark.benchmark(group="decode 16x17x96x72")
def test_bench_bilinear_target(benchmark, pose):
    grid = pose[0] / 4
    out = benchmark(bilinear_target, grid, pose[1], (SIZE[0] // 4, SIZE[1] // 4))
    assert out.shape == (B, K, SIZE[0] // 4, SIZE[1] // 4)
