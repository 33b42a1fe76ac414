"""Refine per-frame poses of a video or an image folder and render input and refined skeletons side by side.

The pose file is a JSON list of COCO-style keypoint records with a 0-based ``frame`` (or ``image_id``) each, e.g.
an estimator's output on the video's frames. Output: the refined records (``--out``, same format, one per input
record) and, with ``--render``, a video (``.mp4``/``.avi``: input left, refined right) or a folder of PNG frames.
Nothing is written unless every frame and record was processed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from posefix_bench.commands import _checks
from posefix_bench.errors import PosefixError

HELP = "refine a video's per-frame poses and render input vs refined skeletons"

VIDEO_SUFFIXES = (".mp4", ".avi")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help="refiner checkpoint")
    p.add_argument("--input", type=Path, required=True, help="video file or folder of frame images")
    p.add_argument("--poses", type=Path, required=True, help="per-frame pose JSON (records with 'frame')")
    p.add_argument("--out", type=Path, required=True, help="refined per-frame pose JSON")
    p.add_argument("--render", type=Path, help="side-by-side rendering: a .mp4/.avi file or a folder for PNG frames")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of a rendered folder input (default: %(default)s)")
    p.add_argument("--flip", action="store_true", help="flip test")
    p.add_argument("--box", choices=("keypoints", "bbox"), default="keypoints", help="crop box (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="crops per forward pass (default: %(default)s)")
    _checks.add_device(p)


def _validate(args: argparse.Namespace) -> None:
    """The cheap checks, before the model is loaded."""
    _checks.input_file(args.checkpoint, "--checkpoint", "refiner checkpoint")
    _checks.input_path(args.input, "--input", "video or frame folder")
    _checks.input_file(args.poses, "--poses", "per-frame pose file")
    _checks.output_file(args.out)
    if args.render is not None:
        if args.render.suffix and args.render.suffix.lower() not in VIDEO_SUFFIXES:
            raise PosefixError(f"--render {args.render}: takes a {' or '.join(VIDEO_SUFFIXES)} file or a folder")
        if args.render.suffix:
            _checks.output_file(args.render, "--render")
        else:
            _checks.output_dir(args.render, "--render")
    _checks.distinct(_checks.namespace_paths(args, "poses", "checkpoint", "out", "render"))
    _checks.positive(args.fps, "--fps")
    _checks.at_least(args.batch_size, 1, "--batch-size")
    _checks.device(args.device)


def run(args: argparse.Namespace) -> int:
    _validate(args)

    from posefix_bench.engine.refine import RefinePostProcessor
    from posefix_bench.engine.video import FrameReader, load_frame_poses, refine_video
    from posefix_bench.errors import file_error
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.structures.checks import check_results
    from posefix_bench.structures.io import atomic_write_json
    from posefix_bench.structures.schema import get_schema

    frames = FrameReader(args.input, default_fps=args.fps)
    records = load_frame_poses(args.poses, None)  # parsed and checked before the model is loaded
    _checks.print_warnings("video", check_results([{**r, "image_id": r["frame"], "category_id": 1} for r in records],
                                                  args.poses))
    post = RefinePostProcessor(args.checkpoint, device=args.device, batch_size=args.batch_size, flip=args.flip,
                               box=args.box)
    _checks.finite_weights(post.model, args.checkpoint)
    schema = get_schema(post.model.config.schema)
    k = post.model.config.num_keypoints
    if len(records[0]["keypoints"]) != 3 * k:  # every record has the first one's length (checked when loaded)
        raise file_error(args.poses, f"record 0 has {len(records[0]['keypoints'])} keypoint values, expected {3 * k} "
                                     f"({k} keypoints x 3, the refiner's schema {schema.name})")
    if not post.trained:
        print(f"posefix-bench video: warning: {args.checkpoint} is an UNTRAINED refiner; its output is marked "
              f"\"untrained\": true and the rendering says so", file=sys.stderr)
    label = "refined" if post.trained else "refined (UNTRAINED)"
    if args.render is None:
        refined = refine_video(frames, records, post, schema.flip_index, tqdm_progress)
        atomic_write_json(args.out, refined, indent=None)
    else:
        with _Renderer(args.render, frames.fps, schema, label) as renderer:
            refined = refine_video(frames, records, post, schema.flip_index, tqdm_progress, on_frame=renderer.add)
            atomic_write_json(args.out, refined, indent=None)  # the rendering is moved into place after this
    print(f"refined {len(refined)} poses on {frames.num_frames or 'all'} frames; wrote {args.out}")
    if args.render is not None:
        print(f"wrote {args.render}")
    return 0


class _Renderer:
    """Side-by-side frames into a temporary video file / folder, moved into place only when all went well."""

    def __init__(self, target: Path, fps: float, schema, label: str):
        self.target, self.fps, self.schema, self.label = target, fps, schema, label
        self.is_video = bool(target.suffix)
        self.tmp: Path | None = None
        self.writer = None

    def __enter__(self) -> "_Renderer":
        import tempfile

        from posefix_bench.structures.io import default_permissions

        self.target.parent.mkdir(parents=True, exist_ok=True)
        if self.is_video:
            fd, name = tempfile.mkstemp(prefix=f".{self.target.stem}.", suffix=f".tmp{self.target.suffix}",
                                        dir=self.target.parent)
            import os

            os.close(fd)
            self.tmp = Path(name)
        else:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent))
        default_permissions(self.tmp)  # mkstemp/mkdtemp make 0600/0700: give what open()/mkdir() would, as JSON gets
        return self

    def add(self, fp) -> None:
        import cv2
        import numpy as np

        from posefix_bench.reporting.draw import draw_poses, encode_png

        left = _caption(draw_poses(fp.image, fp.inputs, self.schema), "input")
        right = _caption(draw_poses(fp.image, fp.refined, self.schema), self.label)
        panel = np.concatenate([left, right], axis=1)
        if self.is_video:  # codecs want even frame sizes: pad the bottom row when the height is odd
            panel = np.pad(panel, ((0, panel.shape[0] % 2), (0, 0), (0, 0)))
            if self.writer is None:
                fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.target.suffix.lower() == ".mp4" else "MJPG"))
                self.writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (panel.shape[1], panel.shape[0]))
                if not self.writer.isOpened():
                    from posefix_bench.errors import file_error

                    raise file_error(self.target, "OpenCV cannot write a video of this type here (try .avi or a folder)")
            self.writer.write(cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
        else:
            (self.tmp / f"frame_{fp.index:06d}.png").write_bytes(encode_png(panel))

    def __exit__(self, exc_type, exc, tb) -> None:
        import os
        import shutil

        if self.writer is not None:
            self.writer.release()
        if exc_type is not None:
            if self.is_video:
                self.tmp.unlink(missing_ok=True)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.is_video:
            os.replace(self.tmp, self.target)
        else:
            if self.target.exists():
                shutil.rmtree(self.target)
            os.replace(self.tmp, self.target)


def _caption(image, text: str):
    import cv2

    img = image.copy()
    scale = max(0.4, min(img.shape[:2]) / 600)
    cv2.putText(img, text, (8, int(24 * scale) + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (8, int(24 * scale) + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img
