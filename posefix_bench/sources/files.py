"""Sources without a network: an existing results file, and input poses synthesised from the ground truth.

- ``results-file``: any estimator's COCO keypoint results JSON, PoseFix's original use (Moon et al., CVPR 2019,
  Sec. 5: it refines the released results of other methods). The file is validated against the dataset
  (:func:`posefix_bench.structures.results.load_results`: keypoint count, image and category ids, values); its
  persons are the estimator's own, so boxes are not used.
- ``synthetic``: poses made from the ground truth with the error statistics of Ronchi & Perona (ICCV 2017) as
  PoseFix synthesises its training inputs (Sec. 4), by
  :func:`posefix_bench.synthesis.synthesize.synthesize_results` with an error mix and a seed.
"""

from __future__ import annotations

import os

from posefix_bench.errors import PosefixError
from posefix_bench.progress import no_progress
from posefix_bench.sources.base import Source, SourceInfo
from posefix_bench.structures.schema import COCO17

__all__ = ["RESULTS_FILE_INFO", "SYNTHETIC_INFO", "ResultsFileSource", "SyntheticSource"]

RESULTS_FILE_INFO = SourceInfo(
    name="results-file", kind="results-file", family="", schema=COCO17.name,
    description="any estimator's COCO keypoint results JSON (option path=...), validated against the dataset",
)
SYNTHETIC_INFO = SourceInfo(
    name="synthetic", kind="synthetic", family="Ronchi-Perona synthesis", schema=COCO17.name,
    description="ground truth with synthesised jitter/inversion/swap/miss errors (options mix=..., seed=...)",
)


class ResultsFileSource(Source):
    """A COCO keypoint results file as a source.

    Args:
        path: the results JSON.
        subset: the dataset it runs on may be part of the split the file covers (``bench --smoke``'s few
            validation images): the results of other images are dropped rather than refused.
    """

    def __init__(self, path: str | os.PathLike | None = None, subset: bool = False):
        self.subset = bool(subset)
        if path is None:
            raise PosefixError("source 'results-file': needs path=RESULTS.json (on the command line: --results)")
        self.path = os.fspath(path)
        self.info = SourceInfo(
            name="results-file", kind="results-file", schema=COCO17.name, weights=None,
            description=f"COCO keypoint results from {self.path}",
            extra={"path": self.path},
        )

    def predict(self, dataset, boxes=None, progress=no_progress) -> list[dict]:
        """The file's results, validated against ``dataset`` (``boxes`` are not used: the file has its own)."""
        from posefix_bench.structures.results import load_results

        return load_results(self.path, dataset, gt_images_only=self.subset)


class SyntheticSource(Source):
    """Synthesised input poses.

    Args:
        mix: an error mix (name such as ``paper``, an error-profile JSON, or a dict; see
            :mod:`posefix_bench.synthesis.mixes`).
        seed: the synthesis seed (same seed, same poses).
        estimator_results: optional results (list or path) whose persons and scores the synthesis follows.
    """

    def __init__(self, mix="paper", seed: int = 0, estimator_results=None):
        self.mix = mix
        self.seed = int(seed)
        self.estimator_results = estimator_results
        self.info = SourceInfo(
            name="synthetic", kind="synthetic", family="Ronchi-Perona synthesis", schema=COCO17.name,
            description=f"synthesised input poses (mix {mix!r}, seed {self.seed})",
            extra={"mix": mix if isinstance(mix, str) else repr(mix), "seed": self.seed},
        )

    def predict(self, dataset, boxes=None, progress=no_progress) -> list[dict]:
        """Poses synthesised from ``dataset``'s ground truth (``boxes`` are not used)."""
        from posefix_bench.synthesis.mixes import get_mix
        from posefix_bench.synthesis.synthesize import synthesize_results

        estimator = self.estimator_results
        if isinstance(estimator, (str, os.PathLike)):
            from posefix_bench.structures.results import load_results

            estimator = load_results(estimator, dataset)
        mix = get_mix(self.mix, dataset.schema)
        return synthesize_results(dataset, mix, self.seed, estimator_results=estimator, progress=progress)
