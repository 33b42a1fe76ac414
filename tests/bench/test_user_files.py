"""Files a user hands the bench (a results file, annotations, modules) enter the cache keys by content (issue 28):
overwriting one reruns what depends on it, and only that."""

import json
from pathlib import Path

import pytest

from posefix_bench.bench.runner import RunSpec, run_bench
from posefix_bench.evaluation.coco_eval import evaluate
from posefix_bench.structures.coco import CocoDataset, coco_split_paths
from posefix_bench.structures.results import load_results

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "data" / "coco-analyze-reference" / "mediapipe_cocomini_val.json"


def coco_mini_profile(folder: Path, results: Path, data: str = "dict(kind='coco-mini')", extra: str = "") -> Path:
    """A tiny profile over coco-mini: one results-file source, one refiner trained 2 iterations on 8 real persons."""
    folder.mkdir()
    (folder / "_profile_.py").write_text(
        f"profile = dict(name='mine', data={data},\n"
        f"    sources=[dict(name='mine', type='results-file', path={str(results)!r})],\n"
        "    seeds=[0], refine=dict(batch_size=16, precision='fp32'),\n"
        f"    fps=dict(batches=[1], precisions=['fp32'], threads=1){extra})\n")
    (folder / "r18_64x48_paper_lb-off_skip.py").write_text(
        f"_base_ = ['{REPO / 'ablations' / '_base_' / 'quick.py'}']\n"
        "data = dict(sandbox=None, holdout=0, max_samples=8, cache_images=False)\n"
        "train = dict(max_iters=2, batch_size=4, checkpoint_interval=2, log_interval=1, amp='fp32')\n")
    return folder


def shifted(src: Path, dst: Path, dx: float) -> None:
    records = json.loads(src.read_text())
    for r in records:
        r["keypoints"] = [v + dx if i % 3 == 0 else v for i, v in enumerate(r["keypoints"])]
    dst.write_text(json.dumps(records))


@pytest.mark.slow
def test_an_overwritten_results_file_is_read_again_and_nothing_retrains(tmp_path, coco_mini_root):
    results = tmp_path / "my_estimator.json"
    results.write_text(REFERENCE.read_text())
    profile = coco_mini_profile(tmp_path / "mine", results)
    spec = RunSpec(profile=str(profile), out_dir=str(tmp_path / "reports"), cache_root=str(tmp_path / "cache"),
                   jobs=1, threads=1, coco_root=str(coco_mini_root))
    first = run_bench(spec)
    trains = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("train/*/DONE")}
    assert len(trains) == 1

    shifted(REFERENCE, results, 15.0)  # the estimator rerun: same path, new content
    val = CocoDataset(coco_split_paths(coco_mini_root, "val2017")[0])
    want = evaluate(val, load_results(results, val))["metrics"]["AP"]
    second = run_bench(spec)
    (before,), (after,) = first.ablations[0].runs, second.ablations[0].runs
    assert after.ap_before["AP"] == pytest.approx(want)
    assert before.ap_before["AP"] - after.ap_before["AP"] > 0.1  # the old results are not reported again
    assert first.sources[0].hash != second.sources[0].hash
    # the refiner was not trained again: the same training step, untouched
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("train/*/DONE")} == trains
    assert after.train == before.train


def test_smoke_restricts_a_results_file_to_the_smoke_images(tmp_path, coco_mini_root):
    profile = coco_mini_profile(tmp_path / "mine", REFERENCE)
    spec = RunSpec(profile=str(profile), out_dir=str(tmp_path / "reports"), cache_root=str(tmp_path / "cache"),
                   jobs=1, threads=1, coco_root=str(coco_mini_root), smoke=True)
    record = run_bench(spec)
    assert record.data.val_images == 4
    (src,) = record.sources
    kept = load_results(src.results)
    smoke_ids = set(CocoDataset(src.gt).image_ids)
    assert kept and {r["image_id"] for r in kept} <= smoke_ids
    assert len(kept) == sum(r["image_id"] in smoke_ids for r in json.loads(REFERENCE.read_text()))
    assert 0.0 <= record.ablations[0].runs[0].ap_before["AP"] <= 1.0


def test_a_results_file_keeps_its_results_on_part_of_the_split(tmp_path, val_gt):
    from posefix_bench.bench.source_steps import subset_dataset
    from posefix_bench.errors import PosefixError
    from posefix_bench.sources import get_source

    part = subset_dataset(val_gt, 3, tmp_path / "part.json")
    with pytest.raises(PosefixError, match="image ids absent"):
        get_source("results-file", path=REFERENCE).predict(part)
    kept = get_source("results-file", path=REFERENCE, subset=True).predict(part)
    assert kept and {r["image_id"] for r in kept} <= set(part.image_ids)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([dict(r, keypoints=r["keypoints"][:-3]) for r in json.loads(REFERENCE.read_text())]))
    with pytest.raises(PosefixError, match="bad.json"):  # records of other images are still validated
        get_source("results-file", path=bad, subset=True).predict(part)


def other_layout(tmp_path: Path, coco_mini_root: Path) -> str:
    """coco-mini's files in another layout: annotations and image folders under names of one's own."""
    (tmp_path / "labels").mkdir()
    (tmp_path / "pictures").mkdir()
    for split, name in (("train2017", "fit"), ("val2017", "check")):
        ann, images = coco_split_paths(coco_mini_root, split)
        (tmp_path / "labels" / f"{name}.json").write_bytes(ann.read_bytes())
        (tmp_path / "pictures" / name).symlink_to(images.resolve(), target_is_directory=True)
    labels, pictures = tmp_path / "labels", tmp_path / "pictures"
    return (f"dict(type='coco', ann_file={str(labels / 'fit.json')!r}, img_dir={str(pictures / 'fit')!r}, "
            f"val_ann_file={str(labels / 'check.json')!r}, val_img_dir={str(pictures / 'check')!r})")


def test_a_dataset_spec_in_another_layout_runs(tmp_path, coco_mini_root):
    profile = coco_mini_profile(tmp_path / "mine", REFERENCE, data=other_layout(tmp_path, coco_mini_root))
    spec = RunSpec(profile=str(profile), out_dir=str(tmp_path / "reports"), cache_root=str(tmp_path / "cache"),
                   jobs=1, threads=1, smoke=True)
    record = run_bench(spec)
    assert record.data.kind == "coco" and record.data.schema == "coco17"
    assert "labels/fit.json" in record.data.description
    val = CocoDataset(coco_split_paths(coco_mini_root, "val2017")[0])
    assert record.data.val_persons == sum(1 for img, _ in val.persons() if img in set(CocoDataset(
        record.sources[0].gt).image_ids))
    (run,) = record.ablations[0].runs
    assert run.train["iterations"] == 2 and 0.0 <= run.ap_after["AP"] <= 1.0


def test_a_dataset_spec_names_its_missing_file(tmp_path, coco_mini_root):
    from posefix_bench.bench.profile import load_profile
    from posefix_bench.bench.steps import BenchSteps
    from posefix_bench.errors import PosefixError

    data = other_layout(tmp_path, coco_mini_root).replace("check.json", "nope.json")
    profile = load_profile(coco_mini_profile(tmp_path / "mine", REFERENCE, data=data))
    with pytest.raises(PosefixError, match=r"mine/_profile_.py: data.val_ann_file: .*nope.json is not a file"):
        BenchSteps(profile, tmp_path / "cache").data()
    assert not (tmp_path / "cache" / "data").exists()


def test_a_dataset_spec_takes_its_keypoint_schema_from_the_annotation_file(tmp_path, coco_mini_root):
    """A category with keypoint names of its own and their OKS sigmas is a custom schema (flip pairs from the
    left_/right_ names); COCO's names give COCO-17."""
    from posefix_bench.bench.profile import load_profile
    from posefix_bench.bench.steps import BenchSteps
    from posefix_bench.structures.schema import COCO17

    spec = other_layout(tmp_path, coco_mini_root)
    val_file = tmp_path / "labels" / "check.json"
    data = json.loads(val_file.read_text())
    (cat,) = [c for c in data["categories"] if c.get("keypoints")]
    cat["keypoints"] = [n.replace("left_", "left_my_").replace("right_", "right_my_") for n in cat["keypoints"]]
    cat["sigmas"] = [0.05] * len(cat["keypoints"])
    val_file.write_text(json.dumps(data))
    profile = load_profile(coco_mini_profile(tmp_path / "mine", REFERENCE, data=spec))
    steps = BenchSteps(profile, tmp_path / "cache")
    schema = steps.data().val.schema
    assert schema != COCO17 and schema.keypoints[1] == "left_my_eye" and schema.sigmas == (0.05,) * 17
    assert schema.flip_pairs == COCO17.flip_pairs
    train = CocoDataset(coco_split_paths(steps.data().root, steps.data().train_split)[0])
    assert train.schema == COCO17


def test_annotation_files_key_the_steps_by_content(tmp_path, coco_mini_root):
    """Editing the validation annotations in place changes the data fingerprint (what is evaluated) but not the
    training's key; editing the training annotations changes that."""
    from posefix_bench.bench.profile import load_profile
    from posefix_bench.bench.steps import BenchSteps

    profile = load_profile(coco_mini_profile(tmp_path / "mine", REFERENCE, data=other_layout(tmp_path, coco_mini_root)))
    (ablation,) = profile.ablations

    def keys():
        steps = BenchSteps(profile, tmp_path / "cache")
        return steps.data().fingerprint, steps.train_step(ablation, 0)[0].key

    data0, train0 = keys()
    for name in ("check", "fit"):
        path = tmp_path / "labels" / f"{name}.json"
        ann = json.loads(path.read_text())
        path.write_text(json.dumps(dict(ann, annotations=ann["annotations"][1:])))
        data1, train1 = keys()
        assert data1 != data0 and (train1 == train0) == (name == "check")
        data0, train0 = data1, train1
