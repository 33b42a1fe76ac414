"""Latency parts of the throughput harness: data preparation per sample and end-to-end latency per frame.

The data loader's share (JPEG decode, affine crop) is timed on real images; the per-frame latency of the video case
is boxes -> estimator (a source of :mod:`posefix_bench.sources`) -> refiner
(:class:`posefix_bench.engine.refine.RefinePostProcessor`), with the first frame as warm-up. Both return plain
records that :func:`posefix_bench.engine.throughput.run_throughput` puts into its report (issue 7).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from posefix_bench.engine.precision import synchronize
from posefix_bench.errors import PosefixError
from posefix_bench.progress import Progress, no_progress

__all__ = ["data_prep_benchmark", "e2e_latency"]


# -- data preparation -----------------------------------------------------------------------------------------
def data_prep_benchmark(dataset, input_size: tuple[int, int], persons: int = 16) -> dict:
    """CPU time per sample of decoding the JPEG and cropping a person (the data loader's share), on real images."""
    from posefix_bench.structures.coco import read_image_file
    from posefix_bench.structures.transforms import affine_matrix, box_to_center_scale, warp_image

    picked = []
    for image_id, ann in dataset.persons(min_keypoints=1):
        picked.append((image_id, np.asarray(ann["bbox"], dtype=np.float64)))
        if len(picked) == persons:
            break
    if not picked:
        raise PosefixError(f"{dataset.path}: no person with keypoints to time data preparation on")
    w, h = input_size
    t0 = time.perf_counter()
    images = [read_image_file(dataset.image_path(i)) for i, _ in picked]
    t1 = time.perf_counter()
    for img, (_, box) in zip(images, picked):
        center, scale = box_to_center_scale(box, w / h)
        warp_image(img, affine_matrix(center, scale, 0.0, (w, h)), (w, h))
    t2 = time.perf_counter()
    n = len(picked)
    return {"input_size": [w, h], "samples": n, "decode_ms_per_sample": (t1 - t0) * 1e3 / n,
            "crop_ms_per_sample": (t2 - t1) * 1e3 / n}


# -- end to end ---------------------------------------------------------------------------------------------------
def e2e_latency(dataset, source, post, frames: int = 8, boxes=None, progress: Progress = no_progress) -> dict:
    """Per-frame latency: boxes -> ``source.predict`` -> ``post.refine_image``; the first frame is a warm-up.

    Args:
        dataset: a :class:`~posefix_bench.structures.coco.CocoDataset` whose images are the frames.
        source: an upstream source (``.info``, ``.predict(dataset, boxes)``).
        post: a :class:`~posefix_bench.engine.refine.RefinePostProcessor`.
        frames: timed frames (images with at least one box).
        boxes: a :class:`~posefix_bench.sources.boxes.BoxSet`; default the ground-truth boxes.
    """
    from posefix_bench.sources.boxes import BoxSet, gt_boxes

    boxes = gt_boxes(dataset) if boxes is None else boxes
    ids = [i for i in boxes.image_ids if len(boxes.for_image(i))][: frames + 1]
    if len(ids) < 2:
        raise PosefixError(f"{dataset.path}: end-to-end latency needs at least 2 images with person boxes")
    k = dataset.schema.num_keypoints
    rows = []
    for image_id in progress(ids, total=len(ids), desc="end-to-end"):
        one = BoxSet({image_id: boxes.for_image(image_id)}, boxes.origin, boxes.score_thr)
        t0 = time.perf_counter()
        results = [r for r in source.predict(dataset, one) if int(r["image_id"]) == image_id]
        t1 = time.perf_counter()
        image = dataset.read_image(image_id)
        kp = np.asarray([r["keypoints"] for r in results], dtype=np.float64).reshape(len(results), k, 3)
        t2 = time.perf_counter()
        if len(kp):
            post.refine_image(image, kp, flip_index=dataset.schema.flip_index)
        synchronize(post.device)
        t3 = time.perf_counter()
        rows.append(((t1 - t0) * 1e3, (t3 - t2) * 1e3, len(one.for_image(image_id)), len(kp)))
    timed = rows[1:]
    est = statistics.median(r[0] for r in timed)
    ref = statistics.median(r[1] for r in timed)
    total = statistics.median(r[0] + r[1] for r in timed)
    return {
        "frames": len(timed), "estimator": source.info.name, "estimator_trained": bool(source.info.trained),
        "refiner_trained": bool(post.trained), "refiner_input_size": list(post.input_size),
        "refiner_backbone": post.model.config.backbone, "flip": post.flip, "refiner_precision": post.precision,
        "refiner_precision_sentence": post.precision_record["sentence"],
        "boxes_per_frame": float(np.mean([r[2] for r in timed])), "poses_per_frame": float(np.mean([r[3] for r in timed])),
        "estimator_ms": est, "refiner_ms": ref, "total_ms": total,
        "fps_end_to_end": 1e3 / total, "fps_refiner_only": 1e3 / ref if ref > 0 else None,
    }
