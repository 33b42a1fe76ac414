"""Fixtures of the source tests: small box sets on real coco-mini val images."""

from __future__ import annotations

import pytest

from posefix_bench.sources.boxes import BoxSet, gt_boxes


@pytest.fixture(scope="session")
def val_boxes(val_gt):
    return gt_boxes(val_gt)


@pytest.fixture(scope="session")
def two_image_boxes(val_boxes) -> BoxSet:
    """Ground-truth boxes of the first two val images that have a person with keypoints (one person each)."""
    ids = [i for i in val_boxes.image_ids if len(val_boxes.for_image(i))][:2]
    return BoxSet({i: val_boxes.for_image(i) for i in ids}, "gt")
