"""The ``re-estimate`` refinement method: a top-down estimator run again on each input pose's own box.

The classic alternative to a learned refiner: crop each detected person around the pose a bottom-up or weaker
method found and run a single-person top-down estimator on that crop, its keypoints replacing the input's. The
OpenPose paper (Cao et al., CVPR 2017, Sec. 4.1, "refined with a single-person CPM") and the associative-embedding
paper (Newell et al., NIPS 2017, Sec. 4, "single-person refinement") report about +2.6 AP from it on COCO. Here the
box is the one PoseFix crops (:func:`posefix_bench.structures.transforms.pose_boxes`: the predicted keypoints' box
enlarged by 1.2, or the record's ``bbox`` with ``box='bbox'``), which the estimator's own test pipeline then pads by
1.25 and fits to its aspect ratio (mmpose's ``GetBBoxCenterScale`` / ``TopdownAffine``, as PoseFix does). The
estimator is any mmpose card (:mod:`posefix_bench.sources.cards`), with its published weights, a checkpoint, or
random weights (``untrained=True``, every output then marked ``untrained``).

Each record keeps its score and every other field; keypoints the input did not predict stay absent (the method
contract, :mod:`posefix_bench.methods.base`); a pose without a usable box passes through with ``refine_skipped``.
"""

from __future__ import annotations

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.methods.base import Method, MethodInfo
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY
from posefix_bench.structures.transforms import BOX_MODES, pose_boxes, record_bboxes

__all__ = ["ReEstimateMethod", "mmpose_estimators"]


def mmpose_estimators() -> list[str]:
    """The names of the mmpose estimators (cards) the method can run."""
    from posefix_bench.sources import list_sources

    return [i.name for i in list_sources() if i.kind == "mmpose"]


class ReEstimateMethod(Method):
    """An mmpose top-down estimator re-run on the box of each input pose.

    Args:
        estimator: an mmpose card name (``posefix-bench sources`` lists them).
        checkpoint: its weights (default: the card's published checkpoint).
        untrained: random weights (seeded; outputs marked untrained).
        device, batch_size: as the mmpose source.
        box: ``keypoints`` (the keypoints' box x 1.2, PoseFix's crop) or ``bbox``.
    """

    info = MethodInfo(type="re-estimate", description="a top-down mmpose estimator run on each input pose's box "
                      "(PoseFix's crop box); its keypoints replace the input's", learned=True)

    def __init__(self, estimator: str, name: str | None = None, checkpoint: str | None = None, untrained: bool = False,
                 device: str = "cpu", batch_size: int = 16, box: str = "keypoints",
                 absent_policy: str = DEFAULT_ABSENT_POLICY):
        super().__init__(name, absent_policy)
        known = mmpose_estimators()
        if estimator not in known:
            raise PosefixError(f"method {self.name!r}: estimator {estimator!r} is not an mmpose estimator card "
                               f"(known: {', '.join(known)})")
        if box not in BOX_MODES:
            raise PosefixError(f"method {self.name!r}: unknown crop box {box!r} (known: {', '.join(BOX_MODES)})")
        self.estimator, self.box = estimator, box
        self.options = dict(device=device, batch_size=int(batch_size))
        if checkpoint is not None:
            self.options["checkpoint"] = str(checkpoint)
        if untrained:
            self.options["untrained"] = True
        self.source = None

    def setup(self) -> None:
        from posefix_bench.sources import get_source

        self.source = get_source(self.estimator, **self.options)

    def run(self, results, images, gt, progress: Progress = no_progress):
        from posefix_bench.sources.base import mark_untrained
        from posefix_bench.structures.coco import CocoDataset

        dataset = CocoDataset(gt, image_dir=images)
        k = dataset.schema.num_keypoints
        kp = np.asarray([r["keypoints"] for r in results], dtype=np.float64).reshape(len(results), k, 3)
        boxes, ok = pose_boxes(kp, record_bboxes(results), self.box, self.absent_policy)
        idx = np.flatnonzero(ok)
        estimated = self.source.estimate_boxes(dataset, [results[i]["image_id"] for i in idx], boxes[idx], progress)
        skipped = "no box: fewer than two distinct predicted keypoints and no bbox"
        out = [dict(r, refine_skipped=skipped) for r in results]
        for j, i in enumerate(idx):
            out[i] = dict(results[i], keypoints=[float(v) for v in estimated[j].reshape(-1)])
        return mark_untrained(out) if self.source.untrained else out
