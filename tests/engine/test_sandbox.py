"""The sandbox generator: a COCO root that every stage reads like COCO, with consistent labels, deterministic bytes,
caching and atomic writes (issue 8)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import noisy_results

from posefix_bench.cli import main
from posefix_bench.engine.sandbox import (
    SandboxParams, annotation_stats, ensure_sandbox, generate_sandbox, occluded_person_ids, read_manifest,
)  # fmt: skip
from posefix_bench.engine.sandbox import dataset as sandbox_dataset
from posefix_bench.engine.sandbox.figure import BAG, PARTS, sample_figure
from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.coco_eval import evaluate
from posefix_bench.structures.coco import CocoDataset, coco_split_paths, read_image_file
from posefix_bench.structures.schema import COCO17

# many occluders, so the occlusion checks below see plenty of cases in a tiny set
TINY = SandboxParams(seed=7, train=20, val=10, occluder_p=0.5)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return generate_sandbox(tmp_path_factory.mktemp("sandbox") / "root", TINY, workers=1)


@pytest.fixture(scope="module")
def val(root) -> CocoDataset:
    return CocoDataset(coco_split_paths(root, "val")[0])


def _all_annotations(root):
    for split in ("train", "val"):
        data = json.loads(coco_split_paths(root, split)[0].read_text())
        yield split, data


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_root_is_a_coco_root_read_by_pycocotools(root):
    from pycocotools.coco import COCO

    for split, n in (("train", TINY.train), ("val", TINY.val)):
        ann, image_dir = coco_split_paths(root, split)
        coco = COCO(str(ann))
        assert len(coco.imgs) == n and coco.getCatIds() == [1]
        ds = CocoDataset(ann)
        assert ds.schema is COCO17 and ds.image_dir == image_dir
        assert ds.category == COCO17.to_coco_category(category_id=1)
        img = ds.read_image(ds.image_ids[0])
        assert img.shape == (TINY.image_size, TINY.image_size, 3)
    manifest = read_manifest(root)
    assert manifest["params"]["seed"] == TINY.seed and manifest["splits"]["val"]["images"] == TINY.val


def test_labels_are_consistent(root):
    size = TINY.image_size
    ids = set()
    for _, data in _all_annotations(root):
        for a in data["annotations"]:
            assert a["id"] not in ids
            ids.add(a["id"])
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(COCO17.num_keypoints, 3)
            v = kp[:, 2]
            assert set(np.unique(v)) <= {0, 1, 2}
            assert a["num_keypoints"] == int((v > 0).sum()) and a["iscrowd"] == 0
            assert (kp[v == 0, :2] == 0).all()
            lab = kp[v > 0, :2]
            assert ((lab >= 0) & (lab <= size - 1)).all()
            x, y, w, h = a["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= size and y + h <= size
            vis = kp[v == 2, :2]
            assert ((vis[:, 0] >= x) & (vis[:, 0] <= x + w) & (vis[:, 1] >= y) & (vis[:, 1] <= y + h)).all()
            assert (v == 2).sum() >= 3
            assert a["area"] > 0
    assert len(ids) > 40


def test_joints_under_an_occluder_are_labelled_occluded(root):
    checked = tagged = 0
    for _, data in _all_annotations(root):
        by_image = {}
        for a in data["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        for img in data["images"]:
            for occ in img["occluders"]:
                poly = np.asarray(occ["polygon"], np.float32).reshape(-1, 2)
                for a in by_image.get(img["id"], []):
                    if a["draw_order"] > occ["draw_order"]:
                        continue  # the person stands in front of it
                    kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
                    for x, y, v in kp[kp[:, 2] > 0]:
                        if cv2.pointPolygonTest(poly, (float(x), float(y)), True) > 1.0:
                            assert v == 1, (img["id"], a["id"], x, y)
                            checked += 1
        for a in data["annotations"]:
            if not a["lower_body_occluded"]:
                continue
            tagged += 1
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            lower = kp[list(COCO17.groups["lower"])]
            assert (lower[:, 2] == 1).sum() >= 2
    assert checked > 20 and tagged > 5


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    params = SandboxParams(seed=3, train=sandbox_dataset._PARALLEL_MIN_IMAGES, val=2)
    a = _tree_digest(generate_sandbox(tmp_path / "a", params, workers=1))
    b = _tree_digest(generate_sandbox(tmp_path / "b", params, workers=2))
    assert a == b and len(a) == params.train + params.val + 3
    c = _tree_digest(generate_sandbox(tmp_path / "c", SandboxParams(seed=4, train=4, val=2), workers=1))
    assert c["annotations/person_keypoints_val.json"] != a["annotations/person_keypoints_val.json"]


def test_ground_truth_against_itself_gives_ap_one_and_noise_less(val):
    results = []
    for image_id in val.image_ids:
        for kp in val.gt_arrays(image_id).keypoints:
            kp = kp.copy()
            kp[:, 2] = (kp[:, 2] > 0).astype(float)
            results.append({"image_id": image_id, "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
                            "score": 1.0})
    assert evaluate(val, results)["metrics"]["AP"] == pytest.approx(1.0)
    occluded = occluded_person_ids(val)
    sub = evaluate(val, results, person_ids=occluded)
    assert occluded and sub["num_gt_persons"] == len(occluded) and sub["metrics"]["AP"] == pytest.approx(1.0)
    assert evaluate(val, noisy_results(val, seed=0))["metrics"]["AP"] < 0.9


def test_diagnose_runs_on_the_sandbox(val):
    from posefix_bench.evaluation.diagnosis import diagnose

    diag = diagnose(val, noisy_results(val, seed=1, noise=0.08), ap_impact=False)
    assert diag["ap"]["AP"] is not None and 0.0 < diag["ap"]["AP"] < 1.0


def test_occluded_person_ids_is_empty_on_real_coco(val_gt):
    assert occluded_person_ids(val_gt) == []


def test_stats_describe_the_data(root):
    data = json.loads(coco_split_paths(root, "train")[0].read_text())
    st = annotation_stats(data)
    assert st["persons"] == len(data["annotations"]) and st["images"] == TINY.train
    assert 0 < st["fraction_lower_body_occluded"] < 1 and 10 < st["box_height_px"]["p50"] < TINY.image_size
    assert 0 < st["labelled_keypoints_per_person"] <= COCO17.num_keypoints
    assert read_manifest(root)["splits"]["train"] == json.loads(json.dumps(st))


def test_ensure_sandbox_caches_by_parameters(tmp_path):
    p = SandboxParams(seed=1, train=3, val=2)
    first = ensure_sandbox(tmp_path, p)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert ensure_sandbox(tmp_path, p) == first and (first / "manifest.json").stat().st_mtime_ns == stamp
    other = ensure_sandbox(tmp_path, SandboxParams(seed=2, train=3, val=2))
    assert other != first and p.digest()[:10] in first.name
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted([first.name, other.name])


def test_a_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    real = sandbox_dataset._make_image

    def fail_on_val(task):
        if task[1] == "val" and task[2] == 1:
            raise RuntimeError("killed")
        return real(task)

    monkeypatch.setattr(sandbox_dataset, "_make_image", fail_on_val)
    with pytest.raises(RuntimeError):
        generate_sandbox(tmp_path / "root", SandboxParams(train=3, val=3), workers=1)
    assert list(tmp_path.iterdir()) == []


def test_bad_parameters_and_targets_are_one_line_errors(tmp_path):
    for kwargs in ({"occluder_p": 1.5}, {"train": -1}, {"image_size": 10}, {"seed": 0.5}, {"train": 0, "val": 0}):
        with pytest.raises(PosefixError) as e:
            SandboxParams(**kwargs)
        assert "\n" not in str(e.value)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("x")
    with pytest.raises(PosefixError, match="not a sandbox root"):
        generate_sandbox(precious, SandboxParams(train=2, val=1), replace=True)
    assert [p.name for p in precious.iterdir()] == ["keep.txt"]


def test_figures_have_a_consistent_left_right_cue():
    rng = np.random.default_rng(0)
    backs = 0
    for _ in range(60):
        fig = sample_figure(rng, back_p=0.5)
        brightness = {PARTS[part]: sum(color) for _, color, part in fig.shapes if part != BAG}
        for limb in ("upper_arm", "thigh", "hand", "foot"):  # the left limbs are always the darker ones
            left, right = brightness[f"left_{limb}"], brightness[f"right_{limb}"]
            assert left < right or right == 0
        # the person's left shoulder is on the image's right in a front view, on its left in a back view
        lx, rx = fig.joints["left_shoulder"][0], fig.joints["right_shoulder"][0]
        assert (lx < rx) == fig.back_view
        backs += fig.back_view
    assert 15 < backs < 45


def test_cli_writes_root_and_contact_sheet(tmp_path, capsys):
    out = tmp_path / "sb"
    args = ["sandbox", "--out", str(out), "--train", "3", "--val", "4", "--seed", "5", "--sheet-images", "4"]
    assert main(args) == 0
    sheet = read_image_file(out / "contact_sheet.png")
    assert sheet.shape[0] > 200 and sheet.shape[1] > 4 * 200
    assert "persons" in capsys.readouterr().out
    assert main(args) == 0 and "up to date" in capsys.readouterr().out
    (tmp_path / "file").write_text("x")
    assert main(["sandbox", "--out", str(tmp_path / "file"), "--train", "2", "--val", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a sandbox root" in err


def test_generation_speed(benchmark, tmp_path):
    """Images per second of the two-worker generator (timed under ``make bench-throughput``)."""
    params = SandboxParams(seed=11, train=2 * sandbox_dataset._PARALLEL_MIN_IMAGES, val=8)
    counter = iter(range(1000))
    root = benchmark.pedantic(lambda: generate_sandbox(tmp_path / f"r{next(counter)}", params, workers=2),
                              rounds=1, iterations=1)
    assert len(list((root / "train").iterdir())) == params.train
