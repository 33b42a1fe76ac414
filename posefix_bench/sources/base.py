"""The upstream-source interface: anything that turns a COCO dataset (and person boxes) into keypoint results.

PoseFix (Moon et al., CVPR 2019, Sec. 1 and 3) is model-agnostic: it refines the output of *any* pose estimator,
given as a COCO keypoint results file. The suite makes that concrete with one interface for every producer of
input poses: a pretrained or sandbox-trained mmpose estimator, mediapipe's BlazePose, an existing results file,
Ronchi-Perona synthesis, and (in :mod:`posefix_bench.engine`) a refiner wrapped around any of them. A source has

- ``.name`` and ``.info`` (a :class:`SourceInfo`: what it is, which weights, trained or not, published numbers);
- ``.predict(dataset, boxes=None, progress=no_progress) -> list[dict]``: COCO keypoint results (see
  :mod:`posefix_bench.structures.results`) for the persons in ``boxes`` (default: the ground-truth boxes).

A source whose weights are random (an "untrained" mmpose model) marks every record with ``"untrained": true``
(:func:`mark_untrained`) and says ``trained=False`` in its info, so its numbers can never pass for real ones.

The registry (:func:`register_source`, :func:`get_source`, :func:`list_sources`) lives in
:mod:`posefix_bench.sources.registry`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

from posefix_bench.errors import PosefixError
from posefix_bench.progress import no_progress
from posefix_bench.structures.schema import COCO17

__all__ = ["SOURCE_KINDS", "UNTRAINED_KEY", "SourceInfo", "Source", "mark_untrained"]

SOURCE_KINDS = ("mmpose", "mediapipe", "results-file", "synthetic", "refined")
UNTRAINED_KEY = "untrained"


@dataclass(frozen=True)
class SourceInfo:
    """What a source is (plain record; :meth:`to_record` gives JSON types).

    Attributes:
        name: registry name (``hrnet-w32-256x192``, ``mediapipe``, ...).
        kind: one of :data:`SOURCE_KINDS`.
        family: model family (``SimpleBaseline``, ``HRNet``, ``RTMPose``, ``BlazePose``) or ``""``.
        schema: keypoint schema name of its output (``coco17``).
        input_size: (width, height) of the network input in pixels, if it has one.
        weights: checkpoint path / URL / model file it runs with; None for random weights or no model.
        trained: False only for a model with random weights (its results are marked untrained).
        published: published accuracy, e.g. ``{"AP": 0.718, "detector": ..., "source": URL}``; None if none.
        description: one line for listings.
    """

    name: str
    kind: str
    family: str = ""
    schema: str = COCO17.name
    input_size: tuple[int, int] | None = None
    weights: str | None = None
    trained: bool = True
    published: Mapping | None = None
    description: str = ""
    extra: Mapping = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise PosefixError(f"source {self.name!r}: unknown kind {self.kind!r} (known: {', '.join(SOURCE_KINDS)})")
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))

    def to_record(self) -> dict:
        rec = asdict(self)
        rec["input_size"] = list(self.input_size) if self.input_size else None
        rec["published"] = dict(self.published) if self.published else None
        rec["extra"] = dict(self.extra)
        return rec


class Source:
    """Base class of the sources: ``info`` set by the subclass, ``predict`` implemented by it."""

    info: SourceInfo

    @property
    def name(self) -> str:
        return self.info.name

    def predict(self, dataset, boxes=None, progress=no_progress) -> list[dict]:
        """COCO keypoint results for ``dataset`` (a :class:`~posefix_bench.structures.coco.CocoDataset`).

        Args:
            dataset: the images and their keypoint schema.
            boxes: a :class:`~posefix_bench.sources.boxes.BoxSet` (person boxes per image); None: ground truth.
            progress: progress callback (:mod:`posefix_bench.progress`).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, trained={self.info.trained})"


def mark_untrained(records: list[dict]) -> list[dict]:
    """Add ``"untrained": true`` to every record (in place) and return them."""
    for r in records:
        r[UNTRAINED_KEY] = True
    return records
