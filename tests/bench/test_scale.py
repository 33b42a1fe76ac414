"""The scale harness at tiny sizes: every stage in its own process, the scale.json schema, the plot, the command."""

import json

import pytest

from posefix_bench.bench.scale import STAGES, linearity, subset_annotations
from posefix_bench.cli import main
from posefix_bench.reporting.scale_plots import REPORTS_STAGE


def test_subset_keeps_the_first_images_and_their_persons():
    data = {"images": [{"id": i} for i in (5, 1, 3)], "annotations": [{"id": 10 * i, "image_id": i} for i in (1, 3, 5, 3)],
            "categories": []}
    sub = subset_annotations(data, 2)
    assert [i["id"] for i in sub["images"]] == [1, 3]
    assert [a["image_id"] for a in sub["annotations"]] == [1, 3, 3]


def test_linearity_compares_cost_per_person_of_the_largest_and_smallest_size():
    sizes = [{"persons": 100, "stages": {"a": {"seconds": 1.0}, "b": {"seconds": 1.0, "cpu_seconds": 1.0}}},
             {"persons": 1000, "stages": {"a": {"seconds": 12.0}, "b": {"seconds": 25.0, "cpu_seconds": 14.0}}}]
    lin = linearity(sizes)
    assert lin["a"]["ratio"] == pytest.approx(1.2) and lin["a"]["ok"]  # wall time where no CPU time is recorded
    assert lin["a"]["ms_per_person_smallest"] == pytest.approx(10.0)
    assert lin["b"]["ratio"] == pytest.approx(2.5) and lin["b"]["cpu_ratio"] == pytest.approx(1.4)
    assert not lin["b"]["ok"]
    sizes[1]["stages"]["b"]["cpu_seconds"] = 9.0
    assert linearity(sizes)["b"]["ok"]  # CPU time decides, whatever the wall time did under load


@pytest.mark.slow
def test_scale_command_at_tiny_sizes(tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["scale", "--out", str(out), "--sizes", "3,8", "--val", "8", "--cache", str(tmp_path / "cache"),
               "--work", str(tmp_path / "work"), "--workers", "1", "--peak-sizes", "256",
               "--skip", "load-gt,predict-mmpose"])  # each stage is a process importing torch (mmpose: ~30 s more)
    rec = json.loads((out / "scale.json").read_text())
    assert rec["format"] == "posefix-bench/scale/v1"
    assert [s["images"] for s in rec["sizes"]] == [3, 8]
    assert 0 < rec["sizes"][0]["persons"] < rec["sizes"][1]["persons"]
    for size in rec["sizes"]:
        assert list(size["stages"]) == [s for s in [*STAGES, *REPORTS_STAGE] if s not in ("load-gt", "predict-mmpose")]
        for stage in size["stages"].values():
            assert stage["seconds"] > 0 and stage["cpu_seconds"] > 0
            assert stage["peak_rss_mb"] >= stage["rss_start_mb"] > 0
    full = rec["sizes"][-1]["stages"]
    assert full["predict-synthetic"]["info"]["poses"] == rec["sizes"][-1]["persons"]
    assert full["refine"]["info"]["untrained"]
    assert full["reports"]["info"]["plots"] and (tmp_path / "work" / "images-8" / "plots" / "error_types.svg").is_file()
    assert rec["full_size"]["persons"] == rec["sizes"][-1]["persons"]
    assert rec["full_size"]["peak_rss_mb"] == max(s["peak_rss_mb"] for s in full.values())
    assert rec["machine"]["cpu_capability"] and rec["machine"]["matmul_peak_fp32_gflops"] > 0
    assert set(rec["linearity"]) == set(full)
    assert rc == (0 if all(v["ok"] for v in rec["linearity"].values()) else 1)
    assert (out / "scale.png").stat().st_size > 0
    assert "peak memory at full size" in capsys.readouterr().out


def test_bad_sizes_are_one_line_errors(tmp_path, capsys):
    assert main(["scale", "--sizes", "8,3", "--out", str(tmp_path / "o"), "--cache", str(tmp_path)]) == 2
    assert "distinct image counts in ascending order" in capsys.readouterr().err
    assert main(["scale", "--skip", "predict-foo", "--out", str(tmp_path / "o"), "--cache", str(tmp_path)]) == 2
    assert "unknown stage" in capsys.readouterr().err
