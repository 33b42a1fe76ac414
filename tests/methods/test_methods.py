"""Refinement methods: the one-to-one contract, identity, an external command, a Python callable, a plug-in, and the
``refine --method`` / ``methods`` commands on real coco-mini data."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from posefix_bench import cli
from posefix_bench.errors import PosefixError
from posefix_bench.methods import build_method, list_methods, method_types, register_method, unregister_method
from posefix_bench.methods.base import Method, MethodInfo

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco-analyze-reference"
MEDIAPIPE = REFERENCE / "mediapipe_cocomini_val.json"

# an external refiner: moves every keypoint by (+2, -1) px (absent ones too: the contract must restore them),
# replaces the score (the input's must be kept) and adds a field of its own
SHIFT = """
import json, sys
records = json.load(open(sys.argv[1]))
for r in records:
    kp = r["keypoints"]
    r["keypoints"] = [v + (2.0 if i % 3 == 0 else -1.0 if i % 3 == 1 else 0.0) for i, v in enumerate(kp)]
    r["score"] = -1.0
    r["shifted_by"] = "shift.py"
json.dump(records, open(sys.argv[2], "w"))
"""
FAILS = """
import sys
print("loading model", file=sys.stderr)
print("RuntimeError: the weights are missing", file=sys.stderr)
sys.exit(3)
"""
DROPS = """
import json, sys
json.dump(json.load(open(sys.argv[1]))[1:], open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def inputs(val_gt_path, coco_mini_root):
    records = json.loads(MEDIAPIPE.read_text())
    assert records, MEDIAPIPE
    return {"gt": val_gt_path, "images": coco_mini_root / "val2017", "results": MEDIAPIPE, "records": records}


@pytest.fixture(scope="module")
def holes(inputs, tmp_path_factory):
    """The mediapipe results with every 5th keypoint not predicted (confidence 0): the absent rule is exercised."""
    records = [dict(r, keypoints=list(r["keypoints"])) for r in inputs["records"]]
    for n, r in enumerate(records):
        for k in range(n % 5, len(r["keypoints"]) // 3, 5):
            r["keypoints"][3 * k + 2] = 0.0
    path = tmp_path_factory.mktemp("holes") / "holes.json"
    path.write_text(json.dumps(records))
    return dict(inputs, results=path, records=records)


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _refine(capsys, inputs, out: Path, *method_args) -> tuple[int, str, str]:
    rc = cli.main(["refine", *map(str, method_args), "--images", str(inputs["images"]), "--gt", str(inputs["gt"]),
                   "--results", str(inputs["results"]), "--out", str(out)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _absent(records) -> np.ndarray:
    from posefix_bench.structures.results import absent_mask

    return absent_mask(np.asarray([r["keypoints"] for r in records], dtype=np.float64).reshape(len(records), -1, 3))


def test_identity_leaves_ap_unchanged_to_the_last_digit(inputs, tmp_path, capsys, val_gt):
    from posefix_bench.evaluation.coco_eval import evaluate

    out = tmp_path / "identity.json"
    rc, stdout, err = _refine(capsys, inputs, out, "--method", "identity")
    assert rc == 0, err
    refined = json.loads(out.read_text())
    assert [{k: v for k, v in r.items() if k != "refined_by"} for r in refined] == inputs["records"]
    assert {r["refined_by"] for r in refined} == {"identity"}
    before, after = evaluate(val_gt, inputs["records"]), evaluate(val_gt, refined)
    assert before["metrics"] == after["metrics"]  # every metric, bit for bit
    assert before["metrics"]["AP"] > 0  # mediapipe scores something on coco-mini: the comparison is not vacuous


def test_command_passes_the_programs_keypoints_through_one_to_one(holes, tmp_path, capsys):
    inputs = holes
    script = _script(tmp_path, "shift.py", SHIFT)
    out = tmp_path / "shifted.json"
    rc, stdout, err = _refine(capsys, inputs, out, "--method", "command", "--name", "shift",
                              "--command", f"{sys.executable} {script} {{input}} {{output}}")
    assert rc == 0, err
    refined, records = json.loads(out.read_text()), inputs["records"]
    assert len(refined) == len(records) and "with shift" in stdout
    absent = _absent(records)
    assert absent.any()  # mediapipe leaves keypoints out: the absent rule is exercised
    for r, a, gone in zip(refined, records, absent):
        kin = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        kout = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3)
        np.testing.assert_array_equal(kout[gone], kin[gone])  # not predicted: still exactly the input's
        np.testing.assert_array_equal(kout[~gone, :2], kin[~gone, :2] + [2.0, -1.0])  # the program's keypoints
        assert r["score"] == a["score"] and r["image_id"] == a["image_id"]  # the input's fields kept
        assert r["shifted_by"] == "shift.py" and r["refined_by"] == "shift"  # the program's own field joins


@pytest.mark.parametrize("program, words", [
    (FAILS, "exited with status 3: RuntimeError: the weights are missing"),
    (DROPS, "output is not one to one with the input"),
])
def test_a_failing_program_is_one_line_and_writes_nothing(inputs, tmp_path, capsys, program, words):
    script = _script(tmp_path, "refiner.py", program)
    out = tmp_path / "out.json"
    rc, _, err = _refine(capsys, inputs, out, "--method", "command",
                         "--command", f"{sys.executable} {script} {{input}} {{output}}")
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "method 'command'" in err and words in err
    assert not out.exists() and list(tmp_path.iterdir()) == [script]


@pytest.mark.parametrize("argv, words", [
    (["--method", "command", "--command", "no-such-program-xyz {input} {output}"], "program 'no-such-program-xyz'"),
    (["--method", "command", "--command", "cat {input}"], "must name {output}"),
    (["--method", "command", "--command", "cat {input} {output} {typo}"], "unknown placeholder {typo}"),
    (["--method", "python", "--callable", "no_such_module_xyz:f"], "cannot be imported"),
    (["--method", "python", "--callable", "json"], "expected 'package.module:function'"),
    (["--method", "python", "--callable", "json:dumps", "--flip"], "--flip: only for --method posefix"),
    (["--method", "identity", "--command", "x"], "--command: not an option of method 'identity'"),
    (["--method", "command"], "--command: required with --method command"),
    (["--method", "nope"], "unknown refinement method 'nope'"),
    (["--method", "identity", "--option", "colour=red"], "unknown option 'colour'"),
    ([], "--method: required"),
])
def test_bad_method_arguments_are_one_line_before_any_work(inputs, tmp_path, capsys, argv, words):
    out = tmp_path / "out.json"
    rc, _, err = _refine(capsys, inputs, out, *argv)
    assert rc == 2 and err.count("\n") == 1 and words in err, err
    assert not out.exists()


def test_python_callable_from_a_temporary_module(holes, tmp_path, capsys, monkeypatch):
    inputs = holes
    (tmp_path / "my_refiner_mod.py").write_text(textwrap.dedent("""
        def refine(results, images, gt):
            assert images.is_dir() and gt.is_file()
            out = []
            for r in results:
                kp = list(r["keypoints"])
                kp[0] += 5.0
                out.append({"image_id": r["image_id"], "keypoints": kp})
            return out
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "py.json"
    rc, _, err = _refine(capsys, inputs, out, "--method", "python", "--callable", "my_refiner_mod:refine")
    assert rc == 0, err
    refined, records = json.loads(out.read_text()), inputs["records"]
    absent = _absent(records)
    for r, a, gone in zip(refined, records, absent):
        expect = a["keypoints"][0] + (0.0 if gone[0] else 5.0)
        assert r["keypoints"][0] == expect and r["keypoints"][1:] == a["keypoints"][1:]
        assert r["score"] == a["score"] and r["category_id"] == a["category_id"]


HALVE = """
import numpy as np

from posefix_bench.methods import Method, MethodInfo


class Halve(Method):
    info = MethodInfo(type="halve", description="moves keypoints towards the pose's centre", uses_images=False)

    def __init__(self, factor: float = 0.5, **kw):
        super().__init__(**kw)
        self.factor = factor

    def run(self, results, images, gt, progress=None):
        out = []
        for r in results:
            kp = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3)
            centre = kp[:, :2].mean(axis=0)
            kp[:, :2] = centre + self.factor * (kp[:, :2] - centre)
            out.append(dict(r, keypoints=kp.reshape(-1).tolist()))
        return out
"""


class _Halve(Method):
    info = MethodInfo(type="halve-in-code", uses_images=False)

    def __init__(self, factor: float = 0.5, **kw):
        super().__init__(**kw)
        self.factor = factor

    def run(self, results, images, gt, progress=None):
        return results


def test_an_installed_plug_in_is_found_by_its_entry_point(inputs, tmp_path, capsys, monkeypatch):
    pkg = tmp_path / "halve_plugin.py"
    pkg.write_text(HALVE)
    dist = tmp_path / "halve_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: halve-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[posefix_bench.methods]\nhalve = halve_plugin:Halve\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "halve" in method_types()
    (info,) = [i for i in list_methods() if i.type == "halve"]
    assert info.origin == "halve_plugin:Halve" and not info.uses_images
    out = tmp_path / "halved.json"
    rc, _, err = _refine(capsys, inputs, out, "--method", "halve", "--option", "factor=0.25")
    assert rc == 0, err
    refined = json.loads(out.read_text())
    assert len(refined) == len(inputs["records"]) and refined[0]["keypoints"] != inputs["records"][0]["keypoints"]
    rc = cli.main(["methods"])
    assert rc == 0 and "halve_plugin:Halve" in capsys.readouterr().out


def test_registry_one_mechanism_and_the_listing(capsys):
    assert {"posefix", "identity", "command", "python"} <= set(method_types())
    register_method("halve-in-code", _Halve)
    try:
        with pytest.raises(PosefixError, match="already registered"):
            register_method("halve-in-code", _Halve)
        m = build_method(dict(type="halve-in-code", name="h", factor=0.1))
        assert isinstance(m, _Halve) and m.name == "h" and m.factor == 0.1
        with pytest.raises(PosefixError, match="not a posefix_bench.methods.Method subclass"):
            register_method("not-a-method", dict)
    finally:
        unregister_method("halve-in-code")
    assert "halve-in-code" not in method_types()
    assert cli.main(["methods", "--json"]) == 0
    listed = {r["type"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["identity"]["uses_images"] is False and listed["posefix"]["learned"] is True


def test_the_contract_restores_absent_keypoints_and_refuses_a_reordering(holes):
    inputs = holes
    from posefix_bench.methods.base import check_one_to_one, merge_refined

    class InPlace(Method):  # edits its input records in place: what the contract keeps must not change
        info = MethodInfo(type="in-place", uses_images=False)

        def run(self, results, images, gt, progress=None):
            for r in results:
                r["keypoints"][:] = [v + 1.0 for v in r["keypoints"]]
                r["score"] = -5.0
            return results

    before = json.dumps(inputs["records"][:3])
    out = InPlace().refine(inputs["records"][:3], Path("."), Path("."))
    assert json.dumps(inputs["records"][:3]) == before  # the caller's records untouched
    assert [r["score"] for r in out] == [r["score"] for r in inputs["records"][:3]]
    assert (_absent(out) == _absent(inputs["records"][:3])).all()

    records = inputs["records"][:3]
    moved = [dict(r, keypoints=[v + 1.0 for v in r["keypoints"]]) for r in records]
    merged = merge_refined(records, moved, "m")
    assert _absent(records).any() and (_absent(merged) == _absent(records)).all()
    if len({r["image_id"] for r in records}) > 1:
        with pytest.raises(PosefixError, match="image_id"):
            check_one_to_one("m", records, list(reversed(moved)))
    with pytest.raises(PosefixError, match="not a finite number"):
        check_one_to_one("m", records[:1], [dict(moved[0], keypoints=[float("nan")] * len(moved[0]["keypoints"]))])


def test_re_estimate_runs_an_estimator_on_each_poses_posefix_box(holes, tmp_path, capsys):
    from posefix_bench.structures.transforms import pose_boxes, record_bboxes

    inputs = dict(holes)
    records = [dict(r) for r in holes["records"]]
    records[0] = dict(records[0], keypoints=[0.0] * len(records[0]["keypoints"]))  # no box: passes through
    inputs["results"] = tmp_path / "in.json"
    inputs["results"].write_text(json.dumps(records))
    out = tmp_path / "re.json"
    rc, stdout, err = _refine(capsys, inputs, out, "--method", "re-estimate", "--option",
                              "estimator=sandbox-simplebaseline-r18-64x48", "--option", "untrained=true")
    assert rc == 0, err
    refined = json.loads(out.read_text())
    assert len(refined) == len(records) and all(r["untrained"] is True for r in refined)
    assert "refine_skipped" in refined[0] and refined[0]["keypoints"] == records[0]["keypoints"]
    absent = _absent(records)
    moved = 0
    boxes, _ = pose_boxes(np.asarray([r["keypoints"] for r in records]).reshape(len(records), -1, 3),
                          record_bboxes(records))
    for r, a, gone, box in zip(refined[1:], records[1:], absent[1:], boxes[1:]):
        kin = np.asarray(a["keypoints"]).reshape(-1, 3)
        kout = np.asarray(r["keypoints"]).reshape(-1, 3)
        np.testing.assert_array_equal(kout[gone], kin[gone])
        moved += int((kout[~gone, :2] != kin[~gone, :2]).any())
        # the estimator's keypoints lie in its crop: the pose's box padded by 1.25 and fitted to 3:4
        x, y, w, h = box
        side = max(w, h * 48 / 64) * 1.25, max(h, w * 64 / 48) * 1.25
        cx, cy = x + w / 2, y + h / 2
        assert (abs(kout[~gone, 0] - cx) <= side[0] / 2 * 1.001).all()  # mmpose computes in float32
        assert (abs(kout[~gone, 1] - cy) <= side[1] / 2 * 1.001).all()
        assert r["score"] == a["score"]
    assert moved == len(records) - 1
    rc, _, err = _refine(capsys, inputs, tmp_path / "x.json", "--method", "re-estimate", "--option", "estimator=nope")
    assert rc == 2 and "estimator 'nope' is not an mmpose estimator card" in err and err.count("\n") == 1


def test_pose_prior_starts_as_the_identity_trains_on_the_refiners_samples_and_refines(holes, tmp_path, capsys,
                                                                                    coco_mini_root):
    import torch

    from posefix_bench.methods.pose_prior import build_prior_net, prior_forward, train_pose_prior

    xy = torch.rand(3, 17, 2) * torch.tensor([48.0, 64.0])
    valid = torch.rand(3, 17) > 0.3
    out = prior_forward(build_prior_net(17), xy, valid, (48, 64))
    torch.testing.assert_close(out[valid], xy[valid])  # an untrained prior moves nothing
    cfg = {"model": {"input_size": [48, 64]}, "data": {"root": str(coco_mini_root), "mix": "paper",
                                                       "max_samples": 16},
           "train": {"max_iters": 3, "batch_size": 4, "seed": 1}}
    ckpt = tmp_path / "prior.pth"
    summary = train_pose_prior(cfg, ckpt)
    assert summary["iterations"] == 3 and summary["persons"] == 16 and np.isfinite(summary["final_loss"])
    assert train_pose_prior(cfg, tmp_path / "again.pth")["final_loss"] == summary["final_loss"]  # seeded
    out = tmp_path / "prior.json"
    rc, _, err = _refine(capsys, holes, out, "--method", "pose-prior", "--option", f"checkpoint={ckpt}")
    assert rc == 0, err
    refined, records = json.loads(out.read_text()), holes["records"]
    absent = _absent(records)
    moved = 0
    for r, a, gone in zip(refined, records, absent):
        kin, kout = np.asarray(a["keypoints"]).reshape(-1, 3), np.asarray(r["keypoints"]).reshape(-1, 3)
        np.testing.assert_array_equal(kout[gone], kin[gone])
        np.testing.assert_array_equal(kout[:, 2], kin[:, 2])  # the input's confidences
        moved += int((kout[~gone, :2] != kin[~gone, :2]).any())
    assert moved == len(records)
    (ckpt.parent / "junk.pth").write_bytes(b"junk")
    rc, _, err = _refine(capsys, holes, tmp_path / "x.json", "--method", "pose-prior", "--option",
                         f"checkpoint={ckpt.parent / 'junk.pth'}")
    assert rc == 2 and "not a pose-prior checkpoint" in err and err.count("\n") == 1
