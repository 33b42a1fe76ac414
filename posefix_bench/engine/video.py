"""Video mode: refine per-frame poses of a video (or an image folder) without any ground truth.

The PoseFix re-implementation's demo: a video and a per-frame detection/pose JSON in, a refined JSON and a rendered
video with the input and refined skeletons side by side out. This module computes (frames, refinement); the
``video`` command draws and writes (drawing is layer 6, :mod:`posefix_bench.reporting.draw`).

Per-frame pose file: a JSON list of COCO-style keypoint records, each with ``frame`` (0-based frame index; or
``image_id``, read as the frame index when ``frame`` is absent), ``keypoints`` ([x, y, c] x K) and ``score``;
``bbox``, ``track_id`` and any other fields are kept. An image folder's frames are its image files in name order.
Refinement is :meth:`posefix_bench.engine.refine.RefinePostProcessor.refine_image` frame by frame, so frames are
decoded once and never held in memory together.

Shape legend: N poses in a frame, K keypoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import read_image_file
from posefix_bench.structures.io import read_json
from posefix_bench.structures.results import validate_results
from posefix_bench.structures.transforms import record_bboxes

__all__ = ["IMAGE_SUFFIXES", "FrameReader", "FramePoses", "load_frame_poses", "iter_refined_frames", "refine_video"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class FrameReader:
    """Frames of a video file (OpenCV) or of an image folder (files in name order), as RGB uint8 arrays.

    Attributes:
        path: the video or folder.
        fps: frames per second (the video's; ``default_fps`` for a folder or a video that does not say).
        num_frames: frame count when known in advance (always for a folder; the container's claim for a video).
    """

    def __init__(self, path: str | os.PathLike, default_fps: float = 25.0):
        import cv2

        self.path = Path(path)
        self.fps = float(default_fps)
        self._files: list[Path] | None = None
        self.count_is_exact = False
        if self.path.is_dir():
            self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise file_error(self.path, f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the frame folder")
            self.num_frames: int | None = len(self._files)
            self.count_is_exact = True
            return
        if not self.path.is_file():
            raise file_error(self.path, "video or frame folder not found")
        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise file_error(self.path, "cannot be opened as a video")
            ok, _ = cap.read()
            if not ok:
                raise file_error(self.path, "cannot be decoded as a video (no readable frame)")
            fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else self.fps
        self.num_frames = count if count > 0 else None

    def frame_name(self, index: int) -> str:
        return self._files[index].name if self._files is not None else f"frame_{index:06d}"

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """(index, (H, W, 3) uint8 RGB) for every frame."""
        if self._files is not None:
            for i, p in enumerate(self._files):
                yield i, read_image_file(p)
            return
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield i, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                i += 1
        finally:
            cap.release()


def load_frame_poses(path: str | os.PathLike, num_keypoints: int) -> list[dict]:
    """Read and validate a per-frame pose file (see the module docstring); every record gets an int ``frame``."""
    data = read_json(path, "per-frame pose file")
    if not isinstance(data, list):
        raise file_error(path, "expected a JSON list of per-frame pose records")
    normalised = []
    for i, r in enumerate(data):
        if not isinstance(r, dict):
            raise file_error(path, f"record {i} is not a JSON object")
        frame = r.get("frame", r.get("image_id"))
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise file_error(path, f"record {i} has no non-negative integer 'frame' (or 'image_id')")
        normalised.append({"image_id": frame, "category_id": 1, **r, "frame": frame})
    records = validate_results(normalised, path, num_keypoints=num_keypoints)
    for r, original in zip(records, data):
        for key in ("image_id", "category_id"):
            if key not in original:
                del r[key]
    return records


@dataclass
class FramePoses:
    """One frame with its poses: ``index``, ``image`` (H, W, 3) uint8, ``slots`` (N,) positions of its records in
    the input list, ``inputs`` and ``refined`` (N, K, 3) x, y, confidence, ``refined_ok`` (N,) bool."""

    index: int
    image: np.ndarray
    slots: np.ndarray
    inputs: np.ndarray
    refined: np.ndarray
    refined_ok: np.ndarray


def iter_refined_frames(
    frames: FrameReader,
    records: Sequence[dict],
    post,
    flip_index: np.ndarray | None = None,
    progress: Progress = no_progress,
) -> Iterator[FramePoses]:
    """Refine frame by frame (``post`` a :class:`~posefix_bench.engine.refine.RefinePostProcessor`); yields every
    frame, with or without poses. Records for frames the video does not have are a one-line error (before the
    first frame when the frame count is known, else at the end)."""
    by_frame: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        by_frame.setdefault(int(r["frame"]), []).append(i)
    last = max(by_frame, default=-1)
    if frames.count_is_exact and last >= frames.num_frames:
        raise file_error(frames.path, f"has {frames.num_frames} frames, the pose file refers to frame {last}")
    k = post.model.config.num_keypoints
    seen = -1
    for index, image in progress(frames, total=frames.num_frames, desc="video"):
        seen = index
        slots = np.asarray(by_frame.get(index, []), dtype=np.int64)
        kp = np.asarray([records[s]["keypoints"] for s in slots], dtype=np.float64).reshape(len(slots), k, 3)
        bb = record_bboxes([records[s] for s in slots])
        if len(slots):
            refined, ok = post.refine_image(image, kp, bb, flip_index)
        else:
            refined, ok = kp.copy(), np.zeros(0, bool)
        yield FramePoses(index, image, slots, kp, refined, ok)
    if last > seen:
        raise file_error(frames.path, f"has {seen + 1} frames, the pose file refers to frame {last}")


def refine_video(
    frames: FrameReader,
    records: Sequence[dict],
    post,
    flip_index: np.ndarray | None = None,
    progress: Progress = no_progress,
    on_frame: Callable[[FramePoses], None] | None = None,
) -> list[dict]:
    """Refined records, one per input record in the same order (``on_frame`` sees every frame, e.g. to render it).

    Output records are :meth:`~posefix_bench.engine.refine.RefinePostProcessor.output_record`'s: the input's
    fields, the refined keypoints, ``refined_by``, ``refine_skipped`` / ``untrained`` where they apply.
    """
    records = list(records)
    out: list[dict | None] = [None] * len(records)
    for fp in iter_refined_frames(frames, records, post, flip_index, progress):
        for j, slot in enumerate(fp.slots):
            out[slot] = post.output_record(records[slot], fp.refined[j], bool(fp.refined_ok[j]))
        if on_frame is not None:
            on_frame(fp)
    missing = [i for i, r in enumerate(out) if r is None]
    if missing:  # only reachable for frames past the end, which iter_refined_frames reports first
        raise PosefixError(f"video: {len(missing)} pose records were not matched to a frame")
    return out
