"""The throughput harness: timing protocol, rendering comparison, FLOP counting, the command's report and errors.

No timing assertions: the tests check what is measured and how it is reported, never how fast it was.
"""

import contextlib
import io
import json

import pytest

from posefix_bench.cli import main
from posefix_bench.engine.precision import native_support
from posefix_bench.engine.throughput import refiner_gflop, render_benchmark, time_call
from posefix_bench.models import RefinerConfig


def test_time_call_warms_up_repeats_and_takes_the_median():
    calls = []
    t = time_call(lambda: calls.append("f"), "cpu", warmup=2, repeats=3, min_time_s=0.0,
                  before=lambda: calls.append("b"))
    assert calls == ["f", "f", "b", "f", "b", "f", "b", "f"] and t["repeats"] == 3
    assert t["min_ms"] <= t["median_ms"] <= t["max_ms"] and len(t["times_ms"]) == 3


def test_render_benchmark_compares_the_same_output():
    r = render_benchmark("cpu", batch=2, num_keypoints=17, size=(48, 64), repeats=1)
    assert r["max_abs_diff"] < 1e-5 and r["sigma"] == 1.75 and r["input_size"] == [48, 64]
    assert r["render_speedup"] == pytest.approx(r["render_loop_ms"] / r["render_vectorized_ms"])
    assert r["output_megabytes"] == pytest.approx(2 * 17 * 64 * 48 * 4 / 2**20)


def test_flop_count_matches_the_published_cost():
    """ResNet-50 refiner at 256x192: 12.2 GFLOP per sample (environment notes, torch.utils.flop_counter)."""
    assert refiner_gflop(RefinerConfig(backbone="resnet50", input_size=(192, 256))) == pytest.approx(12.2, rel=0.01)


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["throughput", *argv])
    return code, out.getvalue(), err.getvalue()


TINY = ["--device", "cpu", "--backbones", "resnet18", "--sizes", "64x48", "--batches", "1,4", "--render-size", "64x48",
        "--render-batch", "4", "--reference-backbone", "resnet18", "--repeats", "1", "--warmup", "1", "--min-time", "0",
        "--peak-sizes", "256,512"]


def test_command_writes_device_and_precision_named_reports(tmp_path, val_gt_path):
    code, out, _ = _cli(*TINY, "--precisions", "fp32,bf16", "--gt", str(val_gt_path), "--estimator", "synthetic",
                        "--e2e-frames", "2", "--e2e-backbone", "resnet18", "--e2e-size", "64x48",
                        "--json", str(tmp_path / "all.json"), "--out", str(tmp_path / "reports"))
    assert code == 0, out
    report = json.loads((tmp_path / "all.json").read_text())
    for key in ("render_vectorized_ms", "render_loop_ms", "render_speedup", "render_share_of_refiner_step",
                "device", "torch", "cuda"):
        assert key in report, key
    sps = report["refiner_samples_per_s"]["resnet18"]["64x48"]
    assert set(sps) == {"fp32/channels_last/bn_folded", "bf16/channels_last/bn_folded"}
    assert set(sps["fp32/channels_last/bn_folded"]) == {"1", "4"}
    assert report["gflop_per_sample"]["resnet18"]["64x48"] == pytest.approx(report["refiner"][0]["gflop_per_sample"])
    row = report["refiner"][0]
    assert row["peak_paired"] and row["repeats"] == 1  # one timed call, paired with one peak sample
    assert row["roofline_fraction"] == pytest.approx(row["achieved_gflops"] / row["peak_gflops"])
    assert row["peak_gflops"] >= report["matmul_peak"]["fp32"]["peak_gflops"]  # the best rate seen, never less
    assert row["achieved_gflops"] == pytest.approx(row["gflop_per_sample"] * row["samples_per_s"])
    assert report["render_share_basis"]["batch"] == 4 and report["render"]["max_abs_diff"] < 1e-5
    assert report["e2e"]["frames"] == 2 and report["e2e"]["refiner_trained"] is False
    assert report["data_prep"][0]["decode_ms_per_sample"] > 0
    slug = report["environment"]["device_slug"]
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert names == [f"{slug}-bf16.json", f"{slug}-fp32.json"] and slug.startswith("cpu-")
    bf16 = json.loads((tmp_path / "reports" / f"{slug}-bf16.json").read_text())
    assert {r["precision"] for r in bf16["refiner"]} == {"bf16"}
    assert "untrained refiner weights" in out and "samples/s" in out
    # explicit precisions are timed as asked; a row in one this CPU only emulates says so
    emulated = native_support("cpu")["native"]["bf16"] is False
    assert [r["emulated"] for r in bf16["refiner"]] == [emulated] * 2 and report["emulated"] == []
    assert ("bf16 (emulated)" in out) is emulated and report["precision_probe"] is None
    assert report["e2e"]["refiner_precision"] == "fp32"  # the first explicit precision


def test_auto_times_bf16_only_where_it_is_native(tmp_path):
    """The default precision 'auto': fp32 always; bf16 timed only where the probe found it native, otherwise listed
    with its measured slow-down and no samples/s figure (issue 21)."""
    code, out, _ = _cli(*TINY, "--batches", "2", "--no-e2e", "--json", str(tmp_path / "all.json"),
                        "--out", str(tmp_path / "reports"))
    assert code == 0, out
    report = json.loads((tmp_path / "all.json").read_text())
    probe = report["precision_probe"]
    assert probe["decided_by"] == "probe" and probe["kind"] == "infer" and probe["probe"]["bn_folded"]
    native = probe["status"]["bf16"] == "native"
    assert report["precisions"] == (["fp32", "bf16"] if native else ["fp32"])
    assert {r["precision"] for r in report["refiner"]} == set(report["precisions"])
    assert all(r["emulated"] is False for r in report["refiner"])
    assert set(report["matmul_peak"]) == set(report["precisions"])
    if not native:
        (entry,) = report["emulated"]
        assert entry["precision"] == "bf16" and entry["ratio_vs_fp32"] == probe["ratio"]["bf16"]
        assert entry["note"] in out and entry["note"].startswith(f"bf16 not timed: {probe['notes']['bf16']} (")
        part = json.loads((tmp_path / "reports" / f"{report['environment']['device_slug']}-bf16.json").read_text())
        assert part["refiner"] == [] and part["emulated"] == [entry] and part["matmul_peak"] == {}
    assert probe["sentence"] in out


def test_bench_fps_record_and_machine_peaks():
    """What the bench calls: FPS rows only in measured-native precisions (emulated ones as notes) and the peaks."""
    from posefix_bench.engine.fps import machine_peaks, refiner_fps

    cfg = dict(backbone="resnet18", head="skip", input_size=(48, 64), deconv_channels=32)
    fps = refiner_fps(cfg, 17, "cpu", batches=(1,), precisions="auto", threads=1)
    probe = fps["precision_probe"]
    native = probe["status"]["bf16"] == "native"
    assert [r["precision"] for r in fps["rows"]] == (["fp32", "bf16"] if native else ["fp32"])
    assert all(r["samples_per_s"] > 0 and r["batch"] == 1 for r in fps["rows"])
    assert [e["precision"] for e in fps["emulated"]] == ([] if native else ["bf16"])
    assert fps["notes"] == [e["note"] for e in fps["emulated"]]
    explicit = refiner_fps(cfg, 17, "cpu", batches=(1,), precisions=["fp32"], threads=1)
    assert explicit["precision_probe"] is None and [r["precision"] for r in explicit["rows"]] == ["fp32"]

    peaks = machine_peaks("cpu", threads=1, sizes=(128, 256))
    assert peaks["threads"] == 1 and set(peaks["peaks"]) == {"fp32", "bf16"}
    assert peaks["peaks"]["fp32"]["peak_gflops"] > 0 and peaks["peaks"]["fp32"]["emulated"] is False
    bf16 = peaks["peaks"]["bf16"]
    if peaks["native"]["bf16"] is False:
        assert bf16["peak_gflops"] is None and bf16["emulated_gflops"] > 0 and "bf16 emulated" in peaks["sentence"]
    else:
        assert bf16["peak_gflops"] > 0
    assert peaks["sentence"].startswith("matmul peak: fp32 ")


@pytest.mark.parametrize("extra,message", [
    (["--sizes", "50x64"], "multiple of the output stride"),
    (["--sizes", "64by48"], "expected H x W"),
    (["--precisions", "fp16"], "fp16 is measured on CUDA only"),
    (["--backbones", "vgg"], "unknown refiner backbone"),
    (["--estimator", "nonesuch"], "unknown source 'nonesuch'"),
])  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, extra, message):
    code, out, err = _cli(*TINY, *extra, "--json", str(tmp_path / "r.json"), "--out", str(tmp_path / "d"))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []
