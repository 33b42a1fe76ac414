import json

import numpy as np
import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.structures.coco import CocoDataset, read_image_file


def test_loads_coco_mini(val_gt, train_gt):
    assert len(val_gt) == 96 and len(train_gt) == 130
    assert val_gt.schema.name == "coco17" and val_gt.category_id == 1
    assert sum(1 for _ in val_gt.persons()) == 91  # README: 91 persons with keypoints
    assert val_gt.image_dir.name == "val2017"
    arr = val_gt.gt_arrays(785)
    assert arr.keypoints.shape == (1, 17, 3) and arr.boxes.shape == (1, 4) and arr.areas[0] > 0


def test_read_image(val_gt):
    img = val_gt.read_image(785)
    info = val_gt.image_info(785)
    assert img.shape == (info["height"], info["width"], 3) and img.dtype == np.uint8


def test_bad_inputs(tmp_path, val_gt):
    bad_img = tmp_path / "x.jpg"
    bad_img.write_bytes(b"not a jpeg")
    with pytest.raises(PosefixError, match="cannot be decoded"):
        read_image_file(bad_img)
    with pytest.raises(PosefixError, match="image id 1 not in the ground truth"):
        val_gt.image_info(1)
    p = tmp_path / "gt.json"
    p.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]}))
    with pytest.raises(PosefixError, match="no keypoint category"):
        CocoDataset(p)
    p.write_text("[1, 2]")
    with pytest.raises(PosefixError, match="expected a COCO annotation object"):
        CocoDataset(p)


def test_loading_pauses_the_garbage_collector_and_restores_it(val_gt_path, tmp_path):
    import gc

    from posefix_bench.errors import PosefixError
    from posefix_bench.structures.coco import gc_paused

    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert len(CocoDataset(val_gt_path)) > 0 and gc.isenabled()
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(PosefixError):
        CocoDataset(bad)
    assert gc.isenabled()  # re-enabled after a failed load too
    gc.disable()
    try:
        CocoDataset(val_gt_path)
        assert not gc.isenabled()  # a caller's own setting is kept
    finally:
        gc.enable()
