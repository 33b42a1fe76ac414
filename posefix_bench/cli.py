"""The ``posefix-bench`` command line.

Each command is a module in :mod:`posefix_bench.commands` exposing ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Command modules import their heavy dependencies (torch, matplotlib, mmpose, cv2) inside
``run``, and only the command being run is imported (``tests/test_cli_imports.py`` checks both), so ``--help`` and
light commands (evaluate, diagnose --no-plots) start without them.
A :class:`~posefix_bench.errors.PosefixError` becomes one line on stderr and exit status 2; nothing else here
catches exceptions, so a bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from posefix_bench import __version__
from posefix_bench.errors import PosefixError

# the order commands are listed in; modules not named here follow alphabetically
ORDER = (
    "bench", "sandbox", "sources", "methods", "estimate", "synthesize", "train", "refine", "video", "evaluate",
    "diagnose", "profile", "throughput",
)  # fmt: skip


def _command_modules() -> list[str]:
    import posefix_bench.commands as pkg

    names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``command``, only that command's module is imported (the others are listed bare)."""
    parser = argparse.ArgumentParser(
        prog="posefix-bench",
        description="Benchmark and ablation suite for PoseFix-style human pose refinement.",
    )
    parser.add_argument("--version", action="version", version=f"posefix-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _command_modules():
        if command is not None and name != command:
            sub.add_parser(name)
            continue
        mod = importlib.import_module(f"posefix_bench.commands.{name}")
        p = sub.add_parser(name, help=mod.HELP, description=(mod.__doc__ or mod.HELP).strip())
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # transparent huge pages for torch's CPU allocations (must be set before torch allocates): large heatmap and
    # activation buffers otherwise pay more in page faults than in compute (measured in engine/throughput.py)
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    argv = sys.argv[1:] if argv is None else list(argv)
    # the top-level parser has no options that take a value: a leading non-option word is the command
    command = argv[0] if argv and not argv[0].startswith("-") and argv[0] in _command_modules() else None
    args = build_parser(command).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except PosefixError as e:
        print(f"posefix-bench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"posefix-bench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
