import contextlib
import io

import numpy as np

from posefix_bench.codecs.oks import keypoint_similarity, ks_distance, oks_matrix

from helpers import noisy_results


def test_ks_distance_inverts_ks():
    sig = np.array([0.026, 0.107])
    for ks in (0.1, 0.5, 0.85):
        d = ks_distance(ks, 2500.0, sig)
        np.testing.assert_allclose(keypoint_similarity(d**2, np.array(2500.0), sig), ks)


def test_oks_matrix_equals_pycocotools_computeoks(val_gt):
    """Same numbers as COCOeval.computeOks on real data, including ground truths without keypoints."""
    from pycocotools.cocoeval import COCOeval

    res = noisy_results(val_gt, seed=3)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = val_gt.coco.loadRes([dict(r) for r in res])
        ev = COCOeval(val_gt.coco, dt, iouType="keypoints")
        ev.params.imgIds = val_gt.image_ids
        ev.evaluate()
    checked = 0
    for (img, cat), ious in ev.ious.items():
        if len(ious) == 0:
            continue
        gts = ev._gts[img, cat]
        dts = sorted(ev._dts[img, cat], key=lambda d: -d["score"])
        ours = oks_matrix(
            np.array([d["keypoints"] for d in dts]).reshape(len(dts), 17, 3),
            np.array([g["keypoints"] for g in gts]).reshape(len(gts), 17, 3),
            np.array([g["area"] for g in gts]), np.array([g["bbox"] for g in gts]), ev.params.kpt_oks_sigmas)
        np.testing.assert_allclose(ours, ious, rtol=1e-12, atol=1e-15)
        checked += 1
    assert checked > 30


def test_absent_keypoints_score_zero():
    gt = np.array([[[10.0, 10.0, 2], [20.0, 20.0, 2]]])
    det = np.array([[[10.0, 10.0], [20.0, 20.0]]])
    sig = np.array([0.05, 0.05])
    full = oks_matrix(det, gt, np.array([100.0]), np.array([[0, 0, 30, 30.0]]), sig)
    half = oks_matrix(det, gt, np.array([100.0]), np.array([[0, 0, 30, 30.0]]), sig,
                      det_absent=np.array([[False, True]]))
    np.testing.assert_allclose(full, 1.0)
    np.testing.assert_allclose(half, 0.5)
