"""Speed of one estimator-adapter step on the persons of one real image (coco-mini val 197388, 5 ground-truth
boxes): an mmpose top-down forward (RTMPose-m, random weights, mmpose's flip test) measured side by side with
mediapipe's BlazePose on the same boxes (``make bench-throughput``)."""

from __future__ import annotations

import pytest

from posefix_bench.sources import get_source
from posefix_bench.sources.boxes import BoxSet, gt_boxes

IMAGE_ID = 197388


@pytest.fixture(scope="module")
def one_image(val_gt) -> BoxSet:
    return BoxSet({IMAGE_ID: gt_boxes(val_gt).for_image(IMAGE_ID)}, "gt")


@pytest.mark.slow
@pytest.mark.parametrize("name, options", [("rtmpose-m-256x192", {"untrained": True}), ("mediapipe", {})])
def test_adapter_step(benchmark, val_gt, one_image, name, options):
    src = get_source(name, **options)
    records = benchmark(src.predict, val_gt, one_image)
    assert one_image.num_boxes == 5 and 0 < len(records) <= 5
    benchmark.extra_info["persons"] = one_image.num_boxes
