"""Refiner bodies behind one registry: torchvision ResNets whose first convolution takes 3 + K channels.

PoseFix (Moon et al., CVPR 2019, Sec. 5) feeds a ResNet (He et al., CVPR 2016) the RGB crop concatenated with K
input-pose heatmaps, so conv1 takes 3 + K channels. The bodies are torchvision's ResNet-18/34/50/101/152 built with
``weights=None`` (no pretrained weights can be downloaded here); an ImageNet checkpoint can still be given by path
or URL (:func:`load_pretrained`, through mmengine's checkpoint loader), and its 3-channel conv1 is *inflated*: the
RGB filters are copied and the heatmap channels keep their random initialisation.

A backbone maps (B, 3 + K, H, W) to a list of feature maps, finest first, and exposes ``out_channels`` and
``strides`` for them (ResNet: the outputs of layer1..layer4 at strides 4, 8, 16, 32). Other bodies (e.g. mmpose's
HRNet) join :data:`BACKBONES` (an mmengine ``Registry``, which refuses a name registered twice) with the same
contract: ``BACKBONES.register_module(name=..., module=factory)`` with ``factory(in_channels) -> nn.Module``;
:func:`build_backbone` builds one by name.
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from posefix_bench.errors import PosefixError
from posefix_bench.registry import lookup, new_registry

__all__ = ["BACKBONES", "build_backbone", "ResNetBackbone", "load_pretrained"]

BACKBONES = new_registry("refiner backbone")


def build_backbone(name: str, in_channels: int) -> nn.Module:
    """The backbone registered as ``name`` for ``in_channels`` input channels; an unknown name is a one-line error."""
    return lookup(BACKBONES, name)(in_channels)


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without pooling and classifier; conv1 takes ``in_channels``.

    Attribute names equal torchvision's (conv1, bn1, layer1..layer4), so torchvision state dicts load directly.
    ``forward`` returns the outputs of layer1..layer4 (strides 4, 8, 16, 32).
    """

    def __init__(self, arch: str, in_channels: int):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, arch)(weights=None)
        self.arch = arch
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's init
        self.bn1, self.relu, self.maxpool = net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        e = net.layer1[0].expansion
        self.out_channels = (64 * e, 128 * e, 256 * e, 512 * e)
        self.strides = (4, 8, 16, 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return [c2, c3, c4, self.layer4(c4)]


def _resnet_factory(arch: str) -> Callable[[int], nn.Module]:
    def factory(in_channels: int) -> nn.Module:
        return ResNetBackbone(arch, in_channels)

    return factory


for _depth in (18, 34, 50, 101, 152):
    BACKBONES.register_module(name=f"resnet{_depth}", module=_resnet_factory(f"resnet{_depth}"))

_PREFIXES = ("module.", "backbone.")


def _read_checkpoint(source: str) -> dict:
    from mmengine.runner.checkpoint import CheckpointLoader

    is_url = "://" in source
    if not is_url and not os.path.isfile(source):
        raise PosefixError(f"{source}: pretrained checkpoint not found")
    try:
        ckpt = CheckpointLoader.load_checkpoint(source, map_location="cpu", logger="silent")
    except Exception as e:  # mmengine/torch raise many types (I/O, pickling, HTTP); report one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise PosefixError(f"{source}: cannot load pretrained checkpoint ({type(e).__name__}: {first})") from None
    if isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise PosefixError(f"{source}: not a state dict of tensors (expected a ResNet checkpoint)")
    return ckpt


def load_pretrained(backbone: nn.Module, source: str | os.PathLike) -> dict:
    """Load ResNet weights (a path or URL, read by mmengine's ``CheckpointLoader``) into ``backbone``.

    Keys may carry a ``module.`` or ``backbone.`` prefix (DDP / mmpose / mmpretrain checkpoints) and the checkpoint
    may wrap them in ``state_dict``; ``fc.*`` is ignored. A 3-channel conv1 is inflated to the backbone's input
    channels (RGB filters copied, heatmap channels kept as initialised). Anything missing or of the wrong shape is a
    one-line :class:`PosefixError`.

    Returns:
        ``{"source", "tensors", "inflated_conv1"}``.
    """
    source = os.fspath(source)
    raw = _read_checkpoint(source)
    sd = {}
    for k, v in raw.items():
        for p in _PREFIXES:
            k = k[len(p):] if k.startswith(p) else k
        sd[k] = v
    own = backbone.state_dict()
    modules = {k.split(".")[0] for k in own}
    extra = [k for k in sd if k not in own and k.split(".")[0] in modules]
    if extra:
        raise PosefixError(
            f"{source}: holds a larger network than {getattr(backbone, 'arch', 'the backbone')} "
            f"({len(extra)} extra weights, e.g. {extra[0]})"
        )
    sd = {k: v for k, v in sd.items() if k in own}
    inflated = False
    w = sd.get("conv1.weight")
    target = own["conv1.weight"]
    if w is not None and w.shape[1] == 3 and target.shape[1] > 3 and w.shape[0] == target.shape[0]:
        new = target.detach().clone()
        new[:, :3] = w.to(new.dtype)
        sd["conv1.weight"], inflated = new, True
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    if missing:
        raise PosefixError(
            f"{source}: does not hold a {getattr(backbone, 'arch', 'backbone')} body "
            f"({len(missing)} weights missing, e.g. {missing[0]})"
        )
    for k, v in sd.items():
        if v.shape != own[k].shape:
            raise PosefixError(f"{source}: {k} has shape {tuple(v.shape)}, the backbone needs {tuple(own[k].shape)}")
    backbone.load_state_dict(sd, strict=False)
    return {"source": source, "tensors": len(sd), "inflated_conv1": inflated}
