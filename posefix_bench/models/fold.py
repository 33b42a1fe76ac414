"""Inference-time BatchNorm folding: each eval-mode BN merged into the convolution before it.

In eval mode a BatchNorm is a per-channel affine map, so ``BN(conv(x)) = conv'(x)`` with rescaled weights and a
bias (the standard deployment transform, e.g. Jacob et al., CVPR 2018, Sec. 3.2; ``torch.nn.utils.fusion``). It
removes one full read and write of every activation per BN, which is a large share of a CPU forward pass. The
outputs equal the unfolded model's up to float rounding; the folded model is for inference only and cannot be saved
as a refiner checkpoint (its weights no longer match its config).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from posefix_bench.errors import PosefixError

__all__ = ["fold_batchnorm", "is_folded"]

_FOLDED = "_posefix_bn_folded"


def is_folded(model: nn.Module) -> bool:
    return bool(getattr(model, _FOLDED, False))


def _fold_resnet(body: nn.Module) -> None:
    body.conv1, body.bn1 = fuse_conv_bn_eval(body.conv1, body.bn1), nn.Identity()
    for layer in (body.layer1, body.layer2, body.layer3, body.layer4):
        for block in layer:
            for i in (1, 2, 3):
                conv, bn = getattr(block, f"conv{i}", None), getattr(block, f"bn{i}", None)
                if conv is not None:
                    setattr(block, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                    setattr(block, f"bn{i}", nn.Identity())
            if block.downsample is not None:
                block.downsample = nn.Sequential(fuse_conv_bn_eval(block.downsample[0], block.downsample[1]))


def _fold_head(head: nn.Module) -> None:
    last = len(head.ups) - 1
    for i, (up, bn) in enumerate(zip(head.ups, head.bns)):
        if i == last and head.skip_level is not None:  # BN(up(x) + skip(c)) = BN'(up(x)) + scale * skip(c)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            skip = copy.deepcopy(head.skip)
            skip.weight.data.mul_(scale.view(-1, 1, 1, 1))
            head.skip = skip
        head.ups[i] = fuse_conv_bn_eval(up, bn, transpose=True)
        head.bns[i] = nn.Identity()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of a :class:`~posefix_bench.models.Refiner` (eval mode) with every BatchNorm folded into its conv
    (a model folded already is copied as it is)."""
    from posefix_bench.models.backbones import ResNetBackbone

    if not isinstance(model.backbone, ResNetBackbone):
        raise PosefixError(f"fold_batchnorm: no folding rule for backbone {type(model.backbone).__name__}")
    folded = copy.deepcopy(model).eval()
    if is_folded(model):  # folding twice would look for BatchNorms that are gone
        return folded
    with torch.no_grad():
        _fold_resnet(folded.backbone)
        _fold_head(folded.head)
    setattr(folded, _FOLDED, True)
    return folded
