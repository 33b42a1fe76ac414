"""Multi-process data-parallel training with ``torch.distributed``, launched by ``torchrun``.

``torchrun --nproc-per-node N -m posefix_bench.cli train ...`` starts N processes and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables; :func:`init_distributed` reads them and joins the
process group with NCCL when CUDA is available (one GPU per local rank) and gloo otherwise (CPU processes). Without
torchrun it returns a single-process :class:`DistInfo` and nothing is initialised, so the same training code runs
both ways. Each process trains a replica wrapped in ``DistributedDataParallel`` (Li et al., "PyTorch Distributed",
VLDB 2020): gradients are averaged over the processes, so a global batch split into equal shards gives the mean of
the per-shard gradients. BatchNorm statistics stay per replica (no SyncBN), as in the published multi-GPU recipes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from posefix_bench.errors import PosefixError

__all__ = ["DistInfo", "init_distributed", "shutdown_distributed", "all_reduce_mean", "barrier", "local_cpu_share"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 for a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        local_world_size: processes on this machine (shares the CPU cores).
        backend: ``nccl``, ``gloo`` or ``None`` (not distributed).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise PosefixError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the torchrun process group when launched by torchrun (``WORLD_SIZE`` > 1), else a single process.

    Args:
        device: the training device requested by the config (``cuda``/``cpu``/None = auto); NCCL is chosen only
            for CUDA devices.
    """
    import torch
    import torch.distributed as dist

    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo()
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local_rank, local_world, backend)


def shutdown_distributed(info: DistInfo) -> None:
    import torch.distributed as dist

    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    import torch.distributed as dist

    if info.distributed:
        dist.barrier()


def all_reduce_mean(values, info: DistInfo):
    """The mean over processes of a 1-D float64 tensor of values (returned as a new CPU tensor)."""
    import torch
    import torch.distributed as dist

    t = torch.as_tensor(values, dtype=torch.float64).clone()
    if not info.distributed:
        return t
    if info.backend == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / info.world_size).cpu()


def local_cpu_share(info: DistInfo) -> int:
    """CPU threads for one process: the machine's usable cores divided among the processes on it (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, info.local_world_size))
