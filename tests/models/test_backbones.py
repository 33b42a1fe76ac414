"""Backbone registry and pretrained loading with conv1 inflation (with checkpoints the tests make themselves)."""

import pytest
import torch
import torchvision

from posefix_bench.errors import PosefixError
from posefix_bench.models import BACKBONES, HEADS, build_backbone, build_head, build_refiner


def test_registry_has_the_torchvision_resnets():
    assert {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"} <= set(BACKBONES.module_dict)
    b = build_backbone("resnet50", 20)
    assert b.conv1.in_channels == 20 and b.out_channels == (256, 512, 1024, 2048)
    feats = b(torch.zeros(1, 20, 64, 48))
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 12), (8, 6), (4, 3), (2, 2)]


def test_pretrained_resnet_is_inflated_to_heatmap_channels(tmp_path):
    torch.manual_seed(3)
    imagenet = torchvision.models.resnet18(weights=None)  # stands in for ImageNet weights (none offline)
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in imagenet.state_dict().items()}}, path)
    model = build_refiner(dict(backbone="resnet18", input_size=(48, 64), pretrained=str(path)), seed=0)
    scratch = build_refiner(dict(backbone="resnet18", input_size=(48, 64)), seed=0)
    w = model.backbone.conv1.weight
    torch.testing.assert_close(w[:, :3], imagenet.conv1.weight)
    torch.testing.assert_close(w[:, 3:], scratch.backbone.conv1.weight[:, 3:])  # heatmap channels: own init
    torch.testing.assert_close(model.backbone.layer3[1].conv2.weight, imagenet.layer3[1].conv2.weight)
    torch.testing.assert_close(model.backbone.bn1.running_var, imagenet.bn1.running_var)


def test_pretrained_errors(tmp_path):
    cfg = dict(backbone="resnet18", input_size=(48, 64))
    with pytest.raises(PosefixError, match="pretrained checkpoint not found"):
        build_refiner({**cfg, "pretrained": str(tmp_path / "nope.pth")})
    other = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), other)
    with pytest.raises(PosefixError, match="r34.pth: holds a larger network than resnet18"):
        build_refiner({**cfg, "pretrained": str(other)})
    small = tmp_path / "r18_for_r34.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), small)
    with pytest.raises(PosefixError, match="does not hold a resnet34 body"):
        build_refiner({**cfg, "backbone": "resnet34", "pretrained": str(small)})
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PosefixError, match="junk.pth: cannot load pretrained checkpoint"):
        build_refiner({**cfg, "pretrained": str(junk)})


def test_backbones_and_heads_are_mmengine_registries_that_refuse_a_name_twice():
    assert set(HEADS.module_dict) == {"posefix", "prior", "skip", "prior+skip"}
    with pytest.raises(KeyError, match="already registered"):
        BACKBONES.register_module(name="resnet18", module=lambda in_channels: None)
    with pytest.raises(KeyError, match="already registered"):
        HEADS.register_module(name="prior", module=lambda *a, **k: None)
    head = build_head("prior+skip", (64, 128, 256, 512), (4, 8, 16, 32), 17, channels=32)
    assert head.spec.prior and head.spec.skip and head.stride == 4
    # only registered names: no mmengine scope keys or import paths, a one-line error naming the known ones
    for name in ("nope", "posefix_bench.resnet18", "torch.nn.Conv2d"):
        with pytest.raises(PosefixError, match=rf"unknown refiner backbone '{name}' \(known: resnet18, "):
            build_backbone(name, 20)
    with pytest.raises(PosefixError, match=r"unknown refiner head 'deconv' \(known: posefix, prior, skip, prior\+skip\)"):
        build_head("deconv", (64,), (4,), 17)
