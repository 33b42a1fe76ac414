"""Inputs for the evaluator parity tests and benchmarks, built from coco-mini val (seeded).

``varied_results``: detections that exercise every branch of ``COCOeval`` (several detections per person, more than
20 on some images, none on others, false positives, detections on crowds and on persons without labelled
keypoints, score ties, absent keypoints). ``converted_gt``: coco-mini val in another keypoint layout (CrowdPose-14,
MPII-16, or COCO-17 renamed with its own OKS sigmas), written as a COCO file. ``tiled_gt``: coco-mini val repeated
under new ids (a larger real ground truth for the benchmarks).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.schema import COCO17, CROWDPOSE14, MPII16, KeypointSchema

ID_STRIDE = 10**8  # coco-mini ids are below 10**7 (images) and 10**8 (annotations)


def varied_results(gt: CocoDataset, seed: int, per_person: float = 1.5, absent: float = 0.1, ties: bool = True,
                   crowded: int = 3, empty: float = 0.15) -> list[dict]:
    """Seeded detections over ``gt`` (see the module docstring).

    Args:
        per_person: mean detections per ground-truth person (Poisson), each with its own noise level.
        absent: fraction of keypoints left unpredicted (0, 0, confidence 0) in half of the detections.
        ties: scores rounded to one decimal, so many tie.
        crowded: this many images get 25 extra detections (more than COCOeval's 20).
        empty: fraction of images left without detections.
    """
    rng = np.random.default_rng(seed)
    k = gt.schema.num_keypoints
    out = []
    images = gt.image_ids
    crowded_ids = set(rng.choice(images, size=min(crowded, len(images)), replace=False).tolist())
    for image_id in images:
        if rng.random() < empty:
            continue
        arr = gt.gt_arrays(image_id)
        n_extra = int(rng.poisson(0.5)) + (25 if image_id in crowded_ids else 0)
        people = [g for g in range(len(arr)) for _ in range(rng.poisson(per_person))]
        for g in people + [-1] * n_extra:
            if g >= 0:
                kp = arr.keypoints[g].copy()
                lab = kp[:, 2] > 0
                x, y, w, h = arr.boxes[g]
                if lab.any():
                    kp[~lab, :2] = kp[lab, :2].mean(axis=0)
                else:  # a crowd region or a person without labelled keypoints: somewhere in its box
                    kp[:, 0], kp[:, 1] = x + w * rng.random(k), y + h * rng.random(k)
                s = np.sqrt(max(arr.areas[g], 1.0))
                kp[:, :2] += rng.normal(0.0, rng.choice([0.01, 0.04, 0.1, 0.3]) * s, size=(k, 2))
            else:  # a false positive anywhere in the image
                kp = np.zeros((k, 3))
                kp[:, :2] = rng.uniform(0, 600, size=2) + rng.normal(0, 40, size=(k, 2))
            kp[:, 2] = rng.uniform(0.05, 1.0, size=k)
            if absent and rng.random() < 0.5:
                kp[rng.random(k) < absent] = 0.0
            score = float(rng.random())
            out.append({"image_id": int(image_id), "category_id": gt.category_id,
                        "keypoints": kp.reshape(-1).tolist(), "score": round(score, 1) if ties else score})
    return out


def _mid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3) midpoint of two keypoints, labelled (v = 2) when both are."""
    out = np.zeros_like(a)
    out[..., :2] = (a[..., :2] + b[..., :2]) / 2
    out[..., 2] = np.where((a[..., 2] > 0) & (b[..., 2] > 0), 2, 0)
    return out


def _along(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """(..., 3) the point a + t (b - a), labelled when both are."""
    out = _mid(a, b)
    out[..., :2] = a[..., :2] + t * (b[..., :2] - a[..., :2])
    return out


def to_schema(kp: np.ndarray, schema: KeypointSchema) -> np.ndarray:
    """(P, 17, 3) COCO-17 persons -> (P, K, 3) in ``schema``: shared joints by name, the others derived (neck and
    thorax between the shoulders, pelvis between the hips, head top and upper neck on the line thorax -> nose)."""
    j = {n: kp[:, COCO17.index(n)] for n in COCO17.keypoints}
    thorax = _mid(j["left_shoulder"], j["right_shoulder"])
    derived = {"neck": thorax, "thorax": thorax, "pelvis": _mid(j["left_hip"], j["right_hip"]),
               "top_head": _along(thorax, j["nose"], 1.6), "head_top": _along(thorax, j["nose"], 1.6),
               "upper_neck": _along(thorax, j["nose"], 0.4)}
    out = np.stack([j[n] if n in j else derived[n] for n in schema.keypoints], axis=1)
    out[out[..., 2] == 0] = 0.0
    return out


CUSTOM17 = KeypointSchema(
    name="renamed17", keypoints=tuple(f"point_{i}" for i in range(17)),
    sigmas=tuple(np.round(np.random.default_rng(17).uniform(0.02, 0.2, 17), 4).tolist()), flip_pairs=(),
    skeleton=(), groups={},
)
SCHEMAS = {"crowdpose14": CROWDPOSE14, "mpii16": MPII16, "renamed17": CUSTOM17}


def converted_gt(val_gt_path: Path, schema_name: str, out: Path) -> Path:
    """coco-mini val in another keypoint layout (``SCHEMAS``), written to ``out``; ``num_keypoints`` recounted."""
    schema = SCHEMAS[schema_name]
    data = json.loads(Path(val_gt_path).read_text())
    anns = []
    for a in data["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(1, 17, 3)
        conv = kp[0] if schema is CUSTOM17 else to_schema(kp, schema)[0]
        anns.append(dict(a, keypoints=conv.reshape(-1).tolist(), num_keypoints=int((conv[:, 2] > 0).sum())))
    category = dict(schema.to_coco_category(), id=data["categories"][0]["id"])
    out.write_text(json.dumps(dict(data, annotations=anns, categories=[category])))
    return out


def tiled_gt(val_gt_path: Path, copies: int, out: Path) -> Path:
    """coco-mini val repeated ``copies`` times under new image and annotation ids, written to ``out``."""
    data = json.loads(Path(val_gt_path).read_text())
    tiled = dict(
        data,
        images=[dict(im, id=im["id"] + t * ID_STRIDE) for t in range(copies) for im in data["images"]],
        annotations=[dict(a, id=a["id"] + t * ID_STRIDE, image_id=a["image_id"] + t * ID_STRIDE)
                     for t in range(copies) for a in data["annotations"]],
    )
    out.write_text(json.dumps(tiled))
    return out
