"""Layer 3: the PoseFix refiner (``build_refiner``), its backbones, head variants, loss and checkpoints."""

from posefix_bench.models.backbones import BACKBONES, build_backbone, load_pretrained
from posefix_bench.models.checkpoint import (
    CHECKPOINT_FORMAT,
    load_refiner,
    refiner_checkpoint,
    save_refiner,
    unwrap_model,
)
from posefix_bench.models.config import RefinerConfig, default_sigma
from posefix_bench.models.fold import fold_batchnorm, is_folded
from posefix_bench.models.heads import HEADS, HeadSpec, build_head
from posefix_bench.models.refiner import Refiner, build_refiner, flip_test, refiner_loss

__all__ = [
    "BACKBONES", "HEADS", "HeadSpec", "CHECKPOINT_FORMAT", "Refiner", "RefinerConfig",
    "build_backbone", "build_head", "build_refiner", "default_sigma", "flip_test", "fold_batchnorm", "is_folded", "load_pretrained", "load_refiner",
    "refiner_checkpoint", "refiner_loss", "save_refiner", "unwrap_model",
]  # fmt: skip
