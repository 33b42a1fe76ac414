"""Speed of ``evaluate`` (pycocotools against hotcoco) and of a full ``diagnose`` on ~5,000 detections.

The ground truth is coco-mini val tiled five times under new ids (480 images, 1,100 annotations); the results are
``varied_results`` over it (~5,000 detections, continuous scores, every keypoint predicted, so the reference is
stock pycocotools). Run ``make bench-throughput`` for timings: group ``evaluate-5k`` puts the two backends side by
side, group ``diagnose-5k`` puts the whole ``posefix-bench diagnose`` command (a fresh process: start-up, loading,
taxonomy, breakdowns, seven AP evaluations, plots) beside one pycocotools evaluation of the same file. Each
benchmark records the CPU's vector extensions and the machine's load average in its ``extra_info``.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from posefix_bench.evaluation.coco_eval import evaluate
from posefix_bench.evaluation.diagnosis import diagnose
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import load_results, save_results

from evaluation.parity_helpers import tiled_gt, varied_results

COPIES = 5


def _machine() -> dict:
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        pass
    return {"cpu_ext": ",".join(x for x in ("avx512f", "avx512_bf16", "amx_bf16", "avx2") if x in flags) or "none",
            "cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2)}


@pytest.fixture(scope="module")
def big(val_gt_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench5k")
    gt_path = tiled_gt(val_gt_path, COPIES, folder / "person_keypoints_tiled.json")
    gt = CocoDataset(gt_path)
    res_path = folder / "results.json"
    save_results(res_path, varied_results(gt, seed=0, per_person=5.0, absent=0.0, ties=False))
    results = load_results(res_path, gt)
    reference = evaluate(gt, results, evaluator="pycocotools")
    return gt, gt_path, res_path, results, reference


def _check_size(big):
    gt, _, _, results, _ = big
    assert len(gt.image_ids) == 96 * COPIES and 4500 <= len(results) <= 5500


@pytest.mark.benchmark(group="evaluate-5k")
def test_evaluate_5k_pycocotools(benchmark, big):
    _check_size(big)
    gt, _, _, results, reference = big
    benchmark.extra_info.update(_machine())
    rec = benchmark(evaluate, gt, results, evaluator="pycocotools")
    assert rec["metrics"] == reference["metrics"] and rec["evaluator"] == "pycocotools"


@pytest.mark.benchmark(group="evaluate-5k")
def test_evaluate_5k_hotcoco(benchmark, big):
    gt, _, _, results, reference = big
    benchmark.extra_info.update(_machine())
    rec = benchmark(evaluate, gt, results, evaluator="hotcoco")
    assert rec["metrics"] == reference["metrics"] and rec["evaluator"] == "hotcoco"
    assert 0.1 < rec["metrics"]["AP"] < 0.9


@pytest.mark.benchmark(group="diagnose-5k")
def test_diagnose_5k_yardstick_one_pycocotools_evaluation(benchmark, big):
    gt, _, _, results, reference = big
    benchmark.extra_info.update(_machine())
    assert benchmark(evaluate, gt, results, evaluator="pycocotools")["metrics"] == reference["metrics"]


@pytest.mark.benchmark(group="diagnose-5k")
def test_diagnose_5k_in_process(benchmark, big):
    """Taxonomy, breakdowns and the seven AP evaluations, on a loaded ground truth and results list."""
    gt, _, _, results, reference = big
    benchmark.extra_info.update(_machine())
    diag = benchmark(diagnose, gt, results)
    assert diag["ap"] == reference["metrics"] and diag["evaluator"] == "hotcoco"
    assert diag["ap_impact"]["all"]["AP"] > diag["ap"]["AP"]


@pytest.mark.parametrize("plots", [True, False], ids=["with-plots", "no-plots"])
@pytest.mark.benchmark(group="diagnose-5k")
def test_diagnose_5k_command(benchmark, big, tmp_path, plots):
    """``posefix-bench diagnose`` as a user runs it: a new process, wall time from start to exit."""
    _, gt_path, res_path, _, reference = big
    out = tmp_path / "diag"
    cmd = [sys.executable, "-m", "posefix_bench.cli", "diagnose", "--gt", str(gt_path), "--results", str(res_path),
           "--out", str(out)] + ([] if plots else ["--no-plots"])
    benchmark.extra_info.update(_machine())
    done = benchmark.pedantic(subprocess.run, args=(cmd,), kwargs={"capture_output": True, "text": True},
                              rounds=3, iterations=1, warmup_rounds=0)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "diagnosis.json").read_text())["ap"] == reference["metrics"]
    assert len(list(out.glob("*.svg"))) == (4 if plots else 0)


# -- the paired bootstrap at the quick profile's validation size -------------------------------------------------
BOOT_COPIES = 10  # coco-mini val x 10: 960 images, 910 persons (quick: 300 images, ~900 persons; the draws' cost
# grows with the detections, the images cost little)


@pytest.fixture(scope="module")
def quick_size(val_gt_path, tmp_path_factory):
    """Two results lists over coco-mini val tiled ten times (the input and a 'refined' one with other noise)."""
    from posefix_bench.evaluation.bootstrap import match_table

    folder = tmp_path_factory.mktemp("boot")
    gt = CocoDataset(tiled_gt(val_gt_path, BOOT_COPIES, folder / "person_keypoints_tiled.json"))
    a = varied_results(gt, seed=0, per_person=1.5, absent=0.0, ties=False)
    b = varied_results(gt, seed=1, per_person=1.5, absent=0.0, ties=False)
    return gt, a, match_table(gt, a), match_table(gt, b)


@pytest.mark.benchmark(group="bootstrap-quick-size")
def test_paired_bootstrap_1000_draws(benchmark, quick_size):
    """One pair's 1,000 paired draws from its two match tables (target: <= 2 s on 2 cores)."""
    from posefix_bench.evaluation.bootstrap import paired_interval

    gt, _, a, b = quick_size
    assert 850 <= a.npig.sum() <= 1000
    benchmark.extra_info.update(_machine(), detections=int(a.scores.size + b.scores.size))
    rec = benchmark.pedantic(paired_interval, args=(a, b), kwargs={"resamples": 1000, "seed": 0}, rounds=3,
                             iterations=1)
    assert rec["resamples"] == 1000 and rec["ci95"][0] <= rec["delta"] <= rec["ci95"][1]


@pytest.mark.benchmark(group="bootstrap-quick-size")
def test_match_table_one_side(benchmark, quick_size):
    """What the bootstrap adds before its draws: pycocotools' per-image matching of one results list."""
    from posefix_bench.evaluation.bootstrap import match_table

    gt, results, a, _ = quick_size
    benchmark.extra_info.update(_machine())
    table = benchmark.pedantic(match_table, args=(gt, results), rounds=3, iterations=1)
    assert np.array_equal(table.matched, a.matched)
