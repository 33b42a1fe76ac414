"""The PoseFix refiner network, its factory, its loss and the flip test.

PoseFix (Moon et al., CVPR 2019, Sec. 5): the input is the RGB crop concatenated with K Gaussian heatmaps of the
input pose (rendered inside ``forward`` by :func:`posefix_bench.codecs.heatmap.render_heatmaps`, on the model's
device, masked for unset joints); a ResNet body and a deconvolution head (:mod:`posefix_bench.models.heads`) give K
heatmap logits at stride 4; coordinates come out by soft-argmax (integral regression, Sun et al., ECCV 2018). The
loss is the softmax cross-entropy against a bilinear one-hot target plus L1 on the coordinates (in output-grid
pixels, as the released code), both masked by target validity.

Shape legend: B batch, K keypoints, H x W input crop, h x w output grid.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from posefix_bench.codecs.heatmap import (
    bilinear_target,
    flip_heatmaps,
    grid_to_input,
    input_to_grid,
    peak_mass,
    render_heatmaps,
    soft_argmax,
)
from posefix_bench.errors import PosefixError
from posefix_bench.models.backbones import build_backbone, load_pretrained
from posefix_bench.models.config import RefinerConfig
from posefix_bench.models.heads import build_head, check_head
from posefix_bench.structures.schema import SCHEMAS
from posefix_bench.structures.transforms import flip_keypoints

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Refiner", "build_refiner", "refiner_loss", "flip_test"]

# torchvision's ImageNet normalisation (RGB, in [0, 1] units)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Refiner(nn.Module):
    """Image crop + input pose -> refined pose. Build it with :func:`build_refiner`.

    Attributes:
        config: the :class:`RefinerConfig` (resolved).
        backbone, head: the body and the deconvolution head.
        stride: output stride; ``config.output_size`` is the (w, h) output grid.
    """

    def __init__(self, config: RefinerConfig):
        super().__init__()
        self.config = config
        check_head(config.head)
        self.backbone = build_backbone(config.backbone, config.in_channels)
        self.head = build_head(
            config.head, tuple(self.backbone.out_channels), tuple(self.backbone.strides), config.num_keypoints,
            channels=config.deconv_channels, num_deconv=config.num_deconv,
            prior_form=config.prior_form, prior_weight=config.prior_weight,
        )
        self.stride = self.head.stride
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, images) -> torch.Tensor:
        """uint8 crops (B, 3, H, W) or (B, H, W, 3), RGB, tensor or array -> normalised float32 on the model's device.

        NHWC input comes out as a channels_last-strided NCHW tensor (no copy of the layout).
        """
        x = torch.as_tensor(images)
        if x.dtype != torch.uint8:
            raise PosefixError(f"refiner preprocess: expected uint8 images, got {x.dtype}")
        if x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3:
            x = x.permute(0, 3, 1, 2)
        w, h = self.config.input_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, h, w):
            raise PosefixError(f"refiner preprocess: expected (B, 3, {h}, {w}) or (B, {h}, {w}, 3) crops, got {tuple(x.shape)}")
        x = x.to(self.device, non_blocking=True).to(torch.float32)
        return (x - self.pixel_mean) / self.pixel_std

    def _check_inputs(self, images: torch.Tensor, pose: torch.Tensor, pose_valid: torch.Tensor) -> None:
        w, h = self.config.input_size
        k = self.config.num_keypoints
        b = images.shape[0]
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, h, w):
            raise PosefixError(f"refiner: images must be (B, 3, {h}, {w}), got {tuple(images.shape)}")
        if tuple(pose.shape) != (b, k, 2):
            raise PosefixError(f"refiner: pose must be ({b}, {k}, 2) crop pixels, got {tuple(pose.shape)}")
        if tuple(pose_valid.shape) != (b, k):
            raise PosefixError(f"refiner: pose_valid must be ({b}, {k}), got {tuple(pose_valid.shape)}")

    def network_input(self, images: torch.Tensor, pose: torch.Tensor, pose_valid: torch.Tensor) -> torch.Tensor:
        """(B, 3 + K, H, W): the images with the input-pose heatmaps rendered straight into the same buffer."""
        b, _, h, w = images.shape
        fmt = torch.channels_last if _is_channels_last(images) else torch.contiguous_format
        x = torch.empty((b, self.config.in_channels, h, w), dtype=images.dtype, device=images.device,
                        memory_format=fmt)
        x[:, :3] = images
        render_heatmaps(pose, pose_valid, (h, w), self.config.sigma, out=x[:, 3:])
        return x

    def forward(self, images: torch.Tensor, pose: torch.Tensor, pose_valid: torch.Tensor) -> dict:
        """Refine a batch.

        Args:
            images: (B, 3, H, W) float crops, already normalised (:meth:`preprocess`); channels_last is kept.
            pose: (B, K, 2) input keypoints in crop pixels.
            pose_valid: (B, K) bool; unset joints get an all-zero heatmap.

        Returns:
            ``logits`` (B, K, h, w), ``coords`` (B, K, 2) float32 in crop pixels, ``confidence`` (B, K) float32 (the
            softmax mass within 1.5 grid pixels of the decoded point), ``grid_coords`` (B, K, 2) in output-grid
            pixels and ``stride`` (int).
        """
        self._check_inputs(images, pose, pose_valid)
        x = self.network_input(images, pose, pose_valid)
        features = self.backbone(x)
        h, w = x.shape[-2] // self.stride, x.shape[-1] // self.stride
        logits = self.head(features, x[:, 3:], (h, w))
        grid, probs = soft_argmax(logits)
        return {
            "logits": logits,
            "coords": grid_to_input(grid, self.stride),
            "confidence": peak_mass(probs, grid),
            "grid_coords": grid,
            "stride": self.stride,
        }

    def loss(self, outputs: dict, target_coords: torch.Tensor, target_valid: torch.Tensor) -> dict:
        """:func:`refiner_loss` with this model's loss weights."""
        return refiner_loss(outputs, target_coords, target_valid,
                            heatmap_weight=self.config.heatmap_loss_weight, coord_weight=self.config.coord_loss_weight)


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def build_refiner(cfg: dict | RefinerConfig, seed: int | None = 0) -> Refiner:
    """The refiner of a config (a :class:`RefinerConfig` or a mapping of its fields).

    Args:
        cfg: the architecture; unknown backbone / head names raise a one-line :class:`PosefixError`.
        seed: seed of the random initialisation (the global torch RNG is left untouched); None: draw from the
            global RNG.
    """
    config = cfg if isinstance(cfg, RefinerConfig) else RefinerConfig.from_dict(cfg)
    check_head(config.head)  # name errors before any construction work
    if seed is None:
        model = Refiner(config)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = Refiner(config)
    if config.pretrained:
        load_pretrained(model.backbone, config.pretrained)
    return model


def refiner_loss(
    outputs: dict,
    target_coords: torch.Tensor,
    target_valid: torch.Tensor,
    heatmap_weight: float = 1.0,
    coord_weight: float = 1.0,
) -> dict:
    """PoseFix's loss: heatmap cross-entropy against the bilinear one-hot target + L1 on coordinates.

    Args:
        outputs: :meth:`Refiner.forward`'s dict (``logits``, ``grid_coords``, ``stride``).
        target_coords: (B, K, 2) true keypoints in crop pixels.
        target_valid: (B, K) bool (labelled keypoints); NaN coordinates count as invalid.

    Returns:
        ``loss`` = heatmap_weight * ``loss_heatmap`` + coord_weight * ``loss_coord`` (scalars). The cross-entropy is
        averaged over valid keypoints whose target lies inside the output grid; the L1 (output-grid pixels) over the
        x and y of valid keypoints.
    """
    logits = outputs["logits"].to(torch.float32)
    stride = int(outputs["stride"])
    h, w = logits.shape[-2:]
    tg = input_to_grid(target_coords.to(device=logits.device, dtype=torch.float32), stride)
    valid = target_valid.to(device=logits.device, dtype=torch.bool) & torch.isfinite(tg).all(dim=-1)
    tg = torch.where(valid[..., None], tg, torch.zeros((), device=tg.device))
    target = bilinear_target(tg, valid, (h, w))
    used = target.sum(dim=(-2, -1)) > 0
    logp = torch.log_softmax(logits.flatten(-2), dim=-1)
    ce = -(target.flatten(-2) * logp).sum(dim=-1)
    loss_heatmap = (ce * used).sum() / used.sum().clamp_min(1)
    l1 = (outputs["grid_coords"].to(torch.float32) - tg).abs().sum(dim=-1)
    loss_coord = (l1 * valid).sum() / (2 * valid.sum()).clamp_min(1)
    loss = heatmap_weight * loss_heatmap + coord_weight * loss_coord
    return {"loss": loss, "loss_heatmap": loss_heatmap, "loss_coord": loss_coord}


def _flip_coords(coords: torch.Tensor, width: int, flip_index: np.ndarray) -> torch.Tensor:
    """Tensor wrapper of :func:`posefix_bench.structures.transforms.flip_keypoints` (the one flip transform)."""
    flipped = flip_keypoints(coords.detach().to("cpu", torch.float64).numpy(), width, flip_index)
    return torch.as_tensor(flipped, dtype=coords.dtype).to(coords.device)


def flip_test(
    model: Refiner,
    images: torch.Tensor,
    pose: torch.Tensor,
    pose_valid: torch.Tensor,
    flip_index=None,
) -> dict:
    """Run the model on the crops and on their mirror images and average (the flip test of PoseFix's test.py).

    The mirrored pass sees the flipped image and the flipped input pose (x -> W - 1 - x, left/right swapped); its
    coordinates are flipped back and averaged with the direct pass, as are its confidences and logits. The result
    is exactly mirror-symmetric: flip_test(flipped inputs) = flipped flip_test(inputs).

    Args:
        model: the refiner (put it in eval mode first).
        images, pose, pose_valid: as :meth:`Refiner.forward`.
        flip_index: (K,) mirror partner of each keypoint; default: the config's built-in schema's.

    Returns:
        ``coords``, ``confidence``, ``logits`` (averaged; logits in the direct pass's orientation).
    """
    if flip_index is None:
        schema = SCHEMAS.get(model.config.schema)
        if schema is None:
            raise PosefixError(f"flip test: schema {model.config.schema!r} is not built in; pass flip_index")
        flip_index = schema.flip_index
    flip_index = np.asarray(flip_index)
    if flip_index.shape != (model.config.num_keypoints,):
        raise PosefixError(f"flip test: flip_index has shape {flip_index.shape}, expected ({model.config.num_keypoints},)")
    width = images.shape[-1]
    idx = torch.as_tensor(flip_index, dtype=torch.long, device=pose_valid.device)
    direct = model(images, pose, pose_valid)
    mirrored = model(images.flip(-1), _flip_coords(pose, width, flip_index), pose_valid.index_select(1, idx))
    back_idx = idx.to(mirrored["confidence"].device)
    return {
        "coords": (direct["coords"] + _flip_coords(mirrored["coords"], width, flip_index)) / 2,
        "confidence": (direct["confidence"] + mirrored["confidence"].index_select(1, back_idx)) / 2,
        "logits": (direct["logits"].to(torch.float32) + flip_heatmaps(mirrored["logits"].to(torch.float32), flip_index)) / 2,
    }
