"""Train a PoseFix refiner from a config (``ablations/``), resumably, on one process or several.

One process: ``posefix-bench train --config "ablations/coco-mini/r18_64x48_paper_lb-off_skip_train-cocomini.py" --work-dir work_dirs/r18``.
Several (data parallel, gloo on CPU / NCCL on GPUs, chosen automatically):
``torchrun --nproc-per-node 2 -m posefix_bench.cli train --config CONFIG --work-dir DIR``.
``--resume`` continues from ``DIR/checkpoints/latest.pth`` (exactly: same weights as an uninterrupted run) or starts
from scratch when there is none; ``--cfg-options train.max_iters=100 data.root=/data/coco`` overrides config keys.
The work dir gets ``final.pth`` (what ``refine`` and the bench use), ``checkpoints/``, ``train_log.jsonl`` and
``tensorboard/``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "train a refiner from a config (resumable; torchrun for several processes)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="refiner config (e.g. ablations/_base_/refiner.py)")
    p.add_argument("--work-dir", type=Path, help="output folder (default: work_dirs/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue from WORK_DIR/checkpoints/latest.pth (from scratch when there is none)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. train.max_iters=100 data.root=/data/coco (values parsed as "
                   "mmengine's DictAction does: numbers, booleans, lists a,b or [a,b], tuples (a,b))")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                   help="set train.amp: auto (the fastest precision this device runs natively, measured by a short "
                   "probe) or a precision (fp16: CUDA) (default: the config's train.amp)")


def run(args: argparse.Namespace) -> int:
    from posefix_bench.engine.train import load_config, train
    from posefix_bench.progress import tqdm_progress

    options = _parse_options(args.cfg_options)
    if args.precision:
        options["train.amp"] = args.precision
    cfg = load_config(args.config, options)
    work_dir = args.work_dir or Path("work_dirs") / args.config.stem
    record = train(cfg, work_dir, resume=args.resume, progress=tqdm_progress)
    if os.environ.get("RANK", "0") == "0":
        resumed = f" (resumed at iteration {record['resumed_from']})" if record["resumed_from"] is not None else ""
        rate = f"{record['samples_per_s']:.1f} samples/s" if record["samples_per_s"] else "no iterations left"
        loss = f"{record['final_loss']:.4f}" if record["final_loss"] is not None else "n/a"
        print(f"trained {record['trained_iterations']} iterations{resumed} in {record['seconds']:.1f} s on "
              f"{record['world_size']} process(es): {rate}, final loss {loss}")
        print(record["precision_record"]["sentence"])
        print(f"wrote {record['checkpoint']}")
    return 0


def _parse_options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings -> {key: typed value}, with mmengine's DictAction (imported only when training)."""
    from mmengine.config import DictAction

    from posefix_bench.errors import PosefixError

    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise PosefixError(f"--cfg-options: {bad[0]!r} is not KEY=VALUE")
    namespace = argparse.Namespace()
    DictAction(option_strings=["--cfg-options"], dest="options")(None, namespace, pairs)
    return dict(namespace.options or {})
