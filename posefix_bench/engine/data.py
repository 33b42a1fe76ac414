"""Training samples for the refiner: person crops, synthesised input poses and targets, as pure functions of a seed.

PoseFix (Moon et al., CVPR 2019, Sec. 4 and 5.1) trains on ground-truth persons: each person is cropped from its box
with the top-down affine transform (:mod:`posefix_bench.structures.transforms`; box enlarged to the crop's aspect
ratio and padded by 1.25), augmented by scale (``clip(N(1, 0.3), 0.7, 1.3)``), rotation (``clip(N(0, 40), -80, 80)``
degrees for 60% of the samples) and a horizontal flip (probability 0.5), as in SimpleBaseline (Xiao et al., ECCV 2018);
its input pose is synthesised from the ground truth with the error statistics of Ronchi & Perona (ICCV 2017)
(:func:`posefix_bench.synthesis.synthesize.synthesize_poses`). The synthesis runs in image coordinates for the target
person with every labelled person of its image as a candidate (so swaps land on real neighbours); the same affine then
maps the target and the input pose into the crop. The re-implementation's lower-body augmentation
(:mod:`posefix_bench.synthesis.lowerbody`) optionally shrinks the input's legs and cuts the lower body out of the crop.

Determinism and exact resume: every sample is a pure function of ``(seed, epoch, index)`` (its random stream is
``np.random.default_rng((seed, epoch, index, 1))``), and the order of an epoch is a permutation drawn from
``(seed, epoch, 0, 2)``. :class:`IterationSampler` turns a global iteration counter into this process's share of
the global batch, so training can restart at any iteration, with any number of data-loader workers, and see the
same batches as an uninterrupted run. (The trailing stream tag matters: NumPy's ``SeedSequence`` pads its entropy with
zeros, so ``(s, e)`` and ``(s, e, 0)`` would be the same stream.)

Hold-out for calibration (issue 17): :func:`holdout_image_ids` draws a seeded set of training images that
:class:`RefinerTrainSet` leaves out (``exclude_images``), so that the gate of :mod:`posefix_bench.engine.gate` can be
calibrated after training on persons of the training split that the refiner never saw.

Shape legend: B batch, K keypoints, H x W crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.transforms import (
    DEFAULT_PADDING,
    affine_matrix,
    apply_affine,
    box_to_center_scale,
    flip_keypoints,
    warp_image,
)

__all__ = [
    "AugmentConfig",
    "RefinerTrainSet",
    "IterationSampler",
    "collate_samples",
    "sample_rng",
    "epoch_order",
    "holdout_image_ids",
]

SAMPLE_STREAM = 1
ORDER_STREAM = 2
HOLDOUT_STREAM = 3


def holdout_image_ids(image_ids: Sequence[int], holdout: float, seed: int) -> list[int]:
    """The training images held out for calibration: a seeded random subset of ``image_ids``, sorted.

    Args:
        image_ids: the split's image ids.
        holdout: a fraction in [0, 1) of the images, or a count >= 1.
        seed: the hold-out's seed (independent of the training seed, so every training seed holds out the same).
    """
    ids = sorted(int(i) for i in image_ids)
    h = float(holdout)
    if not np.isfinite(h) or h < 0:
        raise PosefixError(f"hold-out must be a fraction in [0, 1) or a count >= 1, got {holdout!r}")
    n = int(round(h * len(ids))) if h < 1 else int(h)
    if h >= 1 and h != int(h):
        raise PosefixError(f"hold-out: a count must be a whole number, got {holdout!r}")
    if n >= len(ids):
        raise PosefixError(f"hold-out of {n} images leaves none of the {len(ids)} to train on")
    pick = np.random.default_rng((int(seed), HOLDOUT_STREAM)).permutation(len(ids))[:n]
    return sorted(ids[i] for i in pick)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one training sample."""
    return np.random.default_rng((int(seed), int(epoch), int(index), SAMPLE_STREAM))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """(n,) the sample order of one epoch (a permutation)."""
    return np.random.default_rng((int(seed), int(epoch), 0, ORDER_STREAM)).permutation(int(n))


@dataclass(frozen=True)
class AugmentConfig:
    """Geometric augmentation of a training crop (SimpleBaseline / PoseFix defaults).

    Attributes:
        scale_factor: scale ~ clip(N(1, f), 1 - f, 1 + f); 0 disables.
        rotation_factor: degrees, rotation ~ clip(N(0, f), -2f, 2f); 0 disables.
        rotation_prob: fraction of samples that are rotated.
        flip: horizontal flip with probability 0.5.
        padding: box enlargement (``box_to_center_scale``).
    """

    scale_factor: float = 0.3
    rotation_factor: float = 40.0
    rotation_prob: float = 0.6
    flip: bool = True
    padding: float = DEFAULT_PADDING

    def draw(self, rng: np.random.Generator) -> tuple[float, float, bool]:
        """(scale, rotation degrees, flip) for one sample; always consumes the same number of draws."""
        z_s, z_r, u_r, u_f = rng.standard_normal(), rng.standard_normal(), rng.random(), rng.random()
        sf, rf = float(self.scale_factor), float(self.rotation_factor)
        scale = float(np.clip(1.0 + sf * z_s, 1.0 - sf, 1.0 + sf))
        rotation = float(np.clip(rf * z_r, -2.0 * rf, 2.0 * rf)) if u_r < self.rotation_prob else 0.0
        return scale, rotation, bool(self.flip and u_f < 0.5)


@dataclass
class RefinerTrainSet:
    """The persons of a COCO-format dataset as refiner training samples.

    Args:
        dataset: ground truth with images.
        input_size: (W, H) of the crop.
        mix: an ``ErrorMix`` (``posefix_bench.synthesis.mixes.get_mix``).
        seed: the run's seed.
        augment: geometric augmentation.
        lower_body: a ``LowerBodyAug`` (``posefix_bench.synthesis.lowerbody``) or None (off).
        min_keypoints: persons with fewer labelled keypoints are skipped (crowd regions always are).
        max_samples: keep only the first N persons (image id, then annotation id order).
        cache_images: keep decoded images in memory (per process).
        exclude_images: image ids left out (the calibration hold-out, :func:`holdout_image_ids`).

    ``len(ds)`` is the number of persons; ``ds[(epoch, index)]`` (or :meth:`sample`) is one sample, a dict of
    ``image`` (H, W, 3) uint8 RGB, ``pose`` (K, 2) float32 input pose in crop pixels, ``pose_valid`` (K,) bool,
    ``target`` (K, 2) float32, ``target_valid`` (K,) bool (labelled and inside the crop), ``index`` int,
    ``flipped`` bool (the crop is mirrored and left/right keypoints swapped).
    """

    dataset: CocoDataset
    input_size: tuple[int, int]
    mix: Any
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lower_body: Any = None
    min_keypoints: int = 1
    max_samples: int | None = None
    cache_images: bool = False
    exclude_images: frozenset = frozenset()

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.schema = self.dataset.schema
        self._flip_index = self.schema.flip_index
        self._cache: dict[int, np.ndarray] = {}
        self.persons, self._candidates = self._index_persons()
        if not self.persons:
            raise PosefixError(
                f"{self.dataset.path}: no person with at least {self.min_keypoints} labelled keypoints to train on"
            )

    def _index_persons(self) -> tuple[list[tuple[int, int, int]], dict[int, np.ndarray]]:
        """[(image_id, row in gt_arrays, position among the image's candidates)] and each image's candidate rows."""
        persons, candidates = [], {}
        for image_id in self.dataset.image_ids:
            if image_id in self.exclude_images:
                continue
            arr = self.dataset.gt_arrays(image_id)
            labelled = (arr.keypoints[..., 2] > 0).sum(axis=1)
            cand = np.flatnonzero(~arr.iscrowd & (labelled > 0))
            for pos, g in enumerate(cand):
                if labelled[g] >= self.min_keypoints and arr.boxes[g, 2] > 0 and arr.boxes[g, 3] > 0:
                    persons.append((int(image_id), int(g), pos))
            if len(cand):
                candidates[int(image_id)] = cand
            if self.max_samples is not None and len(persons) >= self.max_samples:
                return persons[: self.max_samples], candidates
        return persons, candidates

    def __len__(self) -> int:
        return len(self.persons)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        return self.sample(epoch, index)

    def image(self, image_id: int) -> np.ndarray:
        img = self._cache.get(image_id)
        if img is None:
            img = self.dataset.read_image(image_id)
            if self.cache_images:
                self._cache[image_id] = img
        return img

    def sample(self, epoch: int, index: int) -> dict:
        """One training sample (see the class docstring); a pure function of (seed, epoch, index)."""
        from posefix_bench.synthesis.synthesize import synthesize_poses

        rng = sample_rng(self.seed, epoch, index)
        image_id, g, pos = self.persons[index]
        arr = self.dataset.gt_arrays(image_id)
        cand = self._candidates[image_id]
        syn = synthesize_poses(
            arr.keypoints[cand], arr.areas[cand], arr.boxes[cand], self.mix, rng, self.schema, targets=[pos]
        )
        inp = np.asarray(syn.keypoints[0], dtype=np.float64)  # (K, 3) x, y, valid
        gt = arr.keypoints[g]
        scale, rotation, flip = self.augment.draw(rng)
        center, box_scale = box_to_center_scale(arr.boxes[g], self.input_size[0] / self.input_size[1],
                                                self.augment.padding)
        m = affine_matrix(center, box_scale * scale, rotation, self.input_size)
        crop = warp_image(self.image(image_id), m, self.input_size)
        target = np.concatenate([apply_affine(gt, m), gt[:, 2:3] > 0], axis=1)
        pose = np.concatenate([apply_affine(inp, m), inp[:, 2:3] > 0], axis=1)
        if flip:
            crop = np.ascontiguousarray(crop[:, ::-1])
            target = flip_keypoints(target, self.input_size[0], self._flip_index)
            pose = flip_keypoints(pose, self.input_size[0], self._flip_index)
        pose_valid = pose[:, 2] > 0
        if self.lower_body is not None:
            from posefix_bench.synthesis.lowerbody import apply_lower_body_aug

            pose_xy, crop, _ = apply_lower_body_aug(self.lower_body, rng, self.schema, pose[:, :2], pose_valid,
                                                    crop, target[:, :2], target[:, 2] > 0)
            pose[:, :2] = pose_xy[:, :2]
        w, h = self.input_size
        inside = (target[:, 0] >= 0) & (target[:, 0] <= w - 1) & (target[:, 1] >= 0) & (target[:, 1] <= h - 1)
        return {
            "image": crop,
            "pose": pose[:, :2].astype(np.float32),
            "pose_valid": pose_valid,
            "target": target[:, :2].astype(np.float32),
            "target_valid": (target[:, 2] > 0) & inside,
            "index": int(index),
            "flipped": flip,
        }


def collate_samples(samples: Sequence[Mapping]) -> dict:
    """Stack samples into a batch of tensors: image (B, H, W, 3) uint8, pose / target (B, K, 2) float32,
    pose_valid / target_valid (B, K) bool, index (B,) int64."""
    import torch

    return {
        "image": torch.from_numpy(np.stack([s["image"] for s in samples])),
        "pose": torch.from_numpy(np.stack([s["pose"] for s in samples])),
        "pose_valid": torch.from_numpy(np.stack([s["pose_valid"] for s in samples])),
        "target": torch.from_numpy(np.stack([s["target"] for s in samples])),
        "target_valid": torch.from_numpy(np.stack([s["target_valid"] for s in samples])),
        "index": torch.as_tensor([s["index"] for s in samples], dtype=torch.int64),
    }


class IterationSampler:
    """Batches of ``(epoch, index)`` keys for iterations ``start .. stop - 1`` (a batch sampler for DataLoader).

    Iteration ``it`` is step ``it % iters_per_epoch`` of epoch ``it // iters_per_epoch``; its global batch is the next
    ``global_batch`` entries of that epoch's permutation (the tail that does not fill a batch is dropped, so every
    iteration has a full batch), and process ``rank`` of ``world_size`` takes the rank-th equal shard. The batches
    depend only on (seed, iteration), which is what makes resuming exact and sharding deterministic.
    """

    def __init__(
        self,
        num_samples: int,
        global_batch: int,
        seed: int,
        start: int,
        stop: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if global_batch % world_size:
            raise PosefixError(f"batch size {global_batch} is not divisible by the {world_size} training processes")
        if num_samples < global_batch:
            raise PosefixError(f"batch size {global_batch} is larger than the {num_samples} training samples")
        self.num_samples, self.global_batch, self.seed = int(num_samples), int(global_batch), int(seed)
        self.start, self.stop, self.rank, self.world_size = int(start), int(stop), int(rank), int(world_size)
        self.local_batch = self.global_batch // self.world_size
        self.iters_per_epoch = self.num_samples // self.global_batch
        self._order: tuple[int, np.ndarray] | None = None

    def global_indices(self, iteration: int) -> np.ndarray:
        """(global_batch,) sample indices of one iteration, all processes together."""
        epoch, step = divmod(int(iteration), self.iters_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(self.seed, epoch, self.num_samples))
        order = self._order[1]
        return order[step * self.global_batch:(step + 1) * self.global_batch]

    def batch(self, iteration: int) -> list[tuple[int, int]]:
        """This process's (epoch, index) keys of one iteration."""
        epoch = int(iteration) // self.iters_per_epoch
        idx = self.global_indices(iteration)[self.rank * self.local_batch:(self.rank + 1) * self.local_batch]
        return [(epoch, int(i)) for i in idx]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for it in range(self.start, self.stop):
            yield self.batch(it)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)
