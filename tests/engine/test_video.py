"""Video mode: a video or an image folder plus per-frame poses -> refined poses (one per input record) and a
side-by-side rendering; bad inputs are one-line errors and leave nothing behind."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from posefix_bench import cli
from posefix_bench.engine.refine import RefinePostProcessor
from posefix_bench.engine.video import FrameReader, load_frame_poses, refine_video
from posefix_bench.errors import PosefixError
from posefix_bench.models import build_refiner, save_refiner
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import synthesize_results


@pytest.fixture(scope="module")
def clip(tmp_path_factory, val_gt):
    """Three frames (one coco-mini image at half size, shifted by 0 / 4 / 8 px) as a PNG folder and an MP4, with the
    image's synthetic poses scaled and shifted alike, and an untrained prior-head checkpoint."""
    root = tmp_path_factory.mktemp("clip")
    records = synthesize_results(val_gt, get_mix("paper", val_gt.schema), seed=0)
    image_id = max({r["image_id"] for r in records}, key=lambda i: sum(r["image_id"] == i for r in records))
    image = val_gt.read_image(image_id)
    image_h, image_w = image.shape[:2]
    h, w = image.shape[0] // 4 * 2, image.shape[1] // 4 * 2  # even sizes: MP4 codecs crop odd ones
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    (root / "frames").mkdir()
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    poses = []
    for f in range(3):
        shift = np.float32([[1, 0, 4 * f], [0, 1, 0]])
        frame = cv2.warpAffine(image, shift, (w, h))
        cv2.imwrite(str(root / "frames" / f"{f:03d}.png"), frame[:, :, ::-1])
        writer.write(frame[:, :, ::-1].copy())
        for r in records:
            if r["image_id"] == image_id:
                kp = np.asarray(r["keypoints"]).reshape(-1, 3)
                kp[:, :2] *= (w / image_w, h / image_h)  # absent keypoints stay at (0, 0)
                kp[kp[:, 2] > 0, 0] += 4 * f
                poses.append({"frame": f, "keypoints": kp.reshape(-1).tolist(), "score": r["score"], "track_id": 7})
    writer.release()
    (root / "poses.json").write_text(json.dumps(poses))
    model = build_refiner(dict(backbone="resnet18", head="prior", input_size=(48, 64), deconv_channels=32), seed=0)
    save_refiner(root / "untrained.pth", model, {"trained": False})
    return root, poses


def test_video_file_refined_one_to_one_and_rendered_side_by_side(clip, tmp_path, capsys):
    root, poses = clip
    out, render = tmp_path / "refined.json", tmp_path / "side_by_side.mp4"
    code = cli.main(["video", "--checkpoint", str(root / "untrained.pth"), "--input", str(root / "clip.mp4"),
                     "--poses", str(root / "poses.json"), "--out", str(out), "--render", str(render)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "UNTRAINED" in cap.err
    refined = json.loads(out.read_text())
    assert len(refined) == len(poses)
    assert [(r["frame"], r["track_id"], r["score"]) for r in refined] == [(p["frame"], 7, p["score"]) for p in poses]
    assert all(r["untrained"] is True and "image_id" not in r for r in refined)
    video = cv2.VideoCapture(str(render))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 3
    single = cv2.imread(str(root / "frames" / "000.png"))
    assert frames[0].shape == (single.shape[0], 2 * single.shape[1], 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    assert render.stat().st_mode & 0o777 == out.stat().st_mode & 0o777  # as the JSON output (0644 under umask 022)


def test_frame_folder_rendering_and_the_python_api(clip, tmp_path, val_gt):
    root, poses = clip
    out, render = tmp_path / "refined.json", tmp_path / "panels"
    assert cli.main(["video", "--checkpoint", str(root / "untrained.pth"), "--input", str(root / "frames"),
                     "--poses", str(root / "poses.json"), "--out", str(out), "--render", str(render)]) == 0
    assert sorted(p.name for p in render.iterdir()) == [f"frame_{i:06d}.png" for i in range(3)]
    umask = os.umask(0)
    os.umask(umask)
    assert render.stat().st_mode & 0o777 == 0o777 & ~umask  # a folder as mkdir makes it, not mkdtemp's 0700
    assert {p.stat().st_mode & 0o777 for p in render.iterdir()} == {out.stat().st_mode & 0o777}
    # the same refinement through the API; frames shifted by 4 px give poses shifted by about 4 px
    post = RefinePostProcessor(root / "untrained.pth")
    records = load_frame_poses(root / "poses.json", 17)
    refined = refine_video(FrameReader(root / "frames"), records, post, val_gt.schema.flip_index)
    assert refined == json.loads(out.read_text())
    per_frame = [np.asarray([r["keypoints"] for r in refined if r["frame"] == f]).reshape(-1, 17, 3) for f in range(3)]
    present = per_frame[0][..., 2] > 0
    dx = (per_frame[2][..., 0] - per_frame[0][..., 0])[present]
    assert np.median(dx) == pytest.approx(8.0, abs=1.0)


def test_video_bad_inputs_are_one_line_errors(clip, tmp_path, capsys):
    root, poses = clip
    beyond = tmp_path / "beyond.json"
    beyond.write_text(json.dumps(poses + [dict(poses[0], frame=5)]))
    no_frame = tmp_path / "no_frame.json"
    no_frame.write_text(json.dumps([{k: v for k, v in poses[0].items() if k != "frame"}]))
    k16 = tmp_path / "k16.json"  # a 16-keypoint pose file for a COCO-17 refiner
    k16.write_text(json.dumps([dict(p, keypoints=p["keypoints"][:48]) for p in poses]))
    cases = [
        (root / "clip.mp4", k16, "k16.json: record 0 has 48 keypoint values, expected 51 (17 keypoints x 3"),
        (root / "clip.mp4", beyond, "refers to frame 5"),
        (root / "frames", beyond, "refers to frame 5"),
        (root / "frames", no_frame, "no non-negative integer 'frame'"),
        (tmp_path / "missing.mp4", root / "poses.json", "video or frame folder not found"),
        (root / "poses.json", root / "poses.json", "cannot be"),
    ]
    for video, pose_file, message in cases:
        out, render = tmp_path / "out.json", tmp_path / "render.mp4"
        code = cli.main(["video", "--checkpoint", str(root / "untrained.pth"), "--input", str(video),
                         "--poses", str(pose_file), "--out", str(out), "--render", str(render)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, err
        assert not out.exists() and not render.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(PosefixError, match="frame folder"):
        FrameReader(tmp_path)  # a folder without images
