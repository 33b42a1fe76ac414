"""Entry script of the resume test: train as ``posefix-bench train`` does, with one extra hook that SIGKILLs this
process right after the first checkpoint at an iteration >= N is on disk (the fault the trainer must survive).

``python tests/engine/train_until_killed.py CONFIG WORK_DIR N [KEY=VALUE ...]`` (the ``KEY=VALUE`` overrides are
parsed as the train command's ``--cfg-options``, so a later ``train --resume`` sees the same config).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from posefix_bench.engine.hooks import HookBase


class KillAfterCheckpoint(HookBase):
    """SIGKILL after the step whose checkpoint (at an iteration >= ``after``) was just written."""

    def __init__(self, after: int):
        self.after = after

    def after_step(self, trainer) -> None:
        if trainer.iteration >= self.after and (trainer.checkpoint_dir / f"iter_{trainer.iteration}.pth").is_file():
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    from mmengine.config import DictAction

    from posefix_bench.engine.train import load_config, train

    config, work_dir, after, *pairs = argv
    namespace = argparse.Namespace()
    DictAction(option_strings=["--cfg-options"], dest="options")(None, namespace, pairs)
    train(load_config(config, dict(namespace.options or {})), work_dir, hooks=[KillAfterCheckpoint(int(after))])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
