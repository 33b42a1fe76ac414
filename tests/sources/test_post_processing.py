"""Free post-processing of mmpose sources: flip test and DARK decoding as source options, recorded in the info."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posefix_bench.errors import PosefixError
from posefix_bench.sources import get_source
from posefix_bench.sources.mmpose_source import dark_blur_kernel
from posefix_bench.sources.post_processing import METHODS, method_options, methods_for, post_processing_throughput

HEATMAP_CARD = "sandbox-simplebaseline-r18-128x96"  # MSRAHeatmap codec, 128x96 input, 32x24 heatmaps
SIMCC_CARD = "sandbox-rtmpose-t-64x48"


@pytest.fixture(scope="module")
def heatmap_sources():
    return {m: get_source(HEATMAP_CARD, untrained=True, seed=5, **method_options(m)) for m in METHODS}


def test_the_source_info_records_the_method(heatmap_sources):
    for method, src in heatmap_sources.items():
        post = src.info.extra["post_processing"]
        assert src.info.extra["method"] == post["method"] == method
        assert post["flip_test"] == ("flip-test" in method) == bool(src.model.test_cfg["flip_test"])
        assert post["decode"] == ("dark" if "dark" in method else "standard")
        assert post["unbiased"] is src.model.head.decoder.unbiased is ("dark" in method)
    assert "flip test" in heatmap_sources["flip-test"].info.description
    assert "DARK" in heatmap_sources["dark"].info.description
    assert "flip" not in heatmap_sources["plain"].info.description
    # the card's config turns mmpose's flip test on; the plain source has it off
    assert heatmap_sources["plain"].card.config.model.test_cfg.flip_test is True


def _gaussian(center_xy: tuple[float, float], size_wh: tuple[int, int], sigma: float) -> np.ndarray:
    """One (1, H, W) heatmap: an unnormalised Gaussian at a sub-pixel centre (heatmap pixels)."""
    x, y = np.arange(size_wh[0]), np.arange(size_wh[1])[:, None]
    return np.exp(-((x - center_xy[0]) ** 2 + (y - center_xy[1]) ** 2) / (2 * sigma**2))[None].astype(np.float32)


def test_dark_decoding_recovers_a_subpixel_peak_the_standard_decoding_rounds(heatmap_sources):
    plain, dark = heatmap_sources["plain"].model.head.decoder, heatmap_sources["dark"].model.head.decoder
    assert dark.blur_kernel_size == dark_blur_kernel(dark.sigma)
    stride = plain.scale_factor  # input pixels per heatmap pixel, (x, y)
    truth = np.array([5.45, 7.3])
    heatmap = _gaussian(tuple(truth), tuple(plain.heatmap_size), plain.sigma)
    std_xy = plain.decode(heatmap)[0][0, 0] / stride
    dark_xy = dark.decode(heatmap)[0][0, 0] / stride
    # argmax (5, 7) plus a quarter pixel towards the higher neighbour on each axis
    np.testing.assert_allclose(std_xy, [5.25, 7.25], atol=1e-6)
    assert np.abs(dark_xy - truth).max() < 0.05  # the Taylor step finds the sub-pixel peak


def test_dark_blur_kernel_matches_opencv_sigma():
    assert dark_blur_kernel(2.0) == 11  # mmpose's default kernel for its default sigma
    assert [dark_blur_kernel(s) for s in (1.0, 1.5, 3.0)] == [5, 7, 17]


def _symmetric_sample(model, seed: int):
    """A mirror-symmetric network-sized crop (3, H, W) and its data sample (image coordinates = input coordinates)."""
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample

    w, h = model.head.decoder.input_size
    half = np.random.default_rng(seed).integers(0, 256, size=(3, h, w // 2), dtype=np.uint8)
    crop = np.concatenate([half, half[:, :, ::-1]], axis=2)
    sample = PoseDataSample(metainfo=dict(
        input_size=np.array([w, h]), input_center=np.array([w / 2, h / 2]), input_scale=np.array([w, h], float),
        flip_indices=model.dataset_meta["flip_indices"]))
    sample.gt_instances = InstanceData(bboxes=np.zeros((1, 4), np.float32), bbox_scores=np.ones(1, np.float32))
    return {"inputs": [torch.from_numpy(np.ascontiguousarray(crop))], "data_samples": [sample]}


def _mirror_error(src, seed: int) -> float:
    """Largest distance (input pixels) between a left keypoint and the mirror image of its right partner."""
    model = src.model
    with torch.no_grad():
        kp = model.test_step(_symmetric_sample(model, seed))[0].pred_instances.keypoints[0]  # (K, 2)
    flip = np.asarray(model.dataset_meta["flip_indices"])
    pairs = np.flatnonzero(flip != np.arange(len(flip)))
    axis = (model.head.decoder.heatmap_size[0] - 1) * model.head.decoder.scale_factor[0] / 2  # heatmap mirror axis
    mirrored = np.stack([2 * axis - kp[flip[pairs], 0], kp[flip[pairs], 1]], axis=1)
    return float(np.abs(kp[pairs] - mirrored).max())


def test_flip_test_makes_a_symmetric_crop_give_a_mirror_symmetric_pose(heatmap_sources):
    flip = heatmap_sources["flip-test"]
    # mmpose shifts the flipped heatmap by one pixel (SimpleBaseline's alignment); without that shift the averaged
    # heatmaps of a mirror-symmetric crop are exactly mirror-symmetric, so left/right partners mirror each other
    # (up to mmpose's quarter-pixel step, which skips the first column but not the last)
    flip.model.test_cfg["shift_heatmap"] = False
    try:
        quarter = 0.25 * flip.model.head.decoder.scale_factor[0]
        assert all(_mirror_error(flip, seed) <= quarter + 1e-4 for seed in range(3))
    finally:
        flip.model.test_cfg["shift_heatmap"] = True
    # the same random network without the flip test is not symmetric
    assert max(_mirror_error(heatmap_sources["plain"], seed) for seed in range(3)) > 4 * quarter


def test_dark_applies_to_heatmap_cards_only():
    assert methods_for(HEATMAP_CARD) == ["plain", "flip-test", "dark", "flip-test+dark"]
    assert methods_for(SIMCC_CARD) == ["plain", "flip-test"]
    assert methods_for("hrnet-w32-256x192") == list(METHODS)


def test_bad_post_processing_options_are_one_line_errors():
    with pytest.raises(PosefixError, match="decode='dark' needs a heatmap head .* SimCCLabel"):
        get_source(SIMCC_CARD, untrained=True, decode="dark")
    with pytest.raises(PosefixError, match="decode must be one of standard, dark, got 'udp'"):
        get_source(HEATMAP_CARD, untrained=True, decode="udp")
    with pytest.raises(PosefixError, match="unknown option 'flip'"):
        get_source(HEATMAP_CARD, untrained=True, flip=True)
    with pytest.raises(PosefixError, match="method 'tta': unknown"):
        method_options("tta")


def test_simcc_flip_test_runs_on_real_images(val_gt, two_image_boxes):
    plain = get_source(SIMCC_CARD, untrained=True, seed=2)
    flip = get_source(SIMCC_CARD, untrained=True, seed=2, flip_test=True)
    assert flip.info.extra["post_processing"] == {"method": "flip-test", "flip_test": True, "decode": "standard",
                                                   "decoder": "SimCCLabel"}
    a, b = plain.predict(val_gt, two_image_boxes), flip.predict(val_gt, two_image_boxes)
    assert len(a) == len(b) == two_image_boxes.num_boxes
    assert [r["keypoints"] for r in a] != [r["keypoints"] for r in b]  # the flipped pass changed the outputs


def test_throughput_record_times_every_method_on_the_same_persons(val_gt, two_image_boxes):
    rec = post_processing_throughput(HEATMAP_CARD, None, val_gt, methods=("dark", "flip-test"),
                                     boxes=two_image_boxes, persons=2, rounds=1, untrained=True)
    assert list(rec["methods"]) == ["plain", "dark", "flip-test"] and rec["untrained"] is True
    assert rec["persons"] == 2 and rec["images"] <= 2
    assert rec["methods"]["plain"]["relative_speed"] == 1.0
    for method, row in rec["methods"].items():
        assert row["post_processing"]["method"] == method and row["samples_per_s"] > 0
        assert row["ms_per_sample"] == pytest.approx(1e3 / row["samples_per_s"])
