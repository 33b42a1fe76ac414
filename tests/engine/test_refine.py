"""Refinement as a post-processor: crops, mapping back to the image, one-to-one records, untrained marking,
the RefinedSource wrapper and the ``refine`` command's one-line errors (nothing written on failure)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from posefix_bench import cli
from posefix_bench.engine.refine import KEYPOINT_BOX_SCALE, RefinedSource, RefinePostProcessor, crop_matrices
from posefix_bench.models import build_refiner, save_refiner
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import absent_mask
from posefix_bench.structures.transforms import apply_affine, box_to_center_scale
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import synthesize_results

SIZE = (48, 64)


@pytest.fixture(scope="module")
def prior_model():
    """The ``prior`` head at initialisation reproduces its input pose (up to the output grid): an identity refiner
    that makes the crop -> refine -> image mapping checkable to the pixel."""
    return build_refiner(dict(backbone="resnet18", head="prior", input_size=SIZE, deconv_channels=32), seed=0)


@pytest.fixture(scope="module")
def untrained_ckpt(tmp_path_factory, prior_model):
    path = tmp_path_factory.mktemp("ckpt") / "untrained.pth"
    save_refiner(path, prior_model, {"trained": False})
    return path


@pytest.fixture(scope="module")
def val_results(val_gt):
    return synthesize_results(val_gt, get_mix("paper", val_gt.schema), seed=3)


def _few(results, n_images: int = 3):
    ids = sorted({r["image_id"] for r in results})[:n_images]
    return [r for r in results if r["image_id"] in ids]


def test_crop_box_is_the_keypoint_box_enlarged_by_1_2_or_the_bbox():
    kp = np.zeros((2, 17, 3))
    kp[:, :, 2] = 1.0
    kp[:, :, 0] = np.linspace(100, 140, 17)  # 40 px wide
    kp[:, :, 1] = np.linspace(50, 130, 17)  # 80 px high
    kp[1, 3] = 0.0  # an absent keypoint at (0, 0) must not stretch the box
    bb = np.array([[10.0, 20.0, 60.0, 90.0], [np.nan] * 4])
    mats, ok = crop_matrices(kp, bb, SIZE, box="keypoints")
    assert ok.all()
    center, scale = box_to_center_scale(np.array([120 - 24, 90 - 48, 48, 96]), SIZE[0] / SIZE[1])
    assert KEYPOINT_BOX_SCALE == 1.2
    # the box center maps to the crop center, its scale to the crop size
    np.testing.assert_allclose(apply_affine(center[None], mats[0])[0], [SIZE[0] / 2, SIZE[1] / 2], atol=1e-9)
    np.testing.assert_allclose(mats[0, 1, 1], SIZE[1] / scale[1])
    np.testing.assert_allclose(mats[1], mats[0], atol=1e-9)
    mats_b, ok_b = crop_matrices(kp, bb, SIZE, box="bbox")
    assert ok_b.tolist() == [True, False]
    c_b, s_b = box_to_center_scale(bb[0], SIZE[0] / SIZE[1])
    np.testing.assert_allclose(apply_affine(c_b[None], mats_b[0])[0], [SIZE[0] / 2, SIZE[1] / 2], atol=1e-9)


def test_refine_is_one_to_one_keeps_fields_and_maps_back_to_the_image(val_gt, val_results, prior_model):
    records = [dict(r, track_id=i, bbox=[1.0, 2.0, 3.0, 4.0]) for i, r in enumerate(_few(val_results, 4))]
    kp = np.asarray([r["keypoints"] for r in records]).reshape(len(records), 17, 3)
    records[0]["keypoints"][3 * 5:3 * 5 + 3] = [0.0, 0.0, 0.0]  # an absent keypoint stays absent
    post = RefinePostProcessor(prior_model, batch_size=3, precision="fp32")  # batches straddle images
    out = post.refine(val_gt, records)
    assert len(out) == len(records)
    for r_in, r_out in zip(records, out):
        assert {k: v for k, v in r_out.items()
                if k not in ("keypoints", "refined_by", "refine_precision", "untrained")} == \
            {k: v for k, v in r_in.items() if k != "keypoints"}
        assert r_out["refined_by"] == "refiner" and r_out["untrained"] is True  # no meta: never passed as trained
        assert r_out["refine_precision"] == "fp32"
    ref = np.asarray([r["keypoints"] for r in out]).reshape(len(out), 17, 3)
    assert ref[0, 5].tolist() == [0.0, 0.0, 0.0]
    present = ~absent_mask(kp)
    present[0, 5] = False
    # identity refiner: refined == input within half an output-grid cell (stride 4 crop px, in image px)
    mats, _ = crop_matrices(kp, None, SIZE)
    image_px_per_crop_px = 1.0 / mats[:, 0, 0]
    err = np.linalg.norm(ref[..., :2] - kp[..., :2], axis=-1)
    tol = 0.5 * prior_model.stride * image_px_per_crop_px[:, None]
    assert (err[present] <= tol.repeat(17, 1)[present]).all(), (err / tol)[present].max()
    assert ((ref[..., 2] > 0) & (ref[..., 2] <= 1))[present].all()  # the model's confidence


def test_refine_image_api_flip_and_degenerate_poses(val_gt, val_results, prior_model):
    image_id = val_results[0]["image_id"]
    recs = [r for r in val_results if r["image_id"] == image_id]
    kp = np.asarray([r["keypoints"] for r in recs]).reshape(len(recs), 17, 3)
    lone = np.zeros((1, 17, 3))
    lone[0, 0] = [50.0, 60.0, 0.9]  # one keypoint: no box can be formed
    kp = np.concatenate([kp, lone])
    post = RefinePostProcessor(prior_model, flip=True, meta={"trained": True}, name="prior-init")
    refined, ok = post.refine_image(val_gt.read_image(image_id), kp, flip_index=val_gt.schema.flip_index)
    assert ok.tolist() == [True] * len(recs) + [False]
    assert np.array_equal(refined[-1], kp[-1])
    assert np.isfinite(refined).all()
    rec = post.output_record({"image_id": 1, "score": 0.5}, refined[-1], False)
    assert "refine_skipped" in rec and "untrained" not in rec and rec["refined_by"] == "prior-init"


def test_explicit_precision_is_honoured_and_auto_is_probed(val_gt, val_results, prior_model, monkeypatch):
    """Explicit bf16 runs in bf16 (within a fraction of a heatmap cell of fp32) without a probe; auto probes this
    network on this device and names the choice; fp16 needs CUDA (issue 21)."""
    from posefix_bench.engine import precision as P
    from posefix_bench.errors import PosefixError

    records = _few(val_results, 1)
    fp32 = RefinePostProcessor(prior_model, batch_size=4, precision="fp32").refine(val_gt, records)
    with monkeypatch.context() as m:
        m.setattr(P, "measure", lambda *a, **k: pytest.fail("an explicit precision must not probe"))
        post = RefinePostProcessor(prior_model, batch_size=4, precision="bf16")
    assert (post.precision, post.precision_record["decided_by"]) == ("bf16", "explicit")
    bf16 = post.refine(val_gt, records)
    assert {r["refine_precision"] for r in bf16} == {"bf16"}
    a = np.asarray([r["keypoints"] for r in fp32]).reshape(-1, 17, 3)
    b = np.asarray([r["keypoints"] for r in bf16]).reshape(-1, 17, 3)
    assert not np.array_equal(a, b)  # it really ran in another precision ...
    scale = 1.0 / crop_matrices(a, None, SIZE)[0][:, 0, 0]  # ... within half an output cell (image px)
    assert (np.linalg.norm(a[..., :2] - b[..., :2], axis=-1) <= 0.5 * prior_model.stride * scale[:, None]).all()

    auto = RefinePostProcessor(prior_model, batch_size=4)
    rec = auto.precision_record
    assert rec["decided_by"] == "probe" and auto.precision == rec["precision"] in ("fp32", "bf16")
    assert rec["kind"] == "infer" and rec["probe"]["bn_folded"] and rec["probe"]["batch"] == 4
    with pytest.raises(PosefixError, match=r"^refine: precision='fp16' needs CUDA"):
        RefinePostProcessor(prior_model, precision="fp16")


def test_refined_source_wraps_any_source(val_gt, prior_model):
    from posefix_bench.sources.files import SyntheticSource

    upstream = SyntheticSource(mix="jitter", seed=1)
    source = RefinedSource(upstream, RefinePostProcessor(prior_model, meta={"trained": True}))
    assert source.info.kind == "refined" and source.name.startswith(upstream.name)
    small = CocoDataset(val_gt.path)
    keep = sorted(small.coco.imgs)[:2]  # a 2-image ground truth keeps the test fast
    small.coco.imgs = {i: small.coco.imgs[i] for i in keep}
    small.coco.dataset["images"] = [im for im in small.coco.dataset["images"] if im["id"] in keep]
    small.coco.dataset["annotations"] = [a for a in small.coco.dataset["annotations"] if a["image_id"] in keep]
    small.coco.createIndex()
    base = upstream.predict(small)
    out = source.predict(small)
    assert len(out) == len(base) > 0
    assert [r["score"] for r in out] == [r["score"] for r in base]
    assert all(r["refined_by"] == "refiner" for r in out)


# -- the command ---------------------------------------------------------------------------------------------------
def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def _image_dir(tmp_path, gt, image_ids, corrupt=None):
    d = tmp_path / "images"
    d.mkdir()
    for i in image_ids:
        src = gt.image_path(i)
        if i == corrupt:
            (d / src.name).write_bytes(b"not a jpeg at all")
        else:
            os.symlink(src, d / src.name)
    return d


def _refine(tmp_path, ckpt, images, gt_path, results_path, capsys, *extra):
    out = tmp_path / "refined.json"
    code = cli.main(["refine", "--checkpoint", str(ckpt), "--images", str(images), "--gt", str(gt_path),
                     "--results", str(results_path), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, out, captured


def test_refine_command_writes_results_and_warns_when_untrained(tmp_path, val_gt, val_gt_path, val_results,
                                                                untrained_ckpt, capsys):
    few = _few(val_results, 2)
    res = _write(tmp_path / "res.json", few)
    images = _image_dir(tmp_path, val_gt, sorted({r["image_id"] for r in few}))
    code, out, cap = _refine(tmp_path, untrained_ckpt, images, val_gt_path, res, capsys, "--flip",
                             "--precision", "fp32")
    assert code == 0, cap.err
    assert "UNTRAINED" in cap.err and "precision: fp32 (set explicitly)" in cap.out
    refined = json.loads(out.read_text())
    assert len(refined) == len(few) and all(r["untrained"] is True for r in refined)
    assert [r["score"] for r in refined] == [r["score"] for r in few]


def _one_line_error(code, out, cap, *fragments):
    assert code == 2
    assert "Traceback" not in cap.err
    lines = [x for x in cap.err.splitlines() if "refine: error: " in x]  # (beside a warning or a progress bar)
    assert len(lines) == 1, cap.err
    for f in fragments:
        assert f in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".refined")]  # no temporary leftovers


def test_refine_command_missing_foreign_and_mismatched_checkpoints(tmp_path, val_gt, val_gt_path, val_results,
                                                                   untrained_ckpt, capsys):
    few = _few(val_results, 1)
    res = _write(tmp_path / "res.json", few)
    images = _image_dir(tmp_path, val_gt, sorted({r["image_id"] for r in few}))

    missing = tmp_path / "nope.pth"
    _one_line_error(*_refine(tmp_path, missing, images, val_gt_path, res, capsys), str(missing), "not found")

    foreign = tmp_path / "mmpose_like.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}, "meta": {}}, foreign)
    _one_line_error(*_refine(tmp_path, foreign, images, val_gt_path, res, capsys), str(foreign),
                    "not a posefix-bench refiner checkpoint")

    other = tmp_path / "other_arch.pth"
    ckpt = torch.load(untrained_ckpt, map_location="cpu", weights_only=True)
    ckpt["config"]["backbone"] = "resnet34"  # weights of a resnet18 under a resnet34 config
    torch.save(ckpt, other)
    _one_line_error(*_refine(tmp_path, other, images, val_gt_path, res, capsys), str(other), "do not match")


def test_refine_command_missing_and_unreadable_images(tmp_path, val_gt, val_gt_path, val_results, untrained_ckpt,
                                                      capsys):
    few = _few(val_results, 3)
    ids = sorted({r["image_id"] for r in few})
    res = _write(tmp_path / "res.json", few)
    images = _image_dir(tmp_path, val_gt, ids[:1])  # the results' other images are not in --images
    first_missing = images / val_gt.image_path(ids[1]).name
    _one_line_error(*_refine(tmp_path, untrained_ckpt, images, val_gt_path, res, capsys), str(first_missing),
                    "image not found")

    (tmp_path / "bad").mkdir()
    bad_images = _image_dir(tmp_path / "bad", val_gt, ids, corrupt=ids[2])
    corrupt = bad_images / val_gt.image_path(ids[2]).name
    _one_line_error(*_refine(tmp_path, untrained_ckpt, bad_images, val_gt_path, res, capsys), str(corrupt),
                    "cannot be decoded")
