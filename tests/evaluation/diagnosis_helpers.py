"""Hand-built COCO-format cases whose diagnosis is known by construction (shared by the diagnosis tests).

``coco17_case``: two overlapping people (A without labelled ankles, B), a crowd region, and a second image with a
person D and a person C without labelled keypoints; results with a pure inversion, a swap (same and symmetric joint
of the neighbour), a jitter at a chosen KS, a miss, an absent keypoint, a false positive, detections on the crowd
and on C. ``custom_case``: the same idea on a 4-keypoint schema carried by the category (with ``sigmas``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from posefix_bench.codecs.oks import ks_distance
from posefix_bench.structures.schema import COCO17

# a frontal person in a 100 x 200 box (COCO-17 order)
TEMPLATE17 = np.array([
    (50, 20), (55, 15), (45, 15), (60, 18), (40, 18), (70, 50), (30, 50), (80, 85), (20, 85), (85, 120), (15, 120),
    (62, 120), (38, 120), (64, 160), (36, 160), (65, 195), (35, 195)], dtype=np.float64)  # fmt: skip
AREA = 10000.0
JITTER_KS = 0.7

CUSTOM_CATEGORY = {
    "id": 1, "name": "critter", "supercategory": "animal", "schema": "critter4",
    "keypoints": ["head", "left_hand", "right_hand", "tail"], "skeleton": [[1, 2], [1, 3], [1, 4]],
    "sigmas": [0.05, 0.08, 0.08, 0.1], "groups": {"front": [0], "hands": [1, 2], "back": [3]},
}  # fmt: skip
TEMPLATE4 = np.array([(50, 10), (80, 50), (20, 50), (50, 90)], dtype=np.float64)
AREA4 = 5000.0


def person(ann_id, image_id, xy, v, area, bbox, iscrowd=0) -> dict:
    xy = np.asarray(xy, dtype=np.float64)
    v = np.asarray(v)
    kp = np.concatenate([np.where(v[:, None] > 0, xy, 0.0), v[:, None]], axis=1)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
            "num_keypoints": int((v > 0).sum()), "area": area, "bbox": list(bbox), "iscrowd": iscrowd}


def result(image_id, xy, score, conf=0.9) -> dict:
    xy = np.asarray(xy, dtype=np.float64)
    c = np.broadcast_to(np.asarray(conf, dtype=np.float64), (len(xy),))
    return {"image_id": image_id, "category_id": 1, "score": score,
            "keypoints": np.concatenate([xy, c[:, None]], axis=1).reshape(-1).tolist()}


def write_coco(path: Path, annotations: list[dict], category: dict) -> Path:
    images = sorted({a["image_id"] for a in annotations})
    data = {"images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in images],
            "annotations": annotations, "categories": [category]}
    path.write_text(json.dumps(data))
    return path


def coco17_case(tmp_path: Path):
    """(gt_path, results, expected) with expected = {(result_index, joint): class name} for every counted keypoint,
    plus "det_ann_id" and "det_ignored" per result."""
    k = COCO17.num_keypoints
    a_xy, b_xy, d_xy = TEMPLATE17 + (100, 100), TEMPLATE17 + (130, 100), TEMPLATE17 + (100, 100)
    a_v = np.full(k, 2)
    a_v[[15, 16]] = 0  # A's ankles are not labelled
    anns = [
        person(11, 1, a_xy, a_v, AREA, (100, 100, 100, 200)),
        person(12, 1, b_xy, np.full(k, 2), AREA, (130, 100, 100, 200)),
        person(13, 1, np.zeros((k, 2)), np.zeros(k), AREA, (400, 100, 100, 100), iscrowd=1),
        person(21, 2, d_xy, np.full(k, 2), AREA, (100, 100, 100, 200)),
        person(22, 2, np.zeros((k, 2)), np.zeros(k), AREA, (400, 100, 100, 100)),
    ]
    gt_path = write_coco(tmp_path / "gt17.json", anns, COCO17.to_coco_category())

    r0, conf0 = a_xy.copy(), np.full(k, 0.9)
    r0[0] += (0, 150)  # nose far from every nose: miss
    r0[3], conf0[3] = (0, 0), 0.0  # left ear not predicted: absent
    r0[[9, 10]] = a_xy[[10, 9]]  # wrists exchanged: inversion
    r0[13] -= (0, ks_distance(JITTER_KS, AREA, COCO17.sigma_array)[13])  # left knee at KS 0.7: jitter
    r1 = b_xy.copy()
    r1[7] = a_xy[7]  # B's left elbow on A's left elbow: swap (same joint)
    r1[10] = a_xy[9]  # B's right wrist on A's left wrist: swap (symmetric joint)
    in_crowd = np.full((k, 2), (450.0, 150.0))
    results = [
        result(1, r0, 0.9, conf0), result(1, r1, 0.8), result(1, b_xy + (0, 1000), 0.7),
        result(1, in_crowd, 0.6), result(2, d_xy, 0.9), result(2, in_crowd, 0.5), result(2, in_crowd, 0.4),
    ]
    expected = {(0, j): "good" for j in range(15)} | {(1, j): "good" for j in range(k)}
    expected |= {(4, j): "good" for j in range(k)}
    expected |= {(0, 0): "miss", (0, 3): "absent", (0, 9): "inversion", (0, 10): "inversion", (0, 13): "jitter"}
    expected |= {(1, 7): "swap", (1, 10): "swap"}
    expected["det_ann_id"] = [11, 12, -1, -1, 21, -1, -1]
    expected["det_ignored"] = [False, False, False, True, False, True, False]
    return gt_path, results, expected


def custom_case(tmp_path: Path):
    """(gt_path, results, expected) on the 4-keypoint ``critter4`` schema."""
    p_xy, q_xy = TEMPLATE4 + (100, 100), TEMPLATE4 + (140, 100)
    q_v = np.array([2, 2, 1, 0])  # Q's right hand occluded, tail unlabelled
    anns = [person(1, 7, p_xy, np.full(4, 2), AREA4, (100, 100, 100, 100)),
            person(2, 7, q_xy, q_v, AREA4, (140, 100, 100, 100))]
    gt_path = write_coco(tmp_path / "gt_custom.json", anns, CUSTOM_CATEGORY)
    sig = np.asarray(CUSTOM_CATEGORY["sigmas"])
    rp = p_xy.copy()
    rp[[1, 2]] = p_xy[[2, 1]]  # hands exchanged: inversion
    rp[3] += (0, ks_distance(0.6, AREA4, sig)[3])  # tail at KS 0.6: jitter
    rq = q_xy.copy()
    rq[0] = p_xy[0]  # Q's head on P's head: swap
    results = [result(7, rp, 0.9), result(7, rq, 0.8)]
    expected = {(0, 0): "good", (0, 1): "inversion", (0, 2): "inversion", (0, 3): "jitter",
                (1, 0): "swap", (1, 1): "good", (1, 2): "good"}
    return gt_path, results, expected


def coco_analyze_classes(gt, results, det_ann_id) -> dict:
    """{(result_index, joint): class name} by coco-analyze's formulation, written here independently of the package.

    For every detection with a match (``det_ann_id`` >= 0): one row per annotation of the image (the matched one
    first, then the others as ``getAnnIds`` lists them), then the same rows left/right mirrored; KS of each detected
    keypoint against each row with that row's annotation area, -1 where the row's joint is unlabelled; the class
    from the first maximum over rows (row 0 good above 0.85 else jitter, row n inversion, other rows swap; miss
    below 0.5), for the matched person's labelled joints.
    """
    sig, flip = gt.schema.sigma_array, gt.schema.flip_index
    out = {}
    for r in np.flatnonzero(np.asarray(det_ann_id) >= 0):
        det = np.asarray(results[r]["keypoints"], dtype=np.float64).reshape(-1, 3)[:, :2]
        anns = gt.coco.loadAnns(gt.coco.getAnnIds(imgIds=results[r]["image_id"]))
        ordered = sorted(anns, key=lambda a: a["id"] != det_ann_id[r])  # stable: matched first, others in order
        rows, vis, areas = [], [], []
        for mirror in (False, True):
            for a in ordered:
                kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
                kp = kp[flip] if mirror else kp
                rows.append(kp[:, :2])
                vis.append(kp[:, 2])
                areas.append(float(a["area"]))
        d2 = ((np.stack(rows) - det[None]) ** 2).sum(-1)  # (R, K)
        ks = np.exp(-(d2 / (2 * sig) ** 2 / (np.asarray(areas)[:, None] + np.spacing(1)) / 2))
        ks = np.where(np.stack(vis) > 0, ks, -1.0)
        best, arg, n = ks.max(axis=0), ks.argmax(axis=0), len(ordered)
        for j in np.flatnonzero(vis[0] > 0):
            if best[j] < 0.5:
                out[int(r), int(j)] = "miss"
            elif arg[j] == 0:
                out[int(r), int(j)] = "good" if best[j] > 0.85 else "jitter"
            else:
                out[int(r), int(j)] = "inversion" if arg[j] == n else "swap"
    return out
