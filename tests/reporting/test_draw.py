"""Skeleton drawing and contact sheets, on real coco-mini images and their ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.reporting.draw import (
    SIDE_COLORS, coco_contact_sheet, contact_sheet, draw_pose, draw_poses, side_of, write_image,
)  # fmt: skip
from posefix_bench.structures.coco import read_image_file
from posefix_bench.structures.schema import COCO17


def _person(val_gt, min_labelled=12):
    for image_id in val_gt.image_ids:
        arr = val_gt.gt_arrays(image_id)
        for g in range(len(arr)):
            v = arr.keypoints[g, :, 2]
            if (v > 0).sum() >= min_labelled and (v == 0).any():
                return val_gt.read_image(image_id), arr.keypoints[g]
    raise AssertionError("no suitable person in coco-mini val")


def _allowed_region(shape, kp, present, reach):
    region = np.zeros(shape[:2], np.uint8)
    for a, b in COCO17.skeleton:
        if present[a] and present[b]:
            cv2.line(region, tuple(int(round(c)) for c in kp[a, :2]), tuple(int(round(c)) for c in kp[b, :2]), 1,
                     2 * reach)
    for j in np.flatnonzero(present):
        cv2.circle(region, tuple(int(round(c)) for c in kp[j, :2]), reach, 1, -1)
    return region.astype(bool)


def test_draws_only_around_present_joints_and_leaves_input_alone(val_gt):
    image, kp = _person(val_gt)
    before = image.copy()
    out = draw_pose(image, kp, COCO17, thickness=2, radius=3)
    assert np.array_equal(image, before)
    changed = (out != image).any(axis=2)
    present = kp[:, 2] > 0
    assert not (changed & ~_allowed_region(image.shape, kp, present, reach=3 + 2 + 2)).any()
    for j in np.flatnonzero(present):  # every labelled joint got a marker
        x, y = (int(round(c)) for c in kp[j, :2])
        assert changed[y, x]


def test_left_and_right_are_distinguishable():
    kp = np.zeros((COCO17.num_keypoints, 2))
    kp[COCO17.index("left_wrist")] = (20, 20)
    kp[COCO17.index("right_wrist")] = (60, 20)
    black = np.zeros((40, 80, 3), np.uint8)
    default = draw_pose(black, kp, COCO17, radius=5)
    assert tuple(default[20, 20]) == SIDE_COLORS["left"] and tuple(default[20, 60]) == SIDE_COLORS["right"]
    red = draw_pose(black, kp, COCO17, color=(200, 0, 0), radius=7)
    assert int(red[20, 20].sum()) > int(red[20, 60].sum()) > 0
    # markers differ in shape too: a square fills its corner region, a circle does not
    assert red[20 - 5, 60 - 5].max() > 100 and red[20 - 5, 20 - 5].max() < 60
    side = side_of(COCO17)
    assert side[COCO17.index("left_knee")] == 1 and side[COCO17.index("right_knee")] == -1 and side[0] == 0


def test_scores_and_hollow_joints():
    kp = np.zeros((COCO17.num_keypoints, 3))
    kp[:, :2] = np.stack([np.arange(COCO17.num_keypoints) * 12 + 10, np.full(COCO17.num_keypoints, 30)], 1)
    kp[:, 2] = 0.9
    kp[3] = (200, 50, 0.1)  # away from every link of the others
    black = np.zeros((60, 230, 3), np.uint8)
    out = draw_pose(black, kp, COCO17, min_score=0.3, radius=4, thickness=1)
    assert not out[44:57, 194:207].any()  # below min_score: neither marker nor links
    assert out[44:57, 194:207].shape == (13, 13, 3)
    assert draw_pose(black, kp, COCO17, min_score=0.05, radius=4)[50, 200].any()
    alone = np.zeros_like(kp)
    alone[0] = (20, 30, 2)  # no link: only the marker is drawn
    hollow = np.ones(COCO17.num_keypoints, bool)
    ring = draw_pose(black, alone, COCO17, radius=4, thickness=1, hollow=hollow)
    dot = draw_pose(black, alone, COCO17, radius=4, thickness=1)
    assert not ring[30, 20].any() and ring[30, 24].any() and dot[30, 20].any()


def test_bad_inputs_are_one_line_errors():
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(PosefixError, match="expected \\(17, 2\\)"):
        draw_pose(img, np.zeros((5, 2)), COCO17)
    with pytest.raises(PosefixError, match="uint8"):
        draw_pose(img.astype(np.float32), np.zeros((17, 2)), COCO17)
    with pytest.raises(PosefixError, match="2 images but 1"):
        contact_sheet([img, img], [np.zeros((0, 17, 3))], COCO17)


def test_contact_sheet_layout_and_scaling():
    kp = np.zeros((1, COCO17.num_keypoints, 3))
    kp[0, 0] = (30, 40, 2)
    img = np.zeros((100, 100, 3), np.uint8)
    sheet = contact_sheet([img, img, img], [kp, np.zeros((0, 17, 3)), kp], COCO17, cols=2, tile=(200, 200),
                          pad=4, radius=3, colors=[[(0, 0, 255)], [], [(0, 0, 255)]])
    assert sheet.shape == (2 * 204 + 4, 2 * 204 + 4, 3)
    tile0 = sheet[4:204, 4:204]
    ys, xs = np.nonzero(tile0[..., 2] > 100)
    assert abs(xs.mean() - 60.5) < 1.0 and abs(ys.mean() - 80.5) < 1.0  # (x + 0.5) * 2 - 0.5
    assert not sheet[4:204, 208:408].any()  # the tile without poses is untouched (black image)


def test_coco_contact_sheet_written_as_png(val_gt, tmp_path):
    ids = val_gt.image_ids[:6]
    sheet = coco_contact_sheet(val_gt, ids, cols=3, tile=(160, 120))
    assert sheet.shape == (2 * 124 + 4, 3 * 164 + 4, 3)
    path = write_image(tmp_path / "sheet.png", sheet)
    assert np.array_equal(read_image_file(path), sheet)
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]
    with pytest.raises(PosefixError, match="PNG"):
        write_image(tmp_path / "sheet.jpg", sheet)


def test_draw_poses_colours_each_person(val_gt):
    image, kp = _person(val_gt)
    two = np.stack([kp, kp + np.array([5.0, 0.0, 0.0])])
    out = draw_poses(image, two, COCO17, colors=[(255, 0, 0), (0, 0, 255)], labels=["input", "refined"])
    assert out.shape == image.shape and not np.array_equal(out, image)
    assert np.array_equal(draw_poses(image, np.zeros((0, 17, 3)), COCO17), image)
