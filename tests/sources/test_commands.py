"""The `sources` and `estimate` commands: listing, a real run with measured speed, and clean failures."""

from __future__ import annotations

import json

import pytest

from posefix_bench.cli import main
from posefix_bench.structures.results import load_results


def test_sources_lists_everything(capsys):
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    for name in ("mediapipe", "results-file", "synthetic", "simplebaseline-r50-256x192", "hrnet-w32-256x192",
                 "rtmpose-m-256x192", "hrnet-w48-384x288", "sandbox-rtmpose-t-64x48"):
        assert name in out
    assert "0.718" in out and "human AP 56.4" in out
    assert main(["sources", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert sum(r["kind"] == "mmpose" for r in records) >= 4


def _boxes_file(tmp_path, boxes):
    dets = [{"image_id": i, "category_id": 1, "bbox": [float(v) for v in b[:4]], "score": 1.0}
            for i in boxes.image_ids for b in boxes.for_image(i)]
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(dets))
    return path


@pytest.mark.slow
def test_estimate_mediapipe_with_detector_boxes(tmp_path, capsys, val_gt_path, det_boxes_path, coco_mini_root):
    out = tmp_path / "res.json"
    rc = main(["estimate", "--source", "mediapipe", "--gt", str(val_gt_path), "--images",
               str(coco_mini_root / "val2017"), "--boxes", str(det_boxes_path), "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "118 boxes" in text and "images/s" in text and "persons/s" in text and "UNTRAINED" not in text
    records = json.loads(out.read_text())
    assert {r["image_id"] for r in records} <= {785, 40083, 196141, 197388}


@pytest.mark.slow
def test_estimate_untrained_is_marked(tmp_path, capsys, val_gt, val_gt_path, two_image_boxes):
    out = tmp_path / "res.json"
    rc = main(["estimate", "--source", "sandbox-rtmpose-t-64x48", "--untrained", "--gt", str(val_gt_path),
               "--boxes", str(_boxes_file(tmp_path, two_image_boxes)), "--out", str(out), "--flip-test"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "UNTRAINED" in text and "with flip-test post-processing" in text
    records = load_results(out, val_gt)
    assert len(records) == two_image_boxes.num_boxes and all(r["untrained"] is True for r in records)


def _one_image_gt(tmp_path, val_gt, image_id=785):
    data = json.loads(val_gt.path.read_text())
    data["images"] = [im for im in data["images"] if im["id"] == image_id]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] == image_id]
    path = tmp_path / "annotations" / "person_keypoints_one.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path, data["images"][0]["file_name"]


def _fails(capsys, argv, out, message):
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # a progress bar may precede the error
    assert err.startswith("posefix-bench estimate: error: ") and message in err, err
    assert not out.exists() and not list(out.parent.glob(".*tmp*"))


def test_estimate_bad_inputs_fail_cleanly(tmp_path, capsys, val_gt, val_gt_path):
    out = tmp_path / "out" / "res.json"
    base = ["estimate", "--gt", str(val_gt_path)]
    _fails(capsys, base + ["--source", "nope"], out, "unknown source 'nope' (known: mediapipe")
    _fails(capsys, ["estimate", "--source", "mediapipe", "--gt", str(tmp_path / "gt.json")], out, "not found")
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"image_id": 42, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 1.0}]))
    _fails(capsys, base + ["--source", "mediapipe", "--boxes", str(other)], out, "not in")
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    _fails(capsys, base + ["--source", "mediapipe", "--boxes", str(empty)], out, "empty box list")
    _fails(capsys, base + ["--source", "rtmpose-m-256x192", "--mix", "paper"], out, "unknown option 'mix'")
    _fails(capsys, base + ["--source", "rtmpose-m-256x192", "--untrained", "--decode", "dark"], out,
           "decode='dark' needs a heatmap head")
    gt, file_name = _one_image_gt(tmp_path, val_gt)
    images = tmp_path / "one"
    images.mkdir()
    _fails(capsys, ["estimate", "--source", "mediapipe", "--gt", str(gt), "--images", str(images)], out,
           "image not found")
    (images / file_name).write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    _fails(capsys, ["estimate", "--source", "mediapipe", "--gt", str(gt), "--images", str(images)], out,
           "cannot be decoded")
