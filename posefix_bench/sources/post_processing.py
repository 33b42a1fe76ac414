"""The free post-processing baselines of an mmpose estimator, named, and their cost in samples/s.

A refiner has to beat what mmpose already ships at test time, for free in training and for a price in speed:

- ``flip-test``: the horizontally flipped crop goes through the network too, and its output, left and right swapped
  by the dataset meta's ``flip_indices``, is averaged with the plain one (mmpose's ``test_cfg.flip_test``; used by
  SimpleBaseline, Xiao et al. ECCV 2018, Sec. 4, and by every mmpose COCO config);
- ``dark``: distribution-aware coordinate decoding of heatmaps (Zhang et al., CVPR 2020, Sec. 3.1: the log-heatmap,
  smoothed by the training Gaussian, is expanded to second order around its maximum; mmpose's
  ``MSRAHeatmap(unbiased=True)`` decoder), against the standard argmax plus a quarter-pixel step;
- ``flip-test+dark``: both.

``plain`` is the estimator without either. :func:`method_options` turns a method name into the options of
``get_source(card, ...)`` (:class:`posefix_bench.sources.mmpose_source.MmposeSource`); the source's
``info.extra["method"]`` names it back. :func:`post_processing_throughput` measures each method's samples/s on the
same person crops, interleaved round by round so that a change of machine load hits every method alike.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Sequence

from posefix_bench.errors import PosefixError
from posefix_bench.progress import no_progress
from posefix_bench.sources.boxes import BoxSet, gt_boxes

__all__ = ["METHODS", "method_options", "methods_for", "post_processing_throughput"]

METHODS = {
    "plain": {},
    "flip-test": {"flip_test": True},
    "dark": {"decode": "dark"},
    "flip-test+dark": {"flip_test": True, "decode": "dark"},
}


def method_options(method: str) -> dict:
    """``get_source`` options of a post-processing method (``plain``, ``flip-test``, ``dark``, ``flip-test+dark``)."""
    if method not in METHODS:
        raise PosefixError(f"post-processing method {method!r}: unknown (known: {', '.join(METHODS)})")
    return {"flip_test": False, "decode": "standard", **METHODS[method]}


def methods_for(card) -> list[str]:
    """The methods that apply to a card (an :class:`~posefix_bench.sources.cards.EstimatorCard`, file or name):
    all four for a heatmap head (``MSRAHeatmap`` codec), ``plain`` and ``flip-test`` otherwise."""
    from posefix_bench.sources.mmpose_train import resolve_card

    decoder = (resolve_card(card).config.model.get("head") or {}).get("decoder") or {}
    return list(METHODS) if decoder.get("type") == "MSRAHeatmap" else ["plain", "flip-test"]


def _first_persons(dataset, boxes: BoxSet, persons: int) -> BoxSet:
    """The boxes of the first images (by id) holding at least ``persons`` boxes together."""
    picked, count = {}, 0
    for image_id in boxes.image_ids:
        b = boxes.for_image(image_id)
        if len(b) and count < persons:
            picked[image_id] = b
            count += len(b)
    if not count:
        raise PosefixError(f"{dataset.path}: no person box to time the estimator on")
    return BoxSet(picked, boxes.origin, boxes.score_thr)


def post_processing_throughput(
    card,
    checkpoint: str | os.PathLike | None,
    dataset,
    methods: Sequence[str] = ("plain", "flip-test", "dark"),
    boxes: BoxSet | None = None,
    persons: int = 64,
    rounds: int = 3,
    batch_size: int = 16,
    device: str = "cpu",
    untrained: bool = False,
    progress=no_progress,
) -> dict:
    """Samples/s of the estimator with each post-processing method: the whole ``predict`` (image reading, crops,
    network, decoding, rescoring) on the same persons, one untimed warm-up call per method, then ``rounds`` rounds
    that each time every method once; the median per method.

    Args:
        card: the estimator card (or its name / file).
        checkpoint: its weights (None with ``untrained=True``: random weights, marked in the record).
        dataset: images and keypoint schema (a :class:`~posefix_bench.structures.coco.CocoDataset`).
        methods: names from :data:`METHODS`; ``plain`` is added first when missing (the ratios' reference).
        boxes: person boxes (default the ground truth); the first images holding ``persons`` boxes are used.
        rounds: timed calls per method.
        batch_size, device: of the estimator.

    Returns ``{"card", "persons", "images", "rounds", "threads", "untrained", "methods": {method: {"samples_per_s",
    "ms_per_sample", "relative_speed", "post_processing"}}}``; ``relative_speed`` is samples/s over plain's.
    """
    import torch

    from posefix_bench.sources.mmpose_source import MmposeSource
    from posefix_bench.sources.mmpose_train import resolve_card

    card = resolve_card(card)
    names = ["plain"] + [m for m in dict.fromkeys(methods) if m != "plain"]
    if rounds < 1 or persons < 1:
        raise PosefixError(f"post-processing throughput: rounds and persons must be >= 1, got {rounds}, {persons}")
    sources = {m: MmposeSource(card, checkpoint=None if untrained else checkpoint, device=device,
                               batch_size=batch_size, untrained=untrained, **method_options(m)) for m in names}
    subset = _first_persons(dataset, gt_boxes(dataset) if boxes is None else boxes, persons)
    n = subset.num_boxes
    times: dict[str, list[float]] = {m: [] for m in names}
    for m in names:
        sources[m].predict(dataset, subset)  # warm-up
    for _ in progress(range(rounds), total=rounds, desc=f"time {card.name} post-processing"):
        for m in names:
            t0 = time.perf_counter()
            sources[m].predict(dataset, subset)
            times[m].append(time.perf_counter() - t0)
    rate = {m: n / statistics.median(times[m]) for m in names}
    return {
        "card": card.name, "persons": n, "images": len(subset.image_ids), "rounds": rounds,
        "threads": torch.get_num_threads(), "untrained": bool(untrained),
        "methods": {m: {"samples_per_s": rate[m], "ms_per_sample": 1e3 / rate[m],
                        "relative_speed": rate[m] / rate["plain"],
                        "post_processing": sources[m].info.extra["post_processing"]} for m in names},
    }
