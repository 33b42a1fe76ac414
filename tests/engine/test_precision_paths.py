"""Every precision-dependent path under a simulated CPU with native bf16 (issue 25), and the ``POSEFIX_PRECISION``
override on each of them.

The machines differ: on a CPU with ``avx512_bf16`` the probe picks bf16, on one without it fp32, and a test that
relied on either would pass on one kind of machine and fail on the other. Here the hardware flags and the probe's
timings are mocked (``native_bf16``: bf16 native and measured 2.5x faster than fp32), so the decision is bf16 on any
machine, and no bf16 kernel runs (on an AVX2 CPU that emulates bf16 it would be 33x slower). Each path is checked for
what it does with the decision: the trainer's autocast dtype and record, the refiner's record, the precision a bench
training step is keyed by, what the FPS step times, and the override that turns every ``auto`` into fp32.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from posefix_bench.engine import precision as P
from posefix_bench.errors import PosefixError

REPO = Path(__file__).resolve().parents[2]
MINI = REPO / "ablations" / "coco-mini" / "r18_64x48_paper_lb-off_skip_train-cocomini.py"
TINY = dict(backbone="resnet18", head="skip", input_size=(48, 64), deconv_channels=32)
TINY_TRAIN = {"train.max_iters": 2, "train.batch_size": 4, "train.threads": 1, "train.num_workers": 0,
              "data.max_samples": 8, "model.deconv_channels": 32}


@pytest.fixture
def native_bf16(monkeypatch):
    """A CPU whose flags say native bf16 and on which the probe measures bf16 2.5x faster than fp32 (mocked)."""
    monkeypatch.delenv(P.PRECISION_ENV, raising=False)
    evidence = {"cpu_capability": "AVX512", "machine": "x86_64", "cpuinfo_flags": ["avx512_bf16"],
                "torch_cpu_caps": {"avx512_bf16": True}}
    monkeypatch.setattr(P, "native_support", lambda device="cpu": {
        "native": {"fp32": True, "bf16": True, "fp16": False}, "evidence": dict(evidence)})
    calls = []

    def measure(step, precisions, device="cpu", repeats=3, budget_s=P.BUDGET_S, clock=None):
        calls.append(tuple(precisions))
        return {p: {"ms": {"fp32": 10.0, "bf16": 4.0}[p], "first_ms": 12.0, "repeats": 3, "warmup_only": False}
                for p in precisions}

    monkeypatch.setattr(P, "measure", measure)
    P.clear_probe_cache()
    yield calls
    P.clear_probe_cache()


def test_the_simulated_machine_decides_bf16_and_the_override_decides_without_a_probe(native_bf16, monkeypatch):
    rec = P.resolve_precision("auto", "cpu", "train", TINY, batch=2)
    assert (rec["precision"], rec["decided_by"], rec["status"]["bf16"]) == ("bf16", "probe", "native")
    assert rec["sentence"] == "precision: bf16 (bf16 measured 2.5x faster than fp32 on this CPU, native)"
    assert native_bf16 == [("fp32", "bf16")]

    P.clear_probe_cache()
    monkeypatch.setenv(P.PRECISION_ENV, "fp32")
    rec = P.resolve_precision("auto", "cpu", "infer", TINY)
    assert (rec["precision"], rec["requested"], rec["decided_by"], rec["probe"]) == ("fp32", "auto",
                                                                                      "POSEFIX_PRECISION", None)
    assert rec["sentence"] == "precision: fp32 (set by POSEFIX_PRECISION=fp32)"
    assert native_bf16 == [("fp32", "bf16")]  # no second probe
    assert P.resolve_precision("bf16", "cpu")["decided_by"] == "explicit"  # an explicit setting still wins
    assert P.effective("auto") == "fp32" and P.effective("bf16") == "bf16"
    for value, expected in (("auto", "auto"), ("", "auto"), (" bf16 ", "bf16")):
        monkeypatch.setenv(P.PRECISION_ENV, value)
        assert P.effective("auto") == expected
    monkeypatch.setenv(P.PRECISION_ENV, "half")
    with pytest.raises(PosefixError, match=r"^environment variable POSEFIX_PRECISION must be one of auto, fp32, "
                                           r"bf16, fp16, got 'half'$"):
        P.resolve_precision("auto", "cpu", "train", TINY)
    monkeypatch.setenv(P.PRECISION_ENV, "fp16")
    with pytest.raises(PosefixError, match="POSEFIX_PRECISION='fp16' needs CUDA"):
        P.effective("auto", "cpu")


def test_trainer_autocasts_in_the_decided_precision_and_records_it(native_bf16, monkeypatch, tmp_path):
    import torch

    from posefix_bench.engine.train import Trainer, load_config, resolve_train_precision

    cfg = load_config(MINI, TINY_TRAIN)
    trainer = Trainer(cfg, tmp_path / "auto")
    assert trainer.precision["precision"] == "bf16" and trainer.amp_dtype == torch.bfloat16
    assert trainer.precision["decided_by"] == "probe"
    # the bench keys a training by the precision it resolves (bench.steps.train_config puts it into train.amp)
    assert resolve_train_precision(cfg)["precision"] == "bf16"

    monkeypatch.setenv(P.PRECISION_ENV, "fp32")
    trainer = Trainer(load_config(MINI, TINY_TRAIN), tmp_path / "env")
    assert trainer.precision["precision"] == "fp32" and trainer.amp_dtype is None
    assert trainer.precision["decided_by"] == "POSEFIX_PRECISION"
    assert resolve_train_precision(cfg)["precision"] == "fp32"  # the same key as on a machine without bf16
    explicit = Trainer(load_config(MINI, {**TINY_TRAIN, "train.amp": "bf16"}), tmp_path / "explicit")
    assert explicit.amp_dtype == torch.bfloat16 and explicit.precision["decided_by"] == "explicit"


def test_refiner_records_the_decided_precision(native_bf16, monkeypatch):
    from posefix_bench.engine.refine import RefinePostProcessor
    from posefix_bench.models import build_refiner

    net = build_refiner(dict(TINY, num_keypoints=17), seed=0)
    post = RefinePostProcessor(net, batch_size=4, gate=False)
    assert post.precision == "bf16" and post.precision_record["kind"] == "infer"
    monkeypatch.setenv(P.PRECISION_ENV, "fp32")
    post = RefinePostProcessor(net, batch_size=4, gate=False)
    assert post.precision == "fp32" and post.precision_record["decided_by"] == "POSEFIX_PRECISION"


def test_fps_times_the_native_precision_and_only_fp32_under_the_override(native_bf16, monkeypatch):
    from posefix_bench.engine import fps

    timed = []
    monkeypatch.setattr(fps, "matmul_peak", lambda device, precision: {"best_size": 64, "peak_gflops": 1.0})
    monkeypatch.setattr(fps, "refiner_row", lambda model, b, precision, *a: timed.append((b, precision)) or
                        {"batch": b, "precision": precision})
    rec = fps.refiner_fps(TINY, 17, batches=(1,), threads=1)
    assert timed == [(1, "fp32"), (1, "bf16")] and rec["precision_probe"]["precision"] == "bf16"
    timed.clear()
    monkeypatch.setenv(P.PRECISION_ENV, "fp32")
    rec = fps.refiner_fps(TINY, 17, batches=(1,), threads=1)
    assert timed == [(1, "fp32")] and rec["precision_probe"] is None and rec["emulated"] == []


def test_environment_records_the_override(monkeypatch):
    from posefix_bench.engine.environment import environment

    monkeypatch.setenv(P.PRECISION_ENV, "fp32")
    assert environment()["precision_override"] == "fp32"
    monkeypatch.delenv(P.PRECISION_ENV)
    assert environment()["precision_override"] is None
