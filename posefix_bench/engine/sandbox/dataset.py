"""The sandbox data set: generation of a COCO root, its cache, its manifest and its statistics (issue 8).

A sandbox root is laid out exactly like COCO and read with the same loaders (:class:`CocoDataset`,
:func:`coco_split_paths`)::

    ROOT/annotations/person_keypoints_train.json    ROOT/train/000001.jpg ...
    ROOT/annotations/person_keypoints_val.json      ROOT/val/000001.jpg ...
    ROOT/manifest.json                              params, generator version, counts, statistics

Every image is drawn from its own random stream ``default_rng((seed, split code, index))`` (see
:mod:`~posefix_bench.engine.sandbox.scene`), so the output does not depend on the number of worker processes;
JPEGs are encoded by OpenCV (deterministic for the same pixels) and the JSON is written with a fixed key order
and rounded numbers, so the same parameters give byte-identical files.

Besides COCO's fields, annotations carry ``lower_body_occluded`` (the occlusion subset: see
:func:`occluded_person_ids`, which :func:`posefix_bench.evaluation.coco_eval.evaluate` takes as ``person_ids``),
``back_view`` and ``draw_order`` (painting order, shared with the counters and shelves listed per image under
``occluders`` with their outline polygons), so that labels can be checked against the geometry.

Generation writes into a temporary folder beside the target and renames it into place when complete: a killed
generation leaves a ``.tmp-*`` folder, never a half data set under the final name. :func:`ensure_sandbox` caches
roots by a content hash of (generator version, parameters).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from posefix_bench.codecs.taxonomy import overlap_counts
from posefix_bench.errors import PosefixError, file_error
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import coco_split_paths
from posefix_bench.structures.io import atomic_write_json, read_json
from posefix_bench.structures.schema import COCO17

__all__ = [
    "GENERATOR_VERSION", "MANIFEST_FORMAT", "SPLITS", "SandboxParams", "generate_sandbox", "ensure_sandbox",
    "read_manifest", "is_sandbox_root", "occluded_person_ids", "annotation_stats",
]  # fmt: skip

GENERATOR_VERSION = 1  # bump when the same parameters would draw different data
MANIFEST_FORMAT = "posefix-bench/sandbox/v1"
SPLITS = ("train", "val")
_SPLIT_CODE = {"train": 0, "val": 1}
_IMAGE_ID_BASE = {"train": 0, "val": 1_000_000}  # ids differ across splits, so a mix-up cannot go unnoticed
_PARALLEL_MIN_IMAGES = 48  # below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class SandboxParams:
    """What a sandbox data set is made from; its content (with the generator version) names the cache folder.

    Attributes:
        seed: the random seed.
        train, val: number of images per split.
        image_size: side of the square images in pixels.
        max_persons: people per image, uniform in 1..max_persons (before removing barely visible ones).
        occluder_p: probability that a person gets a counter or shelf in front of their lower body.
        back_p: probability that a person is seen from behind.
        min_height, max_height: range of standing heights as fractions of the image size (log-uniform).
        jpeg_quality: OpenCV JPEG quality.
    """

    seed: int = 0
    train: int = 2000
    val: int = 300
    image_size: int = 256
    max_persons: int = 4
    occluder_p: float = 0.15
    back_p: float = 0.25
    min_height: float = 0.3
    max_height: float = 0.9
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            want = int if f.type in ("int", int) else float
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise PosefixError(f"sandbox parameter {f.name}: expected a number, got {v!r}")
            if want is int and float(v) != int(v):
                raise PosefixError(f"sandbox parameter {f.name}: expected an integer, got {v!r}")
            object.__setattr__(self, f.name, want(v))
        checks = [
            ("seed", self.seed >= 0, "must be >= 0"),
            ("train", self.train >= 0, "must be >= 0"),
            ("val", self.val >= 0, "must be >= 0"),
            ("image_size", 64 <= self.image_size <= 2048, "must be in 64..2048"),
            ("max_persons", 1 <= self.max_persons <= 20, "must be in 1..20"),
            ("occluder_p", 0.0 <= self.occluder_p <= 1.0, "must be in [0, 1]"),
            ("back_p", 0.0 <= self.back_p <= 1.0, "must be in [0, 1]"),
            ("min_height", 0.05 <= self.min_height <= self.max_height, "must be in [0.05, max_height]"),
            ("max_height", self.max_height <= 1.5, "must be <= 1.5"),
            ("jpeg_quality", 50 <= self.jpeg_quality <= 100, "must be in 50..100"),
        ]
        for name, ok, problem in checks:
            if not ok:
                raise PosefixError(f"sandbox parameter {name}={getattr(self, name)!r}: {problem}")
        if self.train + self.val == 0:
            raise PosefixError("sandbox parameters: train and val are both 0 (nothing to generate)")

    def key(self) -> dict:
        """The cache key: generator version and parameters."""
        return {"generator_version": GENERATOR_VERSION, **asdict(self)}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()

    def folder_name(self) -> str:
        return f"sandbox-s{self.seed}-{self.train}x{self.val}-{self.image_size}px-{self.digest()[:10]}"


# -- one image (runs in worker processes) -------------------------------------------------------------------------
def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def _make_image(task: tuple[dict, str, int, str]) -> dict:
    """Render, encode and write image ``index`` of ``split``; returns its records (without ids)."""
    import cv2

    from posefix_bench.engine.sandbox.scene import render_scene

    params_dict, split, index, image_dir = task
    params = SandboxParams(**params_dict)
    rng = np.random.default_rng((params.seed, _SPLIT_CODE[split], index))
    scene = render_scene(rng, params, COCO17)
    file_name = f"{index + 1:06d}.jpg"
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise PosefixError(f"{image_dir}/{file_name}: JPEG encoding failed")
    Path(image_dir, file_name).write_bytes(buf.tobytes())
    r2 = lambda a: [round(float(x), 2) for x in np.asarray(a).reshape(-1)]  # noqa: E731
    persons = [{
        "keypoints": [round(float(x), 2) if i % 3 != 2 else int(x) for i, x in enumerate(p["keypoints"].reshape(-1))],
        "num_keypoints": int((p["keypoints"][:, 2] > 0).sum()),
        "bbox": r2(p["bbox"]),
        "area": float(p["area"]),
        "lower_body_occluded": p["lower_body_occluded"],
        "back_view": p["back_view"],
        "draw_order": p["draw_order"],
    } for p in scene.persons]
    occluders = [{"kind": o["kind"], "draw_order": o["draw_order"], "polygon": r2(o["polygon"])}
                 for o in scene.occluders]
    return {"file_name": file_name, "height": params.image_size, "width": params.image_size,
            "persons": persons, "occluders": occluders}


def _render_split(params: SandboxParams, split: str, image_dir: Path, workers: int, progress: Progress) -> list:
    n = getattr(params, split)
    tasks = [(asdict(params), split, i, str(image_dir)) for i in range(n)]
    if workers <= 1 or n < _PARALLEL_MIN_IMAGES:
        return [_make_image(t) for t in progress(tasks, total=n, desc=f"sandbox {split}")]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, never fork: a caller that already runs torch/OpenMP or OpenCV thread pools (a test session, the bench)
    # can deadlock a forked child on a lock some other thread held at fork time. A script calling this with
    # workers > 1 needs the usual `if __name__ == "__main__":` guard.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        chunk = max(1, min(32, n // (4 * workers)))
        return list(progress(pool.map(_make_image, tasks, chunksize=chunk), total=n, desc=f"sandbox {split}"))


def _coco_file(params: SandboxParams, split: str, records: list) -> dict:
    images, annotations = [], []
    base = _IMAGE_ID_BASE[split]
    for i, rec in enumerate(records):
        image_id = base + i + 1
        images.append({"id": image_id, "file_name": rec["file_name"], "height": rec["height"],
                       "width": rec["width"], "occluders": rec["occluders"]})
        for p, person in enumerate(rec["persons"]):
            annotations.append({"id": image_id * 100 + p, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                **person})
    return {
        "info": {"description": "posefix-bench sandbox: procedural multi-person scenes (issue 8)",
                 "version": f"generator {GENERATOR_VERSION}", "split": split, "params": asdict(params)},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [COCO17.to_coco_category(category_id=1)],
    }


# -- data set -------------------------------------------------------------------------------------------------------
def generate_sandbox(
    out: str | os.PathLike,
    params: SandboxParams,
    progress: Progress = no_progress,
    workers: int = 2,
    replace: bool = False,
) -> Path:
    """Write a sandbox COCO root at ``out`` (atomically: built beside it, then renamed into place).

    Args:
        out: the root folder to create.
        params: what to generate.
        progress: progress callback (one bar per split).
        workers: worker processes (the output does not depend on it).
        replace: replace an existing sandbox root at ``out``; a folder that is not a sandbox root is never
            replaced.

    Returns:
        the root.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise file_error(out, "exists and is not a folder")
        if not replace:
            raise file_error(out, "already exists (give replace=True to regenerate a sandbox root)")
        if any(out.iterdir()) and not is_sandbox_root(out):
            raise file_error(out, "exists and is not a sandbox root (no manifest.json); refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the data set is not
        manifest = {"format": MANIFEST_FORMAT, "generator_version": GENERATOR_VERSION, "params": asdict(params),
                    "digest": params.digest(), "splits": {}}
        for split in SPLITS:
            ann_path, image_dir = coco_split_paths(tmp, split)
            image_dir.mkdir(parents=True)
            records = _render_split(params, split, image_dir, workers, progress)
            data = _coco_file(params, split, records)
            atomic_write_json(ann_path, data, indent=None)
            manifest["splits"][split] = annotation_stats(data)
        atomic_write_json(tmp / "manifest.json", manifest)
        _move_into_place(tmp, out, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _move_into_place(tmp: Path, out: Path, replace: bool) -> None:
    if replace and out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".old-{out.name}-", dir=out.parent))
        os.replace(out, old / "root")
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def ensure_sandbox(
    cache_root: str | os.PathLike,
    params: SandboxParams,
    progress: Progress = no_progress,
    workers: int = 2,
) -> Path:
    """The sandbox root for ``params`` under ``cache_root``, generated on first use.

    The folder is named by :meth:`SandboxParams.folder_name` (a content hash of the parameters and the generator
    version) and is complete whenever it exists. If two processes race, the first rename wins and the other's
    result is discarded.
    """
    root = Path(cache_root) / params.folder_name()
    if root.is_dir():
        manifest = read_manifest(root)
        if manifest.get("digest") != params.digest():
            raise file_error(root, "cached sandbox does not match its parameters (remove the folder)")
        return root
    try:
        generate_sandbox(root, params, progress=progress, workers=workers)
    except PosefixError:
        if root.is_dir() and is_sandbox_root(root):  # another process finished first
            return root
        raise
    except OSError:
        if root.is_dir() and is_sandbox_root(root):
            return root
        raise
    return root


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a sandbox root (one-line error if it is missing or not a sandbox manifest)."""
    path = Path(root) / "manifest.json"
    data = read_json(path, "sandbox manifest")
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise file_error(path, f"not a sandbox manifest (expected \"format\": \"{MANIFEST_FORMAT}\")")
    return data


def is_sandbox_root(root: str | os.PathLike) -> bool:
    try:
        read_manifest(root)
    except PosefixError:
        return False
    return True


# -- subsets and statistics -----------------------------------------------------------------------------------------
def occluded_person_ids(dataset) -> list[int]:
    """Annotation ids of the lower-body-occluded persons of a :class:`CocoDataset` (the ``val_occluded`` subset).

    Pass them as ``person_ids`` to :func:`posefix_bench.evaluation.coco_eval.evaluate`; the other persons then
    become ignore regions. A data set without the ``lower_body_occluded`` tag (real COCO) gives an empty list.
    """
    return sorted(int(a["id"]) for a in dataset.coco.dataset["annotations"] if a.get("lower_body_occluded"))


def annotation_stats(data: dict) -> dict:
    """Statistics of a COCO keypoint file's content (the dict), for the manifest and the report.

    Returns counts (images, persons), persons per image, person box heights (percentiles, px), the fraction of
    lower-body-occluded and back-view persons, labelled and visible keypoints per person, the overlap counts O of
    the error taxonomy (other persons whose box intersects, :func:`overlap_counts`), and the keypoint visibility
    fractions.
    """
    anns = [a for a in data["annotations"] if not a.get("iscrowd", 0)]
    n_img = len(data["images"])
    if not anns:
        return {"images": n_img, "persons": 0}
    kp = np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(len(anns), -1, 3)
    heights = np.asarray([a["bbox"][3] for a in anns])
    by_image: dict[int, list] = {}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a["bbox"])
    overlaps = np.concatenate([overlap_counts(np.asarray(b)) for b in by_image.values()])
    v = kp[..., 2]
    pct = lambda x, q: float(np.percentile(x, q))  # noqa: E731
    return {
        "images": n_img,
        "persons": len(anns),
        "persons_per_image": len(anns) / max(n_img, 1),
        "lower_body_occluded": int(sum(bool(a.get("lower_body_occluded")) for a in anns)),
        "fraction_lower_body_occluded": float(np.mean([bool(a.get("lower_body_occluded")) for a in anns])),
        "fraction_back_view": float(np.mean([bool(a.get("back_view")) for a in anns])),
        "box_height_px": {"p10": pct(heights, 10), "p50": pct(heights, 50), "p90": pct(heights, 90),
                          "min": float(heights.min()), "max": float(heights.max())},
        "area_px": {"p10": pct([a["area"] for a in anns], 10), "p50": pct([a["area"] for a in anns], 50),
                    "p90": pct([a["area"] for a in anns], 90)},
        "labelled_keypoints_per_person": float((v > 0).sum(axis=1).mean()),
        "visible_keypoints_per_person": float((v == 2).sum(axis=1).mean()),
        "keypoint_visibility": {"v2": float((v == 2).mean()), "v1": float((v == 1).mean()),
                                "v0": float((v == 0).mean())},
        "fraction_persons_overlapping": float((overlaps > 0).mean()),
        "overlapping_pairs_per_image": float(overlaps.sum() / 2 / max(n_img, 1)),
        "mean_overlaps_per_person": float(overlaps.mean()),
    }
