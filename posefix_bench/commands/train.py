"""Train a PoseFix refiner from a config (``ablations/``), resumably, on one process or several.

One process: ``posefix-bench train --config "ablations/coco-mini/r18_64x48_paper_lb-off_skip_train-cocomini.py" --work-dir work_dirs/r18``.
Several (data parallel, gloo on CPU / NCCL on GPUs, chosen automatically):
``torchrun --nproc-per-node 2 -m posefix_bench.cli train --config CONFIG --work-dir DIR``.
``--resume`` continues from ``DIR/checkpoints/latest.pth`` (exactly: same weights as an uninterrupted run), from the
newest intact ``iter_<n>.pth`` when ``latest.pth`` is truncated or corrupt (with a warning), or starts from scratch
when there is no checkpoint; ``--cfg-options train.max_iters=100 data.root=/data/coco`` overrides config keys.
The work dir gets ``final.pth`` (what ``refine`` and the bench use), ``checkpoints/``, ``train_log.jsonl`` and
``tensorboard/``. One training at a time per work dir: a second one fails at once (``.train.lock``,
:mod:`posefix_bench.engine.workdir`).
"""

from __future__ import annotations

import argparse
import collections.abc
import os
import sys
import types
import typing
from pathlib import Path

from posefix_bench.commands import _checks

HELP = "train a refiner from a config (resumable; torchrun for several processes)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="refiner config (e.g. ablations/_base_/refiner.py)")
    p.add_argument("--work-dir", type=Path, help="output folder (default: work_dirs/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue from WORK_DIR/checkpoints/latest.pth (or the newest intact iter_*.pth when it is "
                   "damaged; from scratch when there is none)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. train.max_iters=100 data.root=/data/coco (values parsed as "
                   "mmengine's DictAction does: numbers, booleans, lists a,b or [a,b], tuples (a,b))")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                   help="set train.amp: auto (the fastest precision this device runs natively, measured by a short "
                   "probe) or a precision (fp16: CUDA) (default: the config's train.amp)")


def run(args: argparse.Namespace) -> int:
    from posefix_bench.engine.workdir import check_work_dir, find_resume_checkpoint, lock_work_dir

    # the validation pass, all before torch is imported: arguments, option types, the work dir (lock, reuse, resume)
    _checks.input_file(args.config, "--config", "config file")
    work_dir = args.work_dir or Path("work_dirs") / args.config.stem
    _checks.output_dir(work_dir, "--work-dir")
    options = _parse_options(args.cfg_options)
    if args.precision:
        options["train.amp"] = args.precision
    check_option_types(options)
    main = os.environ.get("RANK", "0") == "0"
    with lock_work_dir(work_dir, enabled=main):
        check_work_dir(work_dir, resume=args.resume)
        if args.resume and main:
            for line in find_resume_checkpoint(work_dir / "checkpoints").warnings():
                print(f"posefix-bench train: warning: {line}", file=sys.stderr)

        from posefix_bench.engine.train import load_config, train
        from posefix_bench.progress import tqdm_progress

        cfg = load_config(args.config, options)
        check_option_types(options, cfg)
        record = train(cfg, work_dir, resume=args.resume, progress=tqdm_progress)
    if main:
        resumed = f" (resumed at iteration {record['resumed_from']})" if record["resumed_from"] is not None else ""
        rate = f"{record['samples_per_s']:.1f} samples/s" if record["samples_per_s"] else "no iterations left"
        loss = f"{record['final_loss']:.4f}" if record["final_loss"] is not None else "n/a"
        print(f"trained {record['trained_iterations']} iterations{resumed} in {record['seconds']:.1f} s on "
              f"{record['world_size']} process(es): {rate}, final loss {loss}")
        print(record["precision_record"]["sentence"])
        print(f"wrote {record['checkpoint']}")
    return 0


def _parse_options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings -> {key: typed value}, with mmengine's DictAction."""
    from posefix_bench.errors import PosefixError

    bad = [p for p in pairs if "=" not in p or not p.split("=", 1)[0]]
    if bad:
        raise PosefixError(f"--cfg-options: {bad[0]!r} is not KEY=VALUE")
    if not pairs:
        return {}
    from mmengine.config import DictAction

    namespace = argparse.Namespace()
    DictAction(option_strings=["--cfg-options"], dest="options")(None, namespace, pairs)
    return dict(namespace.options or {})


def _matches(value, hint) -> bool:
    """Whether a parsed ``--cfg-options`` value fits a settings field's type annotation."""
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is tuple or origin is tuple:
        return isinstance(value, (list, tuple))
    if (origin or hint) in (collections.abc.Mapping, dict):
        return isinstance(value, dict)
    return True  # a type this check does not know: the config parser decides


def _kind(hint) -> str:
    """'an integer or None' for ``int | None`` and the like."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_kind(a) for a in typing.get_args(hint))
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "None",
             tuple: "a list", list: "a list", dict: "a dict"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def check_option_types(options: dict, cfg=None) -> None:
    """Each ``--cfg-options`` value must have the type its key takes.

    ``train.*`` / ``data.*`` keys: the type of their settings field (``TrainSettings`` / ``DataSettings`` of
    :mod:`posefix_bench.engine.train_config`; checked without a config, so before torch); other keys: the type of the value
    ``cfg`` has (when given). ``train.max_iters=abc`` is a one-line error naming the option.
    """
    if not options:
        return
    from posefix_bench.engine.train_config import DataSettings, TrainSettings
    from posefix_bench.errors import PosefixError

    sections = {"train": typing.get_type_hints(TrainSettings), "data": typing.get_type_hints(DataSettings)}
    for key, value in options.items():
        section, _, field = key.partition(".")
        hint = sections.get(section, {}).get(field)
        if hint is not None:
            if not _matches(value, hint):
                raise PosefixError(f"--cfg-options {key}={value!r}: expected {_kind(hint)}")
            continue
        current = None if cfg is None or section in sections else _lookup(cfg, key)
        if current is None or _same_kind(value, current):
            continue
        raise PosefixError(f"--cfg-options {key}={value!r}: expected {_kind(type(current))} like the config's "
                           f"{current!r}")


def _same_kind(value, current) -> bool:
    number = (int, float)
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) == isinstance(value, bool)
    if isinstance(current, number):
        return isinstance(value, number)
    if isinstance(current, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(current))


def _lookup(cfg, key: str):
    node = cfg
    for part in key.split("."):
        if not hasattr(node, "get"):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node
