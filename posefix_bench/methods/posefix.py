"""The ``posefix`` refinement method: a trained refiner checkpoint (:class:`~posefix_bench.engine.refine.
RefinePostProcessor`, PoseFix, Moon et al., CVPR 2019) behind the method interface, with its calibrated gate as
today (applied by default; ``gate=False`` refines ungated). Every bench ablation is a posefix method with its own
checkpoint.
"""

from __future__ import annotations

import math
from pathlib import Path

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.methods.base import Method, MethodInfo
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY

__all__ = ["PosefixMethod"]


class PosefixMethod(Method):
    """A trained refiner (a ``final.pth`` or training checkpoint) applied to each input pose's crop.

    Args:
        checkpoint: the refiner checkpoint.
        device, batch_size, flip, box, precision, gate: as :class:`~posefix_bench.engine.refine.RefinePostProcessor`.

    Attributes:
        post: the :class:`~posefix_bench.engine.refine.RefinePostProcessor` (after :meth:`setup`).
        last: the last pass's :class:`~posefix_bench.engine.refine.RefineOutput` (both readings, the gate's
            evidence), for a command's summary.
    """

    info = MethodInfo(type="posefix", description="a trained PoseFix refiner checkpoint (its calibrated gate applied)",
                      learned=True)

    def __init__(self, checkpoint: str | Path, name: str | None = None, device: str = "cpu", batch_size: int = 32,
                 flip: bool = False, box: str = "keypoints", precision: str = "auto", gate: bool = True,
                 absent_policy: str = DEFAULT_ABSENT_POLICY):
        super().__init__(name, absent_policy)
        from posefix_bench.engine.refine import BOX_MODES

        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise file_error(self.checkpoint, f"refiner checkpoint not found (method {self.name!r})")
        if box not in BOX_MODES:
            raise PosefixError(f"method {self.name!r}: unknown crop box {box!r} (known: {', '.join(BOX_MODES)})")
        if int(batch_size) < 1:
            raise PosefixError(f"method {self.name!r}: batch size must be >= 1, got {batch_size}")
        self.options = dict(device=device, batch_size=int(batch_size), flip=bool(flip), box=box,
                            precision=precision, gate=gate)
        self.post = None
        self.last = None

    @property
    def refined_by(self) -> str:
        return self.post.name if self.post is not None else str(self.checkpoint)

    def setup(self) -> None:
        from posefix_bench.engine.refine import RefinePostProcessor

        self.post = RefinePostProcessor(self.checkpoint, absent_policy=self.absent_policy, **self.options)
        self.notices.extend(self.post.notices)

    def run(self, results, images, gt, progress: Progress = no_progress):
        from posefix_bench.structures.coco import CocoDataset

        dataset = CocoDataset(gt, image_dir=images)
        self.last = self.post.refine_detailed(dataset, results, progress=progress)
        for i, r in enumerate(self.last.records):  # the checkpoint's fault, not the method contract's: name it
            if not all(math.isfinite(v) for v in r["keypoints"]):
                raise file_error(self.checkpoint, f"the refiner produced non-finite keypoints (result {i}); its "
                                 "weights overflow on these inputs")
        return self.last.records
