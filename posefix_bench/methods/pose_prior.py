"""The ``pose-prior`` refinement method: an image-free learned refiner (keypoints in, keypoints out).

How much of a refiner's gain needs the image at all? A pose prior sees only the input pose: each keypoint's x, y and
whether the input predicted it, in the crop PoseFix would take (:func:`posefix_bench.engine.refine.crop_matrices`:
the predicted keypoints' box x 1.2, padded and fitted to the crop's aspect ratio), and moves the keypoints towards
a plausible pose, as human-pose priors do (e.g. the kinematic prior of Pose-NDF, Tiwari et al., ECCV 2022, or the
MLP refiners of the pose-lifting literature; this one is the simplest: a residual MLP over all joints). Its
network: the K x 3 input (normalised x, y, predicted flag; an absent keypoint's x, y zeroed) -> 256 -> 256 -> K x 2
offsets (ReLU between; the last layer starts at zero, so an untrained prior is the identity), L1 loss on the
labelled keypoints, Adam.

It trains on exactly the refiner's training samples (:func:`posefix_bench.engine.train.build_trainset`: the same
persons, Ronchi-Perona synthesised inputs, error mix, augmentation, hold-out and seed; the crop images are drawn and
ignored) for the refiner's budget (its iterations, batch size and learning rate): :func:`train_pose_prior`. The
synthesised inputs carry no per-keypoint confidences, so, like the refiner, the prior reads confidences only as
predicted / not predicted. Each output keypoint keeps the input's confidence; the rest of the record is kept as the
method contract says (:mod:`posefix_bench.methods.base`).

Shape legend: N poses, B batch, K keypoints.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.methods.base import Method, MethodInfo
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY, absent_mask

__all__ = ["HIDDEN", "PosePriorMethod", "build_prior_net", "train_pose_prior", "prior_forward"]

HIDDEN = 256
FORMAT = "posefix-bench/pose-prior/v1"


def build_prior_net(num_keypoints: int, hidden: int = HIDDEN, seed: int = 0):
    """The prior's MLP (torch): (B, 3K) -> (B, 2K) offsets; the last layer zero (an untrained prior is the identity)."""
    import torch

    torch.manual_seed(int(seed))
    k = int(num_keypoints)
    net = torch.nn.Sequential(torch.nn.Linear(3 * k, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                              torch.nn.ReLU(), torch.nn.Linear(hidden, 2 * k))
    torch.nn.init.zeros_(net[-1].weight)
    torch.nn.init.zeros_(net[-1].bias)
    return net


def prior_forward(net, xy, valid, input_size):
    """Refined keypoints in crop pixels: ``xy`` (B, K, 2) crop pixels, ``valid`` (B, K) bool (torch tensors)."""
    import torch

    size = torch.as_tensor([float(input_size[0]), float(input_size[1])], dtype=xy.dtype)
    v = valid.to(xy.dtype)[..., None]
    norm = (xy / size - 0.5) * v
    out = net(torch.cat([norm, v], dim=-1).flatten(1)).view_as(xy)
    return (norm + out + 0.5) * size


def train_pose_prior(cfg: dict, out: str | Path, hidden: int = HIDDEN, progress: Progress = no_progress) -> dict:
    """Train the prior on a refiner config's training samples for its budget; write the checkpoint to ``out``
    (atomically) and return the summary (iterations, seconds, samples/s, final loss)."""
    import torch

    from posefix_bench.engine.data import IterationSampler
    from posefix_bench.engine.train import build_trainset, parse_config
    from posefix_bench.structures.io import atomic_write_with

    model_cfg, data_cfg, tr = parse_config(cfg)
    dataset, holdout, trainset = build_trainset(model_cfg, data_cfg, tr)
    probe = IterationSampler(len(trainset), tr.batch_size, tr.seed, 0, 0)
    iters = int(tr.max_iters or tr.epochs * probe.iters_per_epoch)
    k, size = dataset.schema.num_keypoints, trainset.input_size
    net = build_prior_net(k, hidden, tr.seed)
    opt = torch.optim.Adam(net.parameters(), lr=tr.lr)
    t0, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(int(tr.threads or 1))  # the refiner's training threads; this process's are restored after
    try:
        loss = _train_loop(net, opt, trainset, tr, iters, size, progress)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    summary = {"iterations": iters, "batch_size": int(tr.batch_size), "lr": float(tr.lr), "seed": int(tr.seed),
               "seconds": seconds, "samples_per_s": iters * tr.batch_size / seconds if seconds > 0 else None,
               "final_loss": loss, "persons": len(trainset), "holdout_images": len(holdout)}
    record = {"format": FORMAT, "state_dict": net.state_dict(),
              "meta": {"trained": True, "num_keypoints": k, "schema": dataset.schema.name, "hidden": int(hidden),
                       "input_size": list(size), **summary}}
    atomic_write_with(out, lambda tmp: torch.save(record, tmp))
    return summary


def _train_loop(net, opt, trainset, tr, iters: int, size, progress: Progress) -> float | None:
    """``iters`` Adam steps of L1 loss on the labelled keypoints (normalised crop units); the last loss."""
    import torch

    from posefix_bench.engine.data import IterationSampler

    loss = None
    scale = torch.as_tensor([float(size[0]), float(size[1])])
    for keys in progress(IterationSampler(len(trainset), tr.batch_size, tr.seed, 0, iters), total=iters,
                         desc="pose prior"):
        samples = [trainset.sample(e, i) for e, i in keys]
        xy = torch.from_numpy(np.stack([s["pose"] for s in samples]))
        valid = torch.from_numpy(np.stack([s["pose_valid"] for s in samples]))
        target = torch.from_numpy(np.stack([s["target"] for s in samples]))
        tv = torch.from_numpy(np.stack([s["target_valid"] for s in samples])).to(xy.dtype)[..., None]
        pred = prior_forward(net, xy, valid, size)
        loss_t = ((pred - target).abs() / scale * tv).sum() / tv.sum().clamp(min=1.0) / 2
        opt.zero_grad()
        loss_t.backward()
        opt.step()
        loss = float(loss_t.detach())
    return loss


class PosePriorMethod(Method):
    """A trained pose prior (:func:`train_pose_prior`'s checkpoint) applied to each input pose.

    Args:
        checkpoint: the prior's checkpoint.
        box: ``keypoints`` (PoseFix's crop box) or ``bbox``.
        device: where the MLP runs.
    """

    info = MethodInfo(type="pose-prior", description="an image-free learned refiner: an MLP over the input pose's "
                      "keypoints, trained on the refiner's synthesised inputs and budget", uses_images=False,
                      learned=True)

    def __init__(self, checkpoint: str | Path, name: str | None = None, box: str = "keypoints", device: str = "cpu",
                 absent_policy: str = DEFAULT_ABSENT_POLICY):
        super().__init__(name, absent_policy)
        from posefix_bench.structures.transforms import BOX_MODES

        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise file_error(self.checkpoint, f"pose-prior checkpoint not found (method {self.name!r})")
        if box not in BOX_MODES:
            raise PosefixError(f"method {self.name!r}: unknown crop box {box!r} (known: {', '.join(BOX_MODES)})")
        self.box, self.device = box, device
        self.net, self.meta = None, {}

    def setup(self) -> None:
        import torch

        try:
            rec = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the checkpoint's problem, one line
            raise file_error(self.checkpoint, f"not a pose-prior checkpoint ({type(e).__name__})") from None
        if not isinstance(rec, dict) or rec.get("format") != FORMAT:
            raise file_error(self.checkpoint, f"not a pose-prior checkpoint (expected format {FORMAT})")
        self.meta = dict(rec["meta"])
        self.net = build_prior_net(self.meta["num_keypoints"], self.meta["hidden"]).to(self.device)
        self.net.load_state_dict(rec["state_dict"])
        self.net.eval()

    def run(self, results, images, gt, progress: Progress = no_progress):
        import torch

        from posefix_bench.engine.refine import crop_matrices
        from posefix_bench.structures.transforms import apply_affine, invert_affine, record_bboxes

        k = int(self.meta["num_keypoints"])
        kp = np.asarray([r["keypoints"] for r in results], dtype=np.float64)
        if kp.shape[1] != 3 * k:
            raise PosefixError(f"method {self.name!r}: poses have {kp.shape[1] // 3} keypoints, the prior {k}")
        kp = kp.reshape(len(results), k, 3)
        size = tuple(self.meta["input_size"])
        mats, ok = crop_matrices(kp, record_bboxes(results), size, self.box, self.absent_policy)
        valid = ~absent_mask(kp, self.absent_policy)
        with torch.inference_mode():
            xy = torch.as_tensor(apply_affine(kp[..., :2], mats), dtype=torch.float32, device=self.device)
            pv = torch.as_tensor(valid, device=self.device)
            crop = prior_forward(self.net, xy, pv, size).double().cpu().numpy()
        refined = kp.copy()
        refined[..., :2] = apply_affine(crop, invert_affine(mats))
        out = []
        for i, r in enumerate(results):
            if ok[i]:
                out.append(dict(r, keypoints=[float(v) for v in refined[i].reshape(-1)]))
            else:
                out.append(dict(r, refine_skipped="no box: fewer than two distinct predicted keypoints and no bbox"))
        return out
