"""Data-parallel training with torchrun: 2 CPU processes on gloo finish a real training run and their averaged
gradients equal the single-process reference on the same global batch.

Run by pytest, this file launches itself under ``torchrun --standalone --nproc-per-node 2`` (the ``__main__`` block):
each process joins the gloo group, builds the real :class:`~posefix_bench.engine.train.Trainer` (once with
``train.amp='auto'``: rank 0 alone decides the precision and broadcasts it), computes the loss
of its shard of iteration 0's global batch through DistributedDataParallel, and rank 0 saves the all-reduced
gradients; then both processes run the ``posefix-bench train`` command itself for a few iterations.

The reference: BatchNorm under DDP normalises with each replica's own batch statistics (no SyncBN), so the gradient
DDP computes is the mean over processes of each shard's gradient, not the gradient of one 8-sample batch. The honest
single-process reference is therefore the average of the per-shard gradients, computed here with the same model,
the same shards (from :class:`~posefix_bench.engine.data.IterationSampler`) and BatchNorm in training mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "ablations" / "coco-mini" / "r18_64x48_paper_lb-off_skip_train-cocomini.py"
TINY = {
    "data.max_samples": 16, "data.cache_images": True, "train.batch_size": 8, "train.max_iters": 4,
    "train.checkpoint_interval": 2, "train.log_interval": 2, "train.threads": 1, "train.num_workers": 0,
    "model.deconv_channels": 64,
    # the numbers compared below are fp32's: 'auto' picks bf16 on a CPU with native bf16 (issue 25)
    "train.amp": "fp32",
}


def _options() -> list[str]:
    return [f"{k}={v}" for k, v in TINY.items()]


def _probe(out_dir: Path) -> None:
    """Inside torchrun: save the DDP gradients of iteration 0, then run the train command."""
    import torch

    from posefix_bench import cli
    from posefix_bench.engine.distributed import init_distributed, shutdown_distributed
    from posefix_bench.engine.train import Trainer, load_config

    info = init_distributed()
    # 'auto': rank 0 alone decides the precision and every rank trains in its choice (here a marked record;
    # another rank's own decision would fail the test)
    from posefix_bench.engine import train as train_module
    from posefix_bench.engine.precision import explicit_record

    def rank0_decides(requested, device, *args, **kwargs):
        assert info.rank == 0, f"rank {info.rank} decided the precision itself"
        return dict(explicit_record("fp32", device, "train"), requested=requested, decided_on_rank=0)

    resolve, train_module.resolve_precision = train_module.resolve_precision, rank0_decides
    auto = Trainer(load_config(CONFIG, dict(TINY, **{"train.amp": "auto"})), out_dir / "auto", info).precision
    train_module.resolve_precision = resolve
    cfg = load_config(CONFIG, TINY)
    trainer = Trainer(cfg, out_dir / "probe", info)
    trainer.model.train()
    trainer.optimizer.zero_grad(set_to_none=True)
    losses = trainer.forward_backward(trainer.batch(0))
    if info.rank == 0:
        grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        torch.save(grads, out_dir / "ddp_grads.pth")
    (out_dir / f"rank{info.rank}.json").write_text(json.dumps({**losses, "backend": info.backend,
                                                                 "world_size": info.world_size, "auto": auto}))
    code = cli.main(["train", "--config", str(CONFIG), "--work-dir", str(out_dir / "run"),
                     "--cfg-options", *_options()])
    shutdown_distributed(info)
    sys.exit(code)


@pytest.mark.slow
def test_torchrun_two_gloo_processes_train_and_match_single_process_gradients(tmp_path):
    import torch

    from posefix_bench.engine.data import IterationSampler, collate_samples
    from posefix_bench.engine.train import Trainer, load_config

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(Path(__file__)), str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["backend"] == "gloo" and r["world_size"] == 2 for r in ranks)
    # one precision decision, rank 0's, broadcast to every rank
    assert ranks[0]["auto"] == ranks[1]["auto"] and ranks[1]["auto"]["decided_on_rank"] == 0

    # the real run finished: rank 0 wrote the model and the log (world size 2 recorded), rank 1 wrote nothing else
    run = tmp_path / "run"
    assert (run / "final.pth").is_file()
    final = torch.load(run / "final.pth", map_location="cpu", weights_only=True)
    assert final["meta"]["world_size"] == 2 and final["meta"]["iterations"] == 4 and final["meta"]["trained"]
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log] == [2, 4]

    # single-process reference: the mean of the two shards' gradients
    torch.set_num_threads(1)
    ref = Trainer(load_config(CONFIG, TINY), tmp_path / "ref")
    sampler = IterationSampler(len(ref.trainset), 8, ref.tr.seed, 0, 1, rank=0, world_size=1)
    keys = sampler.batch(0)
    ref.model.train()
    acc, shard_losses = {}, []
    for shard in (keys[:4], keys[4:]):
        ref.optimizer.zero_grad(set_to_none=True)
        shard_losses.append(ref.forward_backward(collate_samples([ref.trainset[k] for k in shard]))["loss"])
        for n, p in ref.model.named_parameters():
            if p.grad is not None:
                acc[n] = acc.get(n, 0) + p.grad.detach() / 2
    assert [r["loss"] for r in ranks] == pytest.approx(shard_losses, rel=1e-5)
    ddp = torch.load(tmp_path / "ddp_grads.pth", map_location="cpu", weights_only=True)
    assert ddp.keys() == acc.keys()
    for n in acc:
        assert torch.allclose(ddp[n], acc[n], rtol=1e-4, atol=1e-6), n
    # and the shards really differ (the average is not trivially one shard's gradient)
    assert shard_losses[0] != shard_losses[1]


if __name__ == "__main__":
    _probe(Path(sys.argv[1]))
