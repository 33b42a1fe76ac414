"""Bench reports from a small but real bench record on coco-mini val.

The record is assembled as the runner assembles it (:func:`analyse_pair` per pair, :func:`run_of`,
:func:`ablation_metrics`) from real analyses of synthetic sources: the input is the paper-mix synthetic source, and
"refined" results stand in for refiners (a jitter-only synthesis is better than the input, a synthesis with tripled
misses and swaps is worse, one is marked untrained). The default ablation is gated: its "gated" results take the
stand-in refined keypoint on every second joint, and its gate-effect records are real. Some coco-mini persons are tagged lower-body occluded in a copy
of the annotation file (its image folder is a symlink to coco-mini's), so the occluded subset is real. Training
summaries and the FPS record are fixture values: the reports only format them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET

import matplotlib.image
import numpy as np
import pytest

from posefix_bench.bench.runner import gate_info, gate_run_of, learning_curve, profile_summary, run_of
from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.gate_effect import gate_effect
from posefix_bench.evaluation.pair import analyse_pair
from posefix_bench.evaluation.profile import measure_profile
from posefix_bench.record.metrics import METRICS_FORMAT, ablation_metrics
from posefix_bench.record.schema import AblationResult, BenchRecord, DataInfo, MixInfo, SourceRun
from posefix_bench.reporting import bench_report as br
from posefix_bench.reporting.bench_plots import ap_delta_figure
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.io import atomic_write_json
from posefix_bench.structures.results import save_results
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import synthesize_results

SOURCE = "synthetic-paper"
GOOD, BAD, UNTRAINED, MEASURED = ("t_paper_lb-off_prior+skip", "t_paper_lb-off_posefix", "t_paper_lb-on_prior+skip",
                                  "t_measured-x_lb-off_prior+skip")
WORSE_MIX = {"base": "paper", "scale": {"miss": 3.0, "swap": 3.0}, "name": "worse"}
FPS = {"gflop_per_sample": 0.61, "threads": 2, "device": "cpu", "rows": [
    {"backbone": "resnet18", "head": "prior+skip", "input_size": [48, 64], "batch": 32, "precision": "bf16",
     "samples_per_s": 812.5, "forward_ms": 39.4, "gflop_per_sample": 0.61, "achieved_gflops": 495.6,
     "roofline_fraction": 0.41}]}


def _tagged_gt(root, val_gt_path, coco_mini_root) -> CocoDataset:
    """coco-mini val with every second person of >= 8 labelled keypoints tagged lower-body occluded."""
    data = json.loads(val_gt_path.read_text())
    big = [a for a in data["annotations"] if a.get("num_keypoints", 0) >= 8 and not a.get("iscrowd")]
    for a in big[::2]:
        a["lower_body_occluded"] = True
    (root / "annotations").mkdir()
    path = root / "annotations" / "person_keypoints_val2017.json"
    path.write_text(json.dumps(data))
    (root / "val2017").symlink_to(coco_mini_root / "val2017", target_is_directory=True)
    return CocoDataset(path)


def _occluded(gt) -> list[int]:
    return [a["id"] for a in gt.coco.dataset["annotations"] if a.get("lower_body_occluded")]


def _analysis(gt, results, refined, path, ap_impact=False) -> dict:
    rec = analyse_pair(gt, results, refined, ap_impact=ap_impact, subset_ids=_occluded(gt))
    atomic_write_json(path, rec)
    return dict(rec, path=str(path))


def _source(gt, root) -> tuple[SourceRun, list]:
    results = synthesize_results(gt, get_mix("paper", gt.schema), seed=1)
    save_results(root / "input.json", results)
    d = _analysis(gt, results, None, root / "baseline.json", ap_impact=True)
    diag = d["diagnosis"]
    baseline = {k: diag[k] for k in ("ap", "counts", "fractions", "ap_impact", "per_confidence", "per_group",
                                     "per_keypoint")}
    baseline.update(occluded=d["occluded"], untrained=diag["untrained"], taxonomy=diag["taxonomy"], analysis=d["path"])
    src = SourceRun(name=SOURCE, type="synthetic", meta={"type": "synthetic", "mix": "paper", "seed": 1,
                                                         "trained": True},
                    results=str(root / "input.json"), gt=str(gt.path), hash="-", poses=len(results), images=len(gt),
                    predict_seconds=0.5, baseline=baseline)
    return src, results


def _gate(gt, root, results, refined, run, seed):
    """The gated reading of a stand-in refinement: the refined keypoint on every second joint."""
    k = gt.schema.num_keypoints
    accept = np.zeros((len(results), k), bool)
    accept[:, ::2] = True
    kp = np.asarray([r["keypoints"] for r in results], np.float64).reshape(-1, k, 3)
    accept &= ~((kp[..., 2] == 0) | ((kp[..., 0] == 0) & (kp[..., 1] == 0)))
    ref = np.asarray([r["keypoints"] for r in refined], np.float64).reshape(-1, k, 3)
    gated = [dict(r, keypoints=np.where(a[:, None], f, i).reshape(-1).tolist(), refine_accepted=a.astype(int).tolist())
             for r, a, f, i in zip(refined, accept, ref, kp)]
    path = root / f"{run.ablation}-s{seed}-gated.json"
    save_results(path, gated)
    analysis = _analysis(gt, results, gated, root / f"{run.ablation}-s{seed}-gated-analysis.json")
    effect = gate_effect(gt, results, refined, gated, accept)
    atomic_write_json(root / f"{run.ablation}-s{seed}-effect.json", effect)
    effect["path"] = str(root / f"{run.ablation}-s{seed}-effect.json")
    run.gate = gate_run_of(analysis, effect, str(path), str(root / "cache" / "calibrate" / f"c{seed}" / "cal.pth"))
    return {"state": "calibrated", "checkpoint": run.gate.checkpoint, "seconds": 3.0, "mixes": ["paper", "none"],
            "draws": 2, "sources": ["mediapipe"],
            "gate": {"threshold": 0.5, "data": {"selection": "hold-out of the training split: 200 of 2000 images",
                                                "persons": 321}, "calibration_summary": {"accepted_share": 0.5}}}


def _runs(gt, root, results, name, seeds, refine_mix, untrained=False, cals=None):
    runs = []
    for seed in seeds:
        refined = synthesize_results(gt, get_mix(refine_mix, gt.schema), seed=100 + seed)
        if untrained:
            refined = [dict(r, untrained=True) for r in refined]
        path = root / f"{name}-s{seed}.json"
        save_results(path, refined)
        trained = {"summary": {"iterations": 200, "seconds": 120.0 + seed, "samples_per_s": 53.0, "final_loss": 0.01,
                               "resumed_from": None},
                   "checkpoint": str(root / "cache" / "train" / f"{name}{seed}" / "final.pth")}
        analysis = _analysis(gt, results, refined, root / f"{name}-s{seed}-analysis.json")
        runs.append(run_of(name, seed, SOURCE, trained, str(path), analysis))
        if cals is not None:
            cals[seed] = _gate(gt, root, results, refined, runs[-1], seed)
    return runs


def _ablation(name, seeds, tags, head, mix: MixInfo, runs, lower="off", curve=None, gate=None) -> AblationResult:
    factors = {"backbone": "resnet18", "input": "64x48", "head": head, "mix": mix.label, "lower body": lower}
    model = {"backbone": "resnet18", "head": head, "input_size": [48, 64]}
    metrics = ablation_metrics(profile="test", name=name, config=f"ablations/test/{name}.py", seeds=seeds, tags=tags,
                               default=name == GOOD, factors=factors, model=model, mix=mix.label, runs=runs,
                               sources=[SOURCE], fps=FPS, learning_curve=curve, gate=gate)
    return AblationResult(name=name, config=f"ablations/test/{name}.py", seeds=list(seeds), tags=list(tags),
                          factors=factors, model=model, mix=mix, runs=runs, metrics=metrics, fps=FPS, gate=gate)


def _recompute(record: BenchRecord) -> BenchRecord:
    """The record with every ablation's metrics computed again from its runs (after a test changed a run)."""
    return dataclasses.replace(record, ablations=[
        _ablation(a.name, a.seeds, a.tags, a.factors["head"], a.mix, a.runs, a.factors["lower body"],
                  a.metrics["learning_curve"], a.gate) for a in record.ablations])


def _curve(gt, runs, scales):
    """A learning curve whose intermediate points are the AP of stand-in results: the paper mix scaled by each of
    ``scales`` (checkpoints at 50, 100, ... iterations), then the runs' own final AP (at 200)."""
    from posefix_bench.evaluation.coco_eval import evaluate

    points = {}
    for r in runs:
        points[r.seed] = {50 * (i + 1): {SOURCE: evaluate(gt, synthesize_results(
            gt, get_mix({"base": "paper", "scale": {"jitter": k, "miss": k}, "name": f"x{k}"}, gt.schema),
            seed=7 + r.seed))["metrics"]["AP"]} for i, k in enumerate(scales)}
    return learning_curve(runs, points)


@pytest.fixture(scope="module")
def record(tmp_path_factory, val_gt_path, coco_mini_root) -> BenchRecord:
    root = tmp_path_factory.mktemp("bench")
    gt = _tagged_gt(root, val_gt_path, coco_mini_root)
    src, results = _source(gt, root)
    step = root / "cache" / "profile" / "step1"
    step.mkdir(parents=True)
    prof = measure_profile(gt, results, meta={"source": SOURCE, "split": "train2017", "images": 96, "poses": 91})
    prof.save(step / "profile.json")
    measured = MixInfo(label=f"measured ({SOURCE})", source=SOURCE, profile=str(step / "profile.json"),
                       profile_summary=profile_summary(step / "profile.json"))
    paper = MixInfo(label="paper", spec="paper")
    specs = [(GOOD, [0, 1], paper, "jitter-only", False, ["head", "lb", "mix"], "prior+skip", "off"),
             (BAD, [0, 1], paper, WORSE_MIX, False, ["head"], "posefix", "off"),
             (UNTRAINED, [0], paper, "paper", True, ["lb"], "prior+skip", "on"),
             (MEASURED, [0], measured, "jitter-only", False, ["mix"], "prior+skip", "off")]
    ablations = []
    for name, seeds, mix, refine_mix, untrained, tags, head, lower in specs:
        cals = {} if name == GOOD else None
        runs = _runs(gt, root, results, name, seeds, refine_mix, untrained, cals)
        gate = gate_info(runs, cals) if cals is not None else None
        curve = None
        if name in (GOOD, BAD):  # the head variants: the published head's deficit narrows, the good one improves
            for r in runs:
                r.train["iterations"] = 200
            curve = _curve(gt, runs, (2.0, 1.5, 1.2) if name == BAD else (1.0, 0.8, 0.6))
        ablations.append(_ablation(name, seeds, tags, head, mix, runs, lower, curve, gate))
    return BenchRecord(
        profile="test", description="coco-mini val with synthetic stand-ins",
        data=DataInfo(kind="coco", description="coco-mini val2017 (tagged copy)", fingerprint="-", root=str(root),
                      train_split="train2017", val_split="val2017", val_images=len(gt),
                      val_persons=sum(1 for _ in gt.persons()), val_occluded_persons=len(_occluded(gt)),
                      schema="coco17"),
        sources=[src], ablations=ablations,
        comparisons=[{"name": "Head variants", "tag": "head", "question": "Which head carries the gain?"},
                     {"name": "Lower-body augmentation", "tag": "lb", "subset": "occluded",
                      "question": "Does it help occluded people?"},
                     {"name": "Error-type mix", "tag": "mix", "question": "Which mix?"}],
        default_ablation=GOOD,
        environment={"device": "cpu", "device_name": "test CPU (2 threads)", "torch": "2.x", "python": "3.11",
                     "posefix_bench": "0.1.0", "jobs": 2, "threads_per_job": 1},
        timings={"data": 1.0, "training": 100.0, "total": 120.0}, cache_root=str(root / "cache"),
        evaluator="pycocotools", data_warnings=[])


@pytest.fixture(scope="module")
def written(record, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "test"
    index = br.write_reports(record, out, date="2026-11-24")
    return out, index.read_text()


def _delta(record, name, seed=None):
    runs = record.ablation(name).runs
    vals = [r.ap_after["AP"] - r.ap_before["AP"] for r in runs if seed is None or r.seed == seed]
    return float(np.mean(vals)), min(vals), max(vals)


def test_every_report_file_is_written_as_valid_output(written, record):
    out, index = written
    for a in record.ablations:
        folder = out / a.name
        assert (folder / "report.md").is_file()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["format"] == METRICS_FORMAT and metrics["seeds"] == a.seeds
        for png in ("ap_before_after.png", "crops.png"):
            img = matplotlib.image.imread(folder / png)
            assert img.shape[0] > 100 and img[..., :3].std() > 0.05, png  # drawn, not blank
        for svg in ("error_types", "ap_impact", "keypoint_errors", "confidence_bins"):
            root = ET.parse(folder / f"{SOURCE}_{svg}.svg").getroot()
            drawn = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") in ("bar", "cell")]
            assert root.tag.endswith("svg") and len(drawn) >= 5, svg  # drawn, not blank
        assert f"({SOURCE}_error_types.svg)" in (folder / "report.md").read_text()
    assert (out / MEASURED / "profile.png").is_file() and (out / f"profile_{MEASURED}.png").is_file()
    for png in ("ap_delta.png", "fixed_broken.png", "speed_gain.png", "learning_curve.png"):
        assert matplotlib.image.imread(out / png).shape[0] > 100
    assert not [p for p in out.rglob(".*")]  # no temporary file left behind


def test_index_has_every_section_and_the_numbers(written, record):
    _, index = written
    for heading in ("## How to read this", "## Headline", "## Default choice", "## All ablations",
                    "## Sources (the refiners' inputs)", "### Head variants", "### Lower-body augmentation",
                    "### Error-type mix", "## Measured error profile vs paper mix", "## Speed (refiner inference)",
                    "## Ablation reports", "Which head carries the gain?"):
        assert heading in index, heading
    mean, lo, hi = _delta(record, GOOD)
    assert f"{mean:+.3f} [{lo:+.3f}..{hi:+.3f}]" in index  # seed mean and spread of the default's delta
    assert f"{record.sources[0].baseline['ap']['AP']:.3f}" in index
    assert "812" in index and "41%" in index  # FPS row
    assert f"({GOOD}/report.md)" in index and "Written 2026-11-24" in index
    assert "The measurements support the default" in index
    assert "(rule `coco-analyze`)" in index


def test_reports_hold_no_absolute_path(written):
    out, index = written
    for text in [index] + [p.read_text() for p in out.rglob("report.md")]:
        assert not re.search(r"(^|[\s`(=])/[A-Za-z]", text), re.search(r".{40}(^|[\s`(=])/[A-Za-z].{40}", text)


def test_a_worse_refiner_is_reported_as_worse_with_its_numbers(written, record):
    out, index = written
    mean, lo, hi = _delta(record, BAD)
    assert hi < 0  # the fixture's "refined" results really are worse on both seeds
    report = (out / BAD / "report.md").read_text()
    assert f"This refiner makes things worse on {SOURCE}" in report
    assert f"delta {mean:+.3f} [{lo:+.3f}..{hi:+.3f}] (2 seeds)" in report
    assert "worse than the default" in report
    assert f"Makes things worse than the input: {BAD} ({mean:+.3f} [{lo:+.3f}..{hi:+.3f}])" in index
    good = (out / GOOD / "report.md").read_text()
    assert f"This refiner gains on {SOURCE}" in good
    metrics = json.loads((out / BAD / "metrics.json").read_text())
    assert metrics["verdict"][SOURCE] == "worse"
    assert metrics["sources"][SOURCE]["delta"]["mean"] == pytest.approx(mean)


def test_untrained_weights_are_marked_everywhere(written, record):
    out, index = written
    report = (out / UNTRAINED / "report.md").read_text()
    assert report.startswith(f"# Ablation `{UNTRAINED}` (UNTRAINED)")
    assert f"[{UNTRAINED} (UNTRAINED)]({UNTRAINED}/report.md)" in index and "**UNTRAINED**" in index
    assert f"[{GOOD} (UNTRAINED)]" not in index
    summaries = [json.loads((out / a.name / "metrics.json").read_text()) for a in record.ablations]
    fig = ap_delta_figure(summaries, [SOURCE])
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert f"{UNTRAINED} (UNTRAINED)" in labels and GOOD in labels


def test_occluded_subset_and_lower_body_comparison(written, record):
    out, index = written
    section = index.split("### Lower-body augmentation")[1].split("### ")[0]
    persons = record.data.val_occluded_persons
    occ = [r.occluded for r in record.ablation(GOOD).runs]
    deltas = [o["ap_after"] - o["ap_before"] for o in occ]
    assert f"the occluded persons of {SOURCE}, by mean AP delta" in section
    assert f"{np.mean(deltas):+.3f} [{min(deltas):+.3f}..{max(deltas):+.3f}]" in section
    assert f"Lower-body keypoints of the occluded persons of {SOURCE}" in section
    assert f"| {persons} |" in section
    assert "## Occluded subset" in (out / GOOD / "report.md").read_text()


def test_measured_profile_is_compared_with_the_paper_mix(written):
    _, index = written
    section = index.split("## Measured error profile vs paper mix")[1].split("\n## ")[0]
    assert f"error profile measured from {SOURCE}'s poses on 96 images of the train2017 split" in section
    assert f"paper ({GOOD}) AP after" in section and f"{SOURCE} (profiled)" in section
    assert "one seed each" in section or "noise bound" in section


def test_the_record_survives_json(record):
    again = BenchRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record


def test_a_bad_record_raises_before_anything_is_written(record, tmp_path):
    broken = json.loads(json.dumps(record.to_dict()))
    missing = tmp_path / "gone" / "analysis.json"
    broken["ablations"][1]["runs"][0]["analysis"] = str(missing)  # seed 0: its plots are drawn
    with pytest.raises(PosefixError, match=f"{missing}: analysis not found"):
        br.write_reports(BenchRecord.from_dict(broken), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(PosefixError, match="format 'x'"):
        BenchRecord.from_dict(dict(record.to_dict(), format="x"))
    short = dict(record.to_dict(), ablations=[dict(record.to_dict()["ablations"][0], seeds=[0, 1, 2])])
    with pytest.raises(PosefixError, match="no run for seed 2 on source synthetic-paper"):
        BenchRecord.from_dict(short)
    with pytest.raises(PosefixError, match="unknown field 'surprise'"):
        BenchRecord.from_dict(dict(record.to_dict(), surprise=1))


def test_small_real_data_says_what_it_cannot_show(record, tmp_path):
    small = json.loads(json.dumps(record.to_dict()))
    small.update(profile="coco-mini", ablations=small["ablations"][:1], comparisons=small["comparisons"][1:2])
    small["data"].update(kind="coco-mini", val_occluded_persons=0)
    for run in small["ablations"][0]["runs"]:
        run["occluded"] = None
    small = _recompute(BenchRecord.from_dict(small))
    index = br.write_reports(small, tmp_path / "coco-mini").read_text()
    n = small.data.val_persons
    assert f"the validation set has only {n} persons" in index
    assert "differences of a few AP points" in index and "within noise" in index
    assert "occluded-subset numbers do not exist" in index
    report = (tmp_path / "coco-mini" / GOOD / "report.md").read_text()
    assert "The occluded subset does not exist on this data" in report


def test_a_rewrite_from_the_same_record_keeps_the_plots_and_a_change_redraws_them(record, tmp_path):
    small = dataclasses.replace(record, ablations=record.ablations[:1], comparisons=[])
    out = tmp_path / "r"
    br.write_reports(small, out)
    folder = out / GOOD
    plots = json.loads((folder / "metrics.json").read_text())["plots"]
    assert "ap_before_after.png" in plots and all((folder / p).is_file() for p in plots)
    stamp = {p: (folder / p).stat().st_mtime_ns for p in plots}
    br.write_reports(small, out)
    assert {p: (folder / p).stat().st_mtime_ns for p in plots} == stamp  # same inputs: not redrawn
    (folder / plots[-1]).unlink()  # a plot lost (an interrupted write): everything is redrawn
    br.write_reports(small, out)
    assert all((folder / p).stat().st_mtime_ns != stamp[p] for p in plots[:-1]) and (folder / plots[-1]).is_file()
    stamp = {p: (folder / p).stat().st_mtime_ns for p in plots}
    changed = json.loads(json.dumps(small.to_dict()))
    changed["ablations"][0]["runs"][0]["ap_after"]["AP"] += 0.01  # another number: redrawn
    br.write_reports(_recompute(BenchRecord.from_dict(changed)), out)
    assert (folder / "ap_before_after.png").stat().st_mtime_ns != stamp["ap_before_after.png"]


def test_the_learning_curves_and_the_published_heads_deficit(written, record):
    out, index = written
    section = index.split("## Training budget")[1].split("\n## ")[0]
    assert "| 50 it | 100 it | 150 it | 200 it |" in section
    assert f"The published head ({BAD}) against {GOOD}" in section
    assert any(w in section for w in ("the deficit narrows", "the deficit stays", "the deficit is wider",
                                      "the deficit closes"))
    metrics = json.loads((out / BAD / "metrics.json").read_text())
    curve = metrics["learning_curve"]
    assert [p["iterations"] for p in curve] == [50, 100, 150, 200] and set(curve[0]["per_seed"]) == {"0", "1"}
    final = np.mean([r.ap_after["AP"] for r in record.ablation(BAD).runs])
    assert curve[-1]["ap"][SOURCE] == pytest.approx(final)
    assert "learning_curve" not in json.loads((out / MEASURED / "metrics.json").read_text()) or \
        json.loads((out / MEASURED / "metrics.json").read_text())["learning_curve"] is None


def test_the_default_refiner_gated_beside_ungated(written, record):
    out, index = written
    section = index.split("## Refinement gate")[1].split("\n## ")[0]
    runs = record.ablation(GOOD).runs
    ungated = [r.ap_after["AP"] - r.ap_before["AP"] for r in runs]
    gated = [r.gate.ap_after["AP"] - r.ap_before["AP"] for r in runs]
    row = section.split(f"| {SOURCE} |")[1].split("\n")[0]
    assert f"{np.mean(ungated):+.3f} [{min(ungated):+.3f}..{max(ungated):+.3f}]" in row
    assert f"{np.mean(gated):+.3f} [{min(gated):+.3f}..{max(gated):+.3f}]" in row
    assert "Only the default refiner is gated: every other ablation" in section
    kept = np.mean(gated) / np.mean(ungated)
    assert f"On {SOURCE} refinement gains and gating keeps {100 * kept:.0f}% of the gain" in section
    assert "made things worse on none of the 1 source" in section
    assert "200 of 2000 images" in section and "seed 0: 0.50" in section
    assert ("calibration inputs: poses synthesised with the mixes paper, none (2 draws each) and the predictions of "
            "mediapipe on those images" in section)
    report = (out / GOOD / "report.md").read_text()
    assert "## Refinement gate" in report and "| delta AP ungated | delta AP gated |" in report
    assert "Its refinement is ungated (only the profile's default refiner is gated)" in (out / BAD / "report.md").read_text()
    metrics = json.loads((out / GOOD / "metrics.json").read_text())
    assert metrics["factors"]["gate"] == "calibrated" and metrics["evaluator"] == "pycocotools"
    g = metrics["gate"]["sources"][SOURCE]
    assert g["delta_gated"]["mean"] == pytest.approx(np.mean(gated))
    assert 0.0 <= g["accepted_share"]["mean"] <= 1.0 and set(g["per_keypoint"]) == set(runs[0].gate.per_keypoint)
    other = json.loads((out / BAD / "metrics.json").read_text())
    assert "gate" not in other["factors"] and other["gate"] is None
    assert "**Data checks**" not in index and "**Evaluator**: COCO keypoint AP computed by pycocotools" in index


def test_data_warnings_and_a_gate_that_is_off(record, tmp_path):
    from posefix_bench.record.schema import GateInfo

    rec = json.loads(json.dumps(record.to_dict()))
    rec["data_warnings"] = ["source synthetic-paper: 2 of 91 entries repeat an earlier entry's image and keypoints"]
    rec = BenchRecord.from_dict(rec)
    a = rec.ablation(GOOD)
    for r in a.runs:
        r.gate = None
    a.gate = GateInfo(state="off", reason="the refiner trained on every training image")
    rec = _recompute(rec)
    index = br.write_reports(rec, tmp_path / "off").read_text()
    assert "- **Data checks**: source synthetic-paper: 2 of 91 entries repeat" in index
    assert "is off: the refiner trained on every training image" in index
    metrics = json.loads((tmp_path / "off" / GOOD / "metrics.json").read_text())
    assert metrics["factors"]["gate"] == "off" and metrics["data_warnings"] == rec.data_warnings


def test_the_record_checks_the_gate(record):
    rec = json.loads(json.dumps(record.to_dict()))
    rec["ablations"][1]["gate"] = {"state": "calibrated", "calibrations": {}}  # not the default
    name = rec["ablations"][1]["name"]
    with pytest.raises(PosefixError, match=f"ablation {name} has a gate, but only the default ablation"):
        BenchRecord.from_dict(rec)
    rec = json.loads(json.dumps(record.to_dict()))
    good = next(a for a in rec["ablations"] if a["name"] == GOOD)
    good["runs"][1]["gate"] = None
    with pytest.raises(PosefixError, match="has no gated reading"):
        BenchRecord.from_dict(rec)


def test_a_cached_rerun_keeps_the_time_of_the_run_that_computed_the_numbers(record):
    """Issue 25: after a rerun served by the cache, the index's time line said 'total 25 s'. It now keeps the
    computing run's time (and its environment: the machine peak it was quoted beside), with the rerun's own time
    beside it, labelled; a rerun that computed anything anew is a run of its own."""
    from posefix_bench.record.schema import keep_computing_run

    rerun = dataclasses.replace(record, timings={"data": 0.5, "total": 25.0}, environment=dict(
        record.environment, load_average_1min=0.1), cache_root="/elsewhere/cache")
    # the previous record as the command reads it: back from bench.json (string keys, lists), the new one in memory
    from posefix_bench.structures.io import to_jsonable

    kept = keep_computing_run(rerun, BenchRecord.from_dict(json.loads(json.dumps(to_jsonable(record.to_dict())))))
    assert kept.timings == record.timings and kept.environment == record.environment
    assert kept.rerun_timings == {"data": 0.5, "total": 25.0} and kept.cache_root == "/elsewhere/cache"
    again = keep_computing_run(dataclasses.replace(rerun, timings={"total": 20.0}), kept)  # a rerun of the rerun
    assert again.timings == record.timings and again.rerun_timings == {"total": 20.0}
    assert BenchRecord.from_dict(json.loads(json.dumps(again.to_dict()))).rerun_timings == {"total": 20.0}
    from posefix_bench.reporting.context import ReportContext
    from posefix_bench.reporting.index_page import setup_lines

    def time_line(rec):
        ctx = ReportContext(record=rec, diags={}, baselines={}, crops={}, resolution=0.01, occluded_resolution=None)
        return next(x for x in setup_lines(ctx) if x.startswith("- **Time**"))

    line = time_line(again)
    assert line.startswith("- **Time**: total 120 s (data 1 s, training 100 s); the time of the run that computed "
                           "these numbers (this rerun: 20 s, every number reused from the step cache).")

    changed = dataclasses.replace(rerun, description="other numbers")
    assert keep_computing_run(changed, record) is changed
    assert keep_computing_run(rerun, None) is rerun
    assert keep_computing_run(rerun, dataclasses.replace(record, profile="other")) is rerun
    line = time_line(rerun)
    assert line.startswith("- **Time**: total 25 s (data 0 s). Cached")
