"""Refiner training: configs and schedule, overfitting 16 coco-mini crops, and a short real coco-mini run whose refined
validation results ``evaluate`` and ``diagnose`` accept (issue 5's acceptance)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posefix_bench import cli
from posefix_bench.engine.train import lr_at, load_config, milestone_iterations, parse_config, train
from posefix_bench.errors import PosefixError

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "ablations" / "_base_" / "refiner.py"
MINI = REPO / "ablations" / "coco-mini" / "r18_64x48_paper_lb-off_skip_train-cocomini.py"


def test_base_config_is_the_published_schedule():
    cfg = load_config(BASE, {"data.root": "/data/coco"})
    model, data, tr = parse_config(cfg)
    assert model["backbone"] == "resnet50" and tuple(model["input_size"]) == (192, 256) and model["head"] == "posefix"
    assert (tr.lr, tr.milestones, tr.gamma, tr.epochs, tr.batch_size, tr.seed) == (5e-4, (90, 120), 0.1, 140, 32, 0)
    assert (data.scale_factor, data.rotation_factor, data.flip, data.mix) == (0.3, 40, True, "paper")
    assert data.lower_body["p"] == 0.0 and (data.train_split, data.val_split) == ("train2017", "val2017")
    with pytest.raises(PosefixError, match="data.root is not set"):
        parse_config(load_config(BASE))


def test_coco_mini_config_and_overrides(coco_mini_root):
    cfg = load_config(MINI, {"train.max_iters": 7, "model.head": "prior"})
    model, data, tr = parse_config(cfg)
    assert Path(data.root).resolve() == Path(coco_mini_root).resolve()
    assert tr.max_iters == 7 and model["head"] == "prior" and model["backbone"] == "resnet18"
    with pytest.raises(PosefixError, match="unknown key train.max_iter "):
        parse_config(load_config(MINI, {"train.max_iter": 7}))
    with pytest.raises(PosefixError, match="config file not found"):
        load_config(REPO / "ablations" / "nope.py")


def test_milestones_keep_their_fraction_of_a_shortened_schedule():
    _, _, tr = parse_config(load_config(BASE, {"data.root": "x"}))
    assert milestone_iterations(tr, iters_per_epoch=10) == [900, 1200]
    _, _, short = parse_config(load_config(BASE, {"data.root": "x", "train.max_iters": 140}))
    ms = milestone_iterations(short, iters_per_epoch=10)
    assert ms == [90, 120]
    assert [lr_at(i, 5e-4, ms, 0.1) for i in (0, 89, 90, 119, 120, 139)] == pytest.approx(
        [5e-4, 5e-4, 5e-5, 5e-5, 5e-6, 5e-6])


def test_bad_data_root_is_a_one_line_error_before_anything_is_written(tmp_path):
    with pytest.raises(PosefixError, match="data root not found"):
        train(load_config(MINI, {"data.root": str(tmp_path / "nowhere")}), tmp_path / "wd")
    assert not (tmp_path / "wd").exists()  # nothing written before the inputs were checked


def _tiny(**extra) -> dict:
    return {"train.max_iters": 2, "train.batch_size": 4, "train.threads": 1, "train.num_workers": 0,
            "train.log_interval": 1, "train.checkpoint_interval": 2, "data.max_samples": 8, "data.cache_images": True,
            "model.deconv_channels": 32, **extra}


@pytest.mark.parametrize("amp,precision", [("fp32", "fp32"), ("bf16", "bf16"), (False, "fp32")])
def test_an_explicit_precision_is_honoured_without_a_probe(amp, precision, tmp_path, monkeypatch):
    import torch

    from posefix_bench.engine import precision as P
    from posefix_bench.engine.train import Trainer

    monkeypatch.setattr(P, "measure", lambda *a, **k: pytest.fail("an explicit precision must not probe"))
    trainer = Trainer(load_config(MINI, _tiny(**{"train.amp": amp})), tmp_path / "wd")
    assert (trainer.precision["precision"], trainer.precision["decided_by"]) == (precision, "explicit")
    seen = []
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    trainer.forward_backward(trainer.batch(0))
    assert seen == [{"fp32": torch.float32, "bf16": torch.bfloat16}[precision]]  # the convolutions ran in it


@pytest.mark.parametrize("amp,message", [("fp16", "train.amp='fp16' needs CUDA"), ("half", "train.amp must be")])
def test_bad_precision_is_a_one_line_error_before_anything_is_written(amp, message, tmp_path):
    with pytest.raises(PosefixError, match=message):
        train(load_config(MINI, _tiny(**{"train.amp": amp})), tmp_path / "wd")
    assert not (tmp_path / "wd").exists()


def test_auto_precision_is_probed_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    from posefix_bench.engine import precision as P
    from posefix_bench.engine.train import Trainer, resolve_train_precision
    from posefix_bench.models import load_refiner

    P.clear_probe_cache()
    wd = tmp_path / "wd"
    cfg = load_config(MINI, _tiny())  # train.amp='auto' from ablations/_base_/quick.py
    summary = train(cfg, wd)
    rec = summary["precision_record"]
    assert rec["decided_by"] == "probe" and summary["precision"] == rec["precision"] in ("fp32", "bf16")
    assert rec["ms_per_step"]["fp32"] > 0 and rec["probe"]["batch"] == 4 and rec["kind"] == "train"
    assert json.loads((wd / "train_summary.json").read_text())["precision_record"] == rec
    _, meta = load_refiner(wd / "final.pth")
    assert meta["precision"] == rec["precision"] and meta["precision_record"] == rec
    # the bench's view of the same config: the same (cached) probe, so the same precision in its cache key
    from posefix_bench.structures.coco import CocoDataset, coco_split_paths

    schema = CocoDataset(coco_split_paths(cfg.data.root, "train2017")[0]).schema
    assert resolve_train_precision(cfg, schema) == rec

    P.clear_probe_cache()  # a resumed run keeps its precision, whatever this device would measure now
    monkeypatch.setattr(P, "measure", lambda *a, **k: pytest.fail("a resumed run must not probe"))
    again = Trainer(cfg, wd)
    assert again.precision["precision"] == rec["precision"] and again.precision["kept_from"].endswith("latest.pth")


@pytest.mark.slow
def test_overfitting_16_crops_cuts_the_coordinate_loss_by_90_percent(tmp_path):
    """16 fixed coco-mini persons, no augmentation, the published head (no identity prior to lean on)."""
    cfg = load_config(MINI, {
        "data.max_samples": 16, "data.cache_images": True, "data.scale_factor": 0.0, "data.rotation_factor": 0.0,
        "data.flip": False, "model.head": "posefix", "model.deconv_channels": 64, "train.batch_size": 16,
        "train.max_iters": 30, "train.lr": 1e-3, "train.log_interval": 1, "train.checkpoint_interval": 1000,
        "train.threads": 1, "train.num_workers": 0,
    })
    record = train(cfg, tmp_path / "overfit")
    log = [json.loads(x) for x in (tmp_path / "overfit" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 30 and record["iterations"] == 30
    first, last = log[0]["loss_coord"], log[-1]["loss_coord"]
    assert last <= 0.1 * first, (first, last)
    assert record["final_loss"] == log[-1]["loss"]


@pytest.mark.slow
def test_short_coco_mini_training_then_refine_evaluate_diagnose(tmp_path, val_gt_path, coco_mini_root, capsys):
    wd = tmp_path / "run"
    opts = {"train.max_iters": 24, "train.batch_size": 8, "train.threads": 1, "train.log_interval": 8,
            "train.checkpoint_interval": 12, "model.deconv_channels": 64}
    assert cli.main(["train", "--config", str(MINI), "--work-dir", str(wd), "--precision", "fp32", "--cfg-options",
                     *[f"{k}={v}" for k, v in opts.items()]]) == 0
    printed = capsys.readouterr().out
    assert "trained 24 iterations" in printed and "precision: fp32 (set explicitly)" in printed
    opts["train.amp"] = "fp32"  # what --precision set, for the resumes below
    assert sorted(p.name for p in (wd / "checkpoints").iterdir()) == ["iter_12.pth", "iter_24.pth", "latest.pth"]
    assert (wd / "config.py").is_file() and any((wd / "tensorboard").iterdir())
    log = [json.loads(x) for x in (wd / "train_log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log] == [8, 16, 24] and all(r["samples_per_s"] > 0 for r in log)
    with pytest.raises(PosefixError, match="already holds a training run"):
        train(load_config(MINI, opts), wd)
    with pytest.raises(PosefixError, match=r"different config \(train.lr"):
        train(load_config(MINI, dict(opts, **{"train.lr": 0.1})), wd, resume=True)
    done = train(load_config(MINI, dict(opts, **{"train.num_workers": 1})), wd, resume=True)  # nothing left to do
    assert done["resumed_from"] == 24 and done["trained_iterations"] == 0

    res, ref = tmp_path / "synth.json", tmp_path / "refined.json"
    assert cli.main(["synthesize", "--gt", str(val_gt_path), "--mix", "paper", "--seed", "0", "--out", str(res)]) == 0
    assert cli.main(["refine", "--checkpoint", str(wd / "final.pth"), "--images", str(coco_mini_root / "val2017"),
                     "--gt", str(val_gt_path), "--results", str(res), "--out", str(ref)]) == 0
    err = capsys.readouterr().err
    assert "UNTRAINED" not in err
    inputs, refined = json.loads(res.read_text()), json.loads(ref.read_text())
    assert len(refined) == len(inputs) and all("untrained" not in r for r in refined)
    assert [(r["image_id"], r["score"]) for r in refined] == [(r["image_id"], r["score"]) for r in inputs]
    assert cli.main(["evaluate", "--gt", str(val_gt_path), "--results", str(ref)]) == 0
    assert cli.main(["diagnose", "--gt", str(val_gt_path), "--results", str(res), "--refined", str(ref),
                     "--out", str(tmp_path / "diag"), "--no-plots", "--no-ap-impact"]) == 0
    assert (tmp_path / "diag" / "diagnosis.json").is_file()
