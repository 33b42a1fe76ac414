"""Shared fixtures: the real coco-mini slice of COCO 2017 (``$POSEFIX_COCO_MINI`` or ``../shared/data/coco-mini``).

A missing dataset fails the whole session (it is never a skip): CI must run on real data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from posefix_bench.structures.coco import CocoDataset, coco_split_paths, default_coco_mini_root

COCO_MINI = default_coco_mini_root()


def pytest_sessionstart(session):
    ann, images = coco_split_paths(COCO_MINI, "val2017")
    if not ann.is_file() or not images.is_dir():
        raise pytest.UsageError(
            f"coco-mini not found at {COCO_MINI} (expected {ann} and {images}); "
            "set POSEFIX_COCO_MINI or put ../shared beside the repository"
        )


@pytest.fixture(scope="session")
def coco_mini_root() -> Path:
    return COCO_MINI


@pytest.fixture(scope="session")
def val_gt_path() -> Path:
    return coco_split_paths(COCO_MINI, "val2017")[0]


@pytest.fixture(scope="session")
def train_gt_path() -> Path:
    return coco_split_paths(COCO_MINI, "train2017")[0]


@pytest.fixture(scope="session")
def val_gt(val_gt_path) -> CocoDataset:
    return CocoDataset(val_gt_path)


@pytest.fixture(scope="session")
def train_gt(train_gt_path) -> CocoDataset:
    return CocoDataset(train_gt_path)


@pytest.fixture(scope="session")
def det_boxes_path(coco_mini_root) -> Path:
    return coco_mini_root / "annotations" / "test_coco_det_AP_H_56.json"


# the results files of ../shared/notes/coco-analyze-reference.md (coco-analyze's own counts on coco-mini val)
COCO_ANALYZE_REFERENCE = ("mediapipe_cocomini_val.json", "synthetic_paper_s1000.json", "noisy4x_cocomini_val.json")


@pytest.fixture(scope="session")
def reference_dir(coco_mini_root) -> Path:
    path = coco_mini_root.parent / "coco-analyze-reference"
    if not all((path / name).is_file() for name in COCO_ANALYZE_REFERENCE):
        pytest.fail(f"coco-analyze reference files not found in {path} (a missing dataset is a failure)")
    return path
