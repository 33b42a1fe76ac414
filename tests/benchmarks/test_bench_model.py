"""pytest-benchmark: refiner forward passes (small backbone) in fp32 and bf16, channels_last, inference mode.

``make bench-throughput`` reports the timings; the ``throughput`` command gives samples/s, FLOP/s and the roofline
fraction. In the normal suite each runs once. No timing assertions.
"""

import pytest
import torch

from posefix_bench.models import build_refiner

BATCH = 8


@pytest.fixture(scope="module")
def refiner_inputs():
    model = build_refiner(dict(backbone="resnet18", input_size=(192, 256)), seed=0).eval()
    model = model.to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, 256, 192, generator=g).contiguous(memory_format=torch.channels_last)
    pose = torch.rand(BATCH, 17, 2, generator=g) * torch.tensor([191.0, 255.0])
    return model, images, pose, torch.ones(BATCH, 17, dtype=torch.bool)


def _forward(model, images, pose, valid, dtype):
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        return model(images, pose, valid)


@pytest.mark.benchmark(group="refiner r18 256x192 b8")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_bench_refiner_forward(benchmark, refiner_inputs, dtype):
    out = benchmark(_forward, *refiner_inputs, dtype)
    assert out["coords"].shape == (BATCH, 17, 2) and torch.isfinite(out["coords"]).all()


@pytest.mark.benchmark(group="refiner r18 256x192 b8")
def test_bench_refiner_train_step(benchmark, refiner_inputs):
    model, images, pose, valid = refiner_inputs
    train = build_refiner(dict(backbone="resnet18", input_size=(192, 256)), seed=0).train()
    train = train.to(memory_format=torch.channels_last)

    def step():
        out = train(images, pose, valid)
        loss = train.loss(out, pose, valid)["loss"]
        loss.backward()
        return loss

    assert torch.isfinite(benchmark(step))
