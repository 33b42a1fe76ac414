"""Refiner checkpoints: round trip, training extras, and one-line errors for everything that is not ours."""

import os

import numpy as np
import pytest
import torch

from posefix_bench.errors import PosefixError
from posefix_bench.models import CHECKPOINT_FORMAT, build_refiner, load_refiner, refiner_checkpoint, save_refiner

SMALL = dict(backbone="resnet18", input_size=(48, 64))


@pytest.fixture(scope="module")
def prior_model():
    return build_refiner({**SMALL, "head": "prior"}, seed=1)


def test_round_trip_keeps_config_weights_and_meta(prior_model, tmp_path):
    class Wrapper(torch.nn.Module):  # as DistributedDataParallel: the refiner under .module
        def __init__(self, module):
            super().__init__()
            self.module = module

    path = save_refiner(tmp_path / "ckpt" / "final.pth", Wrapper(prior_model), {"dataset": "coco-mini", "seed": 1})
    assert os.listdir(path.parent) == ["final.pth"]  # atomic: no temporary file left behind
    model, meta = load_refiner(path)
    assert meta == {"trained": False, "iterations": None, "seed": 1, "dataset": "coco-mini", "mix": None}
    assert model.config == prior_model.config and not model.training
    for k, v in prior_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_training_checkpoint_with_extra_keys_loads(prior_model, tmp_path):
    ckpt = refiner_checkpoint(prior_model, {"trained": True, "iterations": 20})
    ckpt.update(optimizer={"state": {}}, iteration=20, numpy_rng=np.random.default_rng(0).bit_generator.state,
                legacy_rng=np.random.RandomState(0).get_state())  # not loadable with weights_only=True
    path = tmp_path / "latest.pth"
    torch.save(ckpt, path)
    model, meta = load_refiner(path)
    assert meta["trained"] is True and meta["iterations"] == 20 and model.config.head == "prior"


def _write(path, obj):
    torch.save(obj, path)
    return path


def test_not_ours_or_mismatched_is_a_one_line_error(prior_model, tmp_path):
    good = refiner_checkpoint(prior_model, {"trained": False})
    other = build_refiner({**SMALL, "backbone": "resnet34", "head": "prior"})
    posefix_head = build_refiner({**SMALL, "head": "posefix"})
    cases = {
        tmp_path / "missing.pth": "refiner checkpoint not found",
        tmp_path: "is a directory",
        _write(tmp_path / "mmpose.pth", {"meta": {"mmpose_version": "1.3.2"}, "state_dict": {}}):
            "not a posefix-bench refiner checkpoint \\(it looks like an mmengine/mmpose checkpoint\\)",
        _write(tmp_path / "tensor.pth", torch.zeros(3)): "not a posefix-bench refiner checkpoint",
        _write(tmp_path / "future.pth", {**good, "format": "posefix-bench/refiner/v9"}): "unsupported checkpoint format",
        _write(tmp_path / "arch.pth", {**good, "state_dict": other.state_dict()}):
            "weights do not match its config \\(resnet18, head prior\\): .*unexpected",
        _write(tmp_path / "head.pth", {**good, "state_dict": posefix_head.state_dict()}):
            "weights do not match its config .*1 missing \\(e.g. head.prior_weight\\)",
        _write(tmp_path / "name.pth", {**good, "config": {**good["config"], "head": "attention"}}):
            "unknown refiner head 'attention'",
        _write(tmp_path / "cfg.pth", {**good, "config": {**good["config"], "depth": 3}}): "unknown refiner setting",
    }
    (tmp_path / "junk.pth").write_bytes(b"\x00garbage")
    cases[tmp_path / "junk.pth"] = "cannot be read as a torch checkpoint"
    for path, message in cases.items():
        with pytest.raises(PosefixError, match=message) as e:
            load_refiner(path)
        assert "\n" not in str(e.value) and str(e.value).startswith(str(path)), str(e.value)
    with pytest.raises(PosefixError, match="is a refiner with head='prior', expected 'skip'"):
        load_refiner(_write(tmp_path / "ok.pth", good), expect={"head": "skip"})
    assert good["format"] == CHECKPOINT_FORMAT


def test_trained_must_be_a_bool(prior_model, tmp_path):
    with pytest.raises(PosefixError, match="'trained' must be true or false"):
        save_refiner(tmp_path / "x.pth", prior_model, {"trained": "yes"})
    assert not (tmp_path / "x.pth").exists()
