"""Refiner heads: PoseFix's deconvolution head and the identity-prior / stride-4-skip variants (issue 11).

``posefix`` (published; Moon et al., CVPR 2019, Sec. 5, as SimpleBaseline, Xiao et al., ECCV 2018): three 4x4
stride-2 transposed convolutions (256 channels, BN, ReLU) on the last backbone stage, then a 1x1 convolution to K
heatmap logits at stride 4. Initialisation as the released code: deconvolutions N(0, 0.01), the 1x1 output MSRA.

Variants from the feasibility note (``../shared/notes/refiner-feasibility.md``), each one flag of this module:

- ``prior``: an identity prior. The input-pose heatmaps (rendered at input resolution for the body) are average-
  pooled to the output grid and added to the output logits with a learnable per-joint weight, so the network starts
  by reproducing its input pose and learns corrections. Under the soft-argmax the prior must be a log-probability
  for that to hold: ``prior_form="log"`` (default) adds ``w * log(pooled + e**-10)``, whose softmax is the pooled
  Gaussian itself (mean = the input keypoint) and whose range is bounded to [-10 w, 0] like the note's; the 1x1
  output layer starts at N(0, 0.001) so random logits do not move the decoded position. ``prior_form="linear"``
  adds ``w * pooled`` with w = 10 as in the note; its flat background keeps several percent of the softmax mass
  and pulls the decoded point towards the crop center (measured in tests/models).
- ``skip``: a 1x1 projection of the backbone stage at the output stride (ResNet layer1 at stride 4) added into the
  last upsampling layer (after its transposed convolution, before its BN and ReLU).
- ``prior+skip``: both.

The variants are registered in :data:`HEADS` (an mmengine ``Registry``, which refuses a name registered twice) as
``factory(in_channels, strides, num_keypoints, **options) -> nn.Module``; :func:`build_head` builds one by name.

Shape legend: B batch, K keypoints, H x W input, h x w output grid (h = H / stride).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from posefix_bench.errors import PosefixError
from posefix_bench.registry import lookup, new_registry

__all__ = ["HeadSpec", "HEADS", "build_head", "check_head", "DeconvHead", "PRIOR_FLOOR"]

PRIOR_FLOOR = math.exp(-10.0)  # log prior in [-10, 0]: the same logit range as the note's 10 * heatmap


@dataclass(frozen=True)
class HeadSpec:
    """Which additions a head variant has on top of the published deconvolution head."""

    prior: bool = False
    skip: bool = False


HEADS = new_registry("refiner head")


def check_head(name: str) -> None:
    """A one-line error unless ``name`` is a registered head (checked before any construction work)."""
    lookup(HEADS, name)


def build_head(name: str, in_channels: tuple[int, ...], strides: tuple[int, ...], num_keypoints: int,
               **options) -> nn.Module:
    """The head registered as ``name`` on backbone features of ``in_channels`` at ``strides`` (finest first), with
    K = ``num_keypoints`` outputs; ``options``: :class:`DeconvHead`'s keywords (channels, num_deconv, prior_*)."""
    return lookup(HEADS, name)(in_channels, strides, num_keypoints, **options)


class DeconvHead(nn.Module):
    """Transposed-convolution head with optional identity prior and skip connection.

    Args:
        in_channels: channels of each backbone feature map (finest first).
        strides: their strides.
        num_keypoints: K.
        spec: the variant.
        channels: deconvolution channels (256).
        num_deconv: number of stride-2 deconvolutions; output stride 32 / 2**num_deconv.
        prior_form, prior_weight: see the module docstring.
    """

    def __init__(
        self,
        in_channels: tuple[int, ...],
        strides: tuple[int, ...],
        num_keypoints: int,
        spec: HeadSpec,
        channels: int = 256,
        num_deconv: int = 3,
        prior_form: str = "log",
        prior_weight: float = 1.0,
    ):
        super().__init__()
        self.spec = spec
        self.stride = strides[-1] // 2**num_deconv
        self.prior_form = prior_form
        cins = [in_channels[-1]] + [channels] * (num_deconv - 1)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(c, channels, 4, stride=2, padding=1, bias=False) for c in cins)
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in cins)
        self.final = nn.Conv2d(channels, num_keypoints, kernel_size=1)
        self.skip_level = None
        if spec.skip:
            if self.stride not in strides:
                raise PosefixError(f"refiner head: no backbone stage at the output stride {self.stride} for the skip")
            self.skip_level = strides.index(self.stride)
            self.skip = nn.Conv2d(in_channels[self.skip_level], channels, kernel_size=1, bias=False)
        if spec.prior:
            self.prior_weight = nn.Parameter(torch.full((num_keypoints,), float(prior_weight)))
        self._init_weights()

    def _init_weights(self) -> None:
        for up in self.ups:
            nn.init.normal_(up.weight, std=0.01)
        if self.spec.skip:
            nn.init.normal_(self.skip.weight, std=0.01)
        if self.spec.prior:  # start as the identity: random logits must not move the decoded position
            nn.init.normal_(self.final.weight, std=0.001)
        else:
            nn.init.kaiming_normal_(self.final.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.final.bias)

    def prior_logits(self, input_heatmaps: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) input heatmaps -> (B, K, h, w) float32 prior term before the per-joint weight."""
        pooled = input_heatmaps.to(torch.float32)
        if self.stride > 1:
            pooled = F.avg_pool2d(pooled, self.stride)
        if self.prior_form == "log":
            return torch.log(pooled + PRIOR_FLOOR)
        return pooled

    def forward(
        self, features: list[torch.Tensor], input_heatmaps: torch.Tensor, out_size: tuple[int, int]
    ) -> torch.Tensor:
        """Features (finest first) and the (B, K, H, W) input heatmaps -> (B, K, h, w) logits; out_size = (h, w)."""
        h, w = out_size
        x = features[-1]
        last = len(self.ups) - 1
        for i, (up, bn) in enumerate(zip(self.ups, self.bns)):
            x = up(x)
            if i == last:
                x = x[..., :h, :w]  # the body rounds odd sizes up; keep the top-left h x w (origin aligned)
                if self.skip_level is not None:
                    x = x + self.skip(features[self.skip_level])
            x = F.relu(bn(x))
        logits = self.final(x)
        if self.spec.prior:
            logits = logits.to(torch.float32) + self.prior_weight.view(1, -1, 1, 1) * self.prior_logits(input_heatmaps)
        return logits


for _name, _spec in (("posefix", HeadSpec()), ("prior", HeadSpec(prior=True)), ("skip", HeadSpec(skip=True)),
                     ("prior+skip", HeadSpec(prior=True, skip=True))):
    HEADS.register_module(name=_name, module=functools.partial(DeconvHead, spec=_spec))
