"""The bench runner end to end on a tiny profile: generated data, a synthetic source, two 4-iteration refiners
(one of them on the two-process pool), the default one's gate calibrated on the 2 held-out training images,
refinement (the default gated beside ungated), evaluation, diagnosis, FPS, reports; then the cache."""

import json
import math
from pathlib import Path

import pytest

from posefix_bench.bench.runner import RunSpec, run_bench
from posefix_bench.cli import main
from posefix_bench.errors import PosefixError
from posefix_bench.structures.coco import CocoDataset, coco_split_paths

REPO = Path(__file__).resolve().parents[2]


def _profile(folder: Path, mmpose: bool = False, occluded: bool = False) -> Path:
    folder.mkdir()
    lower = ("    occluded_split=dict(images=4, seed=1),\n    comparisons=[dict(name='Head variants', tag='head', "
             "question='?'), dict(name='Lower body', tag='head', subset='occluded', question='?')])\n")
    base = REPO / "ablations" / "_base_" / "quick.py"
    extra = ("dict(name='sb-untrained', type='mmpose', card='sandbox-simplebaseline-r18-64x48', untrained=True)"
             if mmpose else "")
    (folder / "_profile_.py").write_text(
        "profile = dict(name='tiny', description='test', data=dict(kind='sandbox', params=dict(seed=3, train=10, val=6)),\n"
        f"    sources=[dict(name='synthetic-paper', type='synthetic', mix='paper', seed=5), {extra}],\n"
        "    seeds=[0], refine=dict(batch_size=16), fps=dict(batches=[2], precisions=['fp32'], threads=1),\n"
        "    default_ablation='r18_64x48_paper_lb-off_prior+skip', bootstrap=dict(resamples=200, seed=0),\n"
        + (lower if occluded else "    comparisons=[dict(name='Head variants', tag='head', question='?')])\n"))
    for head in ("prior+skip", "posefix"):
        (folder / f"r18_64x48_paper_lb-off_{head}.py").write_text(
            f"_base_ = ['{base}']\nmodel = dict(head='{head}')\n"
            "data = dict(sandbox=dict(seed=3, train=10, val=6), holdout=2)\n"
            "train = dict(max_iters=4, batch_size=8, checkpoint_interval=2, log_interval=2)\n"
            "bench = dict(tags=['head'])\n")
    return folder


@pytest.mark.slow
def test_bench_end_to_end_and_cache(tmp_path):
    profile = _profile(tmp_path / "tiny", occluded=True)
    cache, out = tmp_path / "cache", tmp_path / "reports"
    spec = RunSpec(profile=str(profile), out_dir=str(out), cache_root=str(cache), jobs=2, threads=1)
    record = run_bench(spec)
    assert record.profile == "tiny" and record.data.kind == "sandbox"
    assert [a.name for a in record.ablations] == ["r18_64x48_paper_lb-off_posefix", "r18_64x48_paper_lb-off_prior+skip"]
    for a in record.ablations:
        (run,) = a.runs
        assert run.source == "synthetic-paper" and run.seed == 0
        assert 0.0 <= run.ap_before["AP"] <= 1.0 and 0.0 <= run.ap_after["AP"] <= 1.0
        assert sum(run.counts_before[c] for c in ("good", "jitter", "inversion", "swap", "miss")) > 0
        assert run.train["iterations"] == 4 and Path(run.checkpoint).is_file()
        assert a.fps["rows"] and a.fps["rows"][0]["samples_per_s"] > 0
        assert a.factors == {"backbone": "resnet18", "input": "64x48", "head": a.name.rsplit("_", 1)[1],
                             "mix": "paper", "lower body": "off", "iterations": 4}
        assert a.metrics["sources"]["synthetic-paper"]["ap_before"] == run.ap_before["AP"]
    src = record.sources[0]
    assert src.baseline["ap_impact"] is not None and src.poses > 0
    assert record.evaluator in ("pycocotools", "hotcoco") and record.data_warnings == []
    finals = {p: p.stat().st_mtime_ns for p in cache.glob("train/*/final.pth")}
    assert len(finals) == 2
    # the paired bootstrap: an interval beside every delta, and the two heads compared on the same draws
    for a in record.ablations:
        m = a.metrics["sources"]["synthetic-paper"]
        (run,) = a.runs
        assert run.bootstrap["resamples"] == 200 and Path(run.bootstrap["samples"]).is_file()
        assert m["ci95"] == m["ci95_per_seed"]["0"] == run.bootstrap["all"]["ci95"] and m["ci95"][0] <= m["ci95"][1]
        assert run.bootstrap["all"]["other"]["value"] == run.ap_after["AP"]
        assert a.metrics["overall_ci95"]["all"] == pytest.approx(m["ci95"])  # one source: its own interval
        assert all(len(b["counts_ci95"]["net"]) == 2 for b in m["per_confidence"].values() if b["counts_ci95"])
        assert a.metrics["bootstrap"]["resamples"] == 200 and a.metrics["bootstrap"]["seconds"] > 0
    heads = {a.name: a for a in record.ablations}
    vs = heads["r18_64x48_paper_lb-off_prior+skip"].metrics["paired"]["r18_64x48_paper_lb-off_posefix"]["all"]
    back = heads["r18_64x48_paper_lb-off_posefix"].metrics["paired"]["r18_64x48_paper_lb-off_prior+skip"]["all"]
    diff = (heads["r18_64x48_paper_lb-off_prior+skip"].runs[0].ap_after["AP"]
            - heads["r18_64x48_paper_lb-off_posefix"].runs[0].ap_after["AP"])
    assert vs["sources"]["synthetic-paper"]["delta"] == pytest.approx(diff) == vs["overall"]["delta"]
    assert back["overall"]["ci95"] == pytest.approx([-vs["overall"]["ci95"][1], -vs["overall"]["ci95"][0]])
    assert record.timings["bootstrap"] > 0
    # the dedicated occluded split: every person behind an occluder; the compared heads' occluded subset comes from it
    split = record.data.occluded_split
    assert split["images"] == 4 and split["occluded_persons"] >= 4 and split["sources"] == ["synthetic-paper"]
    for a in record.ablations:
        (run,) = a.runs
        occ = a.metrics["sources"]["synthetic-paper"]["occluded"]
        assert run.occluded["split"] == "dedicated" and occ["persons"] == split["occluded_persons"]
        assert occ["split"] == "dedicated" and occ["images"] == 4 and occ["ci95"] == run.bootstrap["occluded"]["ci95"]
        assert occ["ap_before"] == run.bootstrap["occluded"]["base"]["value"] and occ["per_confidence"]
    lower = heads["r18_64x48_paper_lb-off_prior+skip"].metrics["paired"]["r18_64x48_paper_lb-off_posefix"]
    vs_occ = lower["occluded"]["sources"]["synthetic-paper"]
    assert vs_occ["delta"] == pytest.approx(heads["r18_64x48_paper_lb-off_prior+skip"].runs[0].occluded["ap_after"]
                                            - heads["r18_64x48_paper_lb-off_posefix"].runs[0].occluded["ap_after"])
    assert len(vs_occ["ci95"]) == 2 and lower["occluded_per_confidence"]["synthetic-paper"]

    # the default refiner: gate calibrated on the training hold-out, gated beside ungated from one pass
    default = record.ablation("r18_64x48_paper_lb-off_prior+skip")
    assert default.gate.state == "calibrated", default.gate.reason
    cal = default.gate.calibrations["0"]
    assert Path(cal["checkpoint"]).is_file() and "hold-out" in cal["data"]["selection"]
    assert record.ablation("r18_64x48_paper_lb-off_posefix").gate is None
    (run,) = default.runs
    assert run.gate is not None and Path(run.gate.gated).is_file()
    gate = default.metrics["gate"]
    assert gate["state"] == "calibrated"
    g = gate["sources"]["synthetic-paper"]
    assert math.isfinite(g["delta_ungated"]["mean"]) and math.isfinite(g["delta_gated"]["mean"])
    assert g["delta_ungated"]["mean"] == pytest.approx(run.ap_after["AP"] - run.ap_before["AP"])
    assert 0.0 <= g["accepted_share"]["mean"] <= 1.0
    assert g["ci95_ungated_per_seed"]["0"] == run.bootstrap["all"]["ci95"] and len(g["ci95_gated_per_seed"]["0"]) == 2
    assert set(g["per_keypoint"]) and all(0.0 <= v["mean"] <= 1.0 for v in g["per_keypoint"].values() if v)
    done = {p: p.stat().st_mtime_ns for p in cache.glob("*/*/DONE")}
    assert any(p.parent.parent.name == "calibrate" for p in done) and any(p.parent.parent.name == "gate" for p in done)

    # the same profile again: every step comes from the cache (nothing retrained, same numbers)
    again = run_bench(RunSpec(profile=str(profile), out_dir=str(out), cache_root=str(cache), jobs=1, threads=1))
    assert {p: p.stat().st_mtime_ns for p in cache.glob("train/*/final.pth")} == finals
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*/*/DONE")} == done  # no step recomputed, none added
    strip = lambda r: [[{k: v for k, v in vars(run).items() if k != "train"} for run in a.runs] for a in r.ablations]
    assert strip(again) == strip(record)
    assert again.ablation(default.name).metrics["gate"] == gate


@pytest.mark.slow
def test_bench_command_writes_reports(tmp_path, capsys):
    profile = _profile(tmp_path / "tiny", mmpose=True)
    out = tmp_path / "reports"
    args = ["bench", "--profile", str(profile), "--out", str(out), "--cache", str(tmp_path / "cache"), "--jobs", "1",
            "--only", "*prior+skip", "--work-dirs", str(tmp_path / "work_dirs")]
    assert main(args) == 0
    bench = json.loads((out / "tiny" / "bench.json").read_text())
    assert [a["name"] for a in bench["ablations"]] == ["r18_64x48_paper_lb-off_prior+skip"]
    assert (out / "tiny" / "index.md").is_file() and (out / "tiny" / "contact_sheet.png").is_file()
    # free baselines of the mmpose source (a heatmap head: flip test and DARK), written like an ablation
    assert [(b["source"], b["method"]) for b in bench["baselines"]] == [("sb-untrained", "flip-test"),
                                                                        ("sb-untrained", "dark")]
    for written in (out / "tiny").rglob("*.*"):  # committed reports name no machine's folders
        if written.suffix in (".md", ".json") and written.name != "bench.json":
            assert str(tmp_path) not in written.read_text(), f"{written} holds an absolute path"
    for method in ("flip-test", "dark"):
        m = json.loads((out / "tiny" / f"sb-untrained+{method}" / "metrics.json").read_text())
        assert m["factors"]["method"] == method and m["untrained"] is True
        assert m["speed"]["samples_per_s"] > 0 and m["speed"]["plain_samples_per_s"] > 0
        assert -1.0 <= m["sources"]["sb-untrained"]["delta"]["mean"] <= 1.0
    index = (out / "tiny" / "index.md").read_text()
    assert "## Free baselines" in index and "sb-untrained+dark (UNTRAINED)" in index
    assert "## Gain vs input strength" in index and (out / "tiny" / "gain_vs_input.png").is_file()
    assert "## Refinement gate" in index and "| delta AP ungated | delta AP gated |" in index
    metrics = json.loads((out / "tiny" / "r18_64x48_paper_lb-off_prior+skip" / "metrics.json").read_text())
    assert metrics["factors"]["gate"] == "calibrated" and metrics["gate"]["sources"]["synthetic-paper"]
    assert metrics["evaluator"] == bench["evaluator"] and metrics["data_warnings"] == []
    # the default refiner left for users is the calibrated checkpoint (with its gate)
    from posefix_bench.models.checkpoint import load_refiner_and_gate

    assert load_refiner_and_gate(tmp_path / "work_dirs" / "tiny" / "default.pth")[2] is not None
    # --render-only: the same reports again from bench.json, no step run (the cache is not touched)
    capsys.readouterr()
    (out / "tiny" / "index.md").unlink()
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert main(args + ["--render-only"]) == 0
    assert (out / "tiny" / "index.md").read_text() == index and "no step run" in capsys.readouterr().out
    assert stamp == {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    (out / "tiny" / "bench.json").unlink()
    assert main(args + ["--render-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bench.json: no bench record to render" in err


def test_unknown_profile_is_one_line_error(capsys):
    assert main(["bench", "--profile", "no-such-profile"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown bench profile" in err


def test_what_the_default_refiner_is_calibrated_on(tmp_path, coco_mini_root):
    from posefix_bench.bench.profile import Profile
    from posefix_bench.bench.runner import gate_info
    from posefix_bench.bench.steps import BenchSteps

    profile = Profile(name="p", folder=tmp_path, description="", sources=(), ablations=(),
                      data={"kind": "coco-mini", "train_split": "train2017", "val_split": "val2017"})
    steps = BenchSteps(profile, tmp_path / "cache", coco_root=coco_mini_root)
    assert steps.calibration_plan({"holdout": 200}) == ({"data": "holdout"}, None)  # its own hold-out first
    plan, why = steps.calibration_plan({"holdout": 0, "data_root": str(tmp_path / "sandbox"), "train_split": "train"})
    assert why is None and plan["data"] == "split" and plan["split"] == "train2017"  # trained elsewhere: real images
    plan, why = steps.calibration_plan({"holdout": 0, "data_root": str(coco_mini_root), "train_split": "train2017"})
    assert plan is None and "every image of the profile's training split train2017" in why
    # calibrate_on='profile': a refiner with its own hold-out but trained elsewhere is gated on the profile's images
    import dataclasses

    real = BenchSteps(dataclasses.replace(profile, sections={"gate": {"calibrate_on": "profile"}}), tmp_path / "cache",
                      coco_root=coco_mini_root)
    on_real, no_reason = real.calibration_plan({"holdout": 200, "data_root": str(tmp_path / "sandbox"),
                                                "train_split": "train"})
    assert no_reason is None and on_real["data"] == "split" and on_real["split"] == "train2017"
    # gate=dict(sources=[...]): those sources' predictions on the training split join the calibration inputs
    syn = dict(name="syn", type="synthetic", mix="jitter-only", seed=3)
    with_src = BenchSteps(dataclasses.replace(profile, sources=(syn,), sections={"gate": {"sources": ["syn"]}}),
                          tmp_path / "cache", coco_root=coco_mini_root)
    assert with_src.calibration_options()["sources"] == ["syn"]
    rec = with_src.calibration_sources(["syn"])["syn"]
    assert Path(rec["gt"]).name == "person_keypoints_train2017.json" and rec["poses"] > 0
    assert rec["images"] == len(CocoDataset(coco_split_paths(coco_mini_root, "train2017")[0]))
    with pytest.raises(PosefixError, match="no source named 'mediapipe'"):
        with_src.calibration_sources(["mediapipe"])
    # a seed without a calibration turns the gate off for the ablation (no seed stat of a gate on some seeds)
    info = gate_info([], {0: {"state": "calibrated", "checkpoint": "c", "gate": {}}, 1: {"state": "off", "reason": why}})
    assert info.state == "off" and info.reason.startswith("seed 1: the refiner trained on every image")


@pytest.mark.slow
def test_coco_profile_smoke_on_coco_mini(tmp_path, capsys):
    """The at-scale profile's every step at the smallest size on real images before anyone pays for a cluster:
    trainings through torchrun's two CPU processes, model-zoo estimators with random weights (offline), gate,
    free baselines, reports."""
    coco_mini = REPO.parent / "shared" / "data" / "coco-mini"
    assert coco_mini.is_dir(), f"{coco_mini}: the shared coco-mini data is missing"
    out = tmp_path / "reports"
    args = ["bench", "--profile", "coco", "--coco-root", str(coco_mini), "--smoke", "--out", str(out),
            "--cache", str(tmp_path / "cache"), "--only", "r50_256x192_paper_lb-off_posefix", "r18_*"]
    assert main(args) == 0
    bench = json.loads((out / "coco-smoke" / "bench.json").read_text())
    assert bench["environment"]["smoke"] is True
    assert sorted(a["name"] for a in bench["ablations"]) == ["r18_256x192_paper_lb-off_posefix",
                                                             "r50_256x192_paper_lb-off_posefix"]
    for a in bench["ablations"]:
        assert all(r["train"]["world_size"] == 2 and r["train"]["iterations"] == 2 for r in a["runs"])
    zoo = [s for s in bench["sources"] if s["type"] == "mmpose"]
    assert len(zoo) == 4 and all(s["meta"]["trained"] is False for s in zoo)  # no checkpoint offline: UNTRAINED
    assert {b["method"] for b in bench["baselines"]} == {"flip-test", "dark"}
    index = (out / "coco-smoke" / "index.md").read_text()
    assert "UNTRAINED" in index and "## Free baselines" in index


def test_the_time_budget_grows_on_a_slower_machine_only():
    from posefix_bench.bench.runner import time_budget

    budget = dict(minutes=20, reference_gflops=185)
    slow = time_budget(budget, {"peaks": {"fp32": {"peak_gflops": 100.0}}})
    assert slow["allowance_minutes"] == 37.0 and slow["peak_gflops"] == 100.0
    assert time_budget(budget, {"peaks": {"fp32": {"peak_gflops": 370.0}}})["allowance_minutes"] == 20.0
    assert time_budget(budget, {"peaks": {}})["allowance_minutes"] is None
    assert time_budget(None, {"peaks": {"fp32": {"peak_gflops": 100.0}}}) is None


def test_a_source_names_a_rung_of_its_cards_ladder(tmp_path):
    from posefix_bench.bench.profile import Profile
    from posefix_bench.bench.steps import BenchSteps
    from posefix_bench.errors import PosefixError

    profile = Profile(name="p", folder=tmp_path, description="", sources=(), ablations=(), data={"kind": "sandbox"})
    steps = BenchSteps(profile, tmp_path / "cache")
    spec = dict(name="sb", type="mmpose-trained", card="sandbox-simplebaseline-r18-128x96", iteration=700)
    with pytest.raises(PosefixError, match=r"iteration 700 is not a rung of .*ladder \(600, 1200, 1800, 2400\)"):
        steps.estimator(spec)
    assert not (tmp_path / "cache").exists()  # refused before any data or training


def test_learning_curve_on_some_sources_and_profile_checks(tmp_path):
    """``learning_curve.sources``: the curve's final point holds the AP of those sources only (the runs of the
    others are not on the curve); a profile naming a source it lacks fails before any work."""
    from types import SimpleNamespace

    from posefix_bench.bench.profile import load_profile
    from posefix_bench.bench.runner import curve_source_runs, learning_curve

    runs = [SimpleNamespace(seed=0, source=name, train={"iterations": 200}, ap_after={"AP": ap})
            for name, ap in (("a", 0.5), ("b", 0.3))]
    curve = learning_curve(runs, {0: {50: {"a": 0.4}, 100: {"a": 0.45}}})
    assert [p["iterations"] for p in curve] == [50, 100, 200] and curve[-1]["ap"] == {"a": 0.5}
    assert learning_curve(runs, {0: {50: {"a": 0.4, "b": 0.2}}})[-1]["ap"] == {"a": 0.5, "b": 0.3}
    sources = [{"name": "a"}, {"name": "b"}]
    assert curve_source_runs(sources, None) == sources and curve_source_runs(sources, ["b"]) == [{"name": "b"}]

    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "r18.py").write_text("model = dict(backbone='resnet18')\n")
    for section in ("learning_curve", "gate"):
        (folder / "_profile_.py").write_text(
            "profile = dict(name='p', data=dict(kind='sandbox'), sources=[dict(name='a', type='synthetic')], "
            f"{section}=dict(sources=['a', 'nope']))\n")
        with pytest.raises(PosefixError, match=rf"_profile_.py: {section}.sources \['a', 'nope'\] must name sources "
                                               r"of the profile \(a\)"):
            load_profile(folder)
    (folder / "_profile_.py").write_text("profile = dict(name='p', data=dict(kind='sandbox'), sources=[dict("
                                         "name='a', type='synthetic')], learning_curve=dict(sources=['a']))\n")
    assert load_profile(folder).section("learning_curve")["sources"] == ["a"]
