"""Bad input never costs a run (issue 19): every command checks its arguments before the work.

Each error case must end with exit status 2 and one line naming the argument or file and the problem, without a
traceback, without writing its outputs and, for the checks that come before the work, without importing torch (the
cases run in one fresh interpreter, so ``"torch" in sys.modules`` says whether any of them needed it). Degenerate
data that the policy lets through (``structures/checks.py``) must print a warning and record it in the output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posefix_bench import cli
from posefix_bench.structures.results import save_results

from helpers import noisy_results

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "ablations" / "coco-mini" / "r18_64x48_paper_lb-off_skip_train-cocomini.py"

# runs each argv through cli.main in one interpreter; reports exit status, stderr, whether torch got imported, seconds
RUNNER = r"""
import contextlib, io, json, sys, time
from posefix_bench.cli import main
out = []
for argv in json.load(sys.stdin):
    err, std = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    out.append({"rc": rc, "err": err.getvalue(), "torch": "torch" in sys.modules, "s": time.perf_counter() - t0})
print(json.dumps(out))
"""


def run_fresh(cases: list[list[str]]) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(cases), capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def unwritable_dir(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: use sysfs then)."""
    if os.geteuid() == 0:
        return Path("/sys")
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, val_gt, coco_mini_root):
    """Valid and invalid input files, shared by the cases."""
    root = tmp_path_factory.mktemp("inputs")
    res = root / "res.json"
    save_results(res, noisy_results(val_gt, seed=0))
    data = json.loads(val_gt.path.read_text())

    def variant(name, change):
        d = json.loads(json.dumps(data))
        change(d)
        path = root / name
        path.write_text(json.dumps(d))
        return path

    labelled = lambda d: next(a for a in d["annotations"] if a["num_keypoints"] and not a["iscrowd"])  # noqa: E731
    huge = json.loads(res.read_text())
    huge[0]["keypoints"][0] = 1e308
    (root / "huge.json").write_text(json.dumps(huge))
    (root / "a_file.txt").write_text("a file, not a folder")
    (root / "existing_dir").mkdir()
    (root / "junk.pth").write_bytes(b"not a checkpoint")
    poses = [{"frame": 0, "keypoints": r["keypoints"], "score": r["score"]} for r in json.loads(res.read_text())[:2]]
    (root / "poses.json").write_text(json.dumps(poses))
    trained = root / "trained_run"
    (trained / "checkpoints").mkdir(parents=True)
    (trained / "checkpoints" / "latest.pth").write_bytes(b"exists")
    return {
        "root": root, "gt": val_gt.path, "res": res, "huge": root / "huge.json", "file": root / "a_file.txt",
        "dir": root / "existing_dir", "ckpt": root / "junk.pth", "images": coco_mini_root / "val2017",
        "poses": root / "poses.json", "trained_run": trained,
        "gt_nan": variant("gt_nan.json", lambda d: labelled(d)["keypoints"].__setitem__(0, float("nan"))),
        "gt_area": variant("gt_area.json", lambda d: labelled(d).update(area=-1.0)),
        "gt_empty": variant("gt_empty.json", lambda d: [a.update(keypoints=[0] * 51, num_keypoints=0)
                                                        for a in d["annotations"]]),
    }


def _cases(f: dict, ro: Path, out: Path) -> list[tuple[str, list[str], str]]:
    """(name, argv, the words the error line must hold). ``out`` is a path none of them may create."""
    gt, res, ck, img = str(f["gt"]), str(f["res"]), str(f["ckpt"]), str(f["images"])
    refine = ["refine", "--checkpoint", ck, "--images", img, "--gt", gt, "--results", res]
    video = ["video", "--checkpoint", ck, "--input", img, "--poses", str(f["poses"])]
    under_file = str(f["file"] / "x.json")
    return [
        # 1. --out checked first: a folder where a file is expected, the reverse, a read-only parent, a file parent
        ("refine out=dir", refine + ["--out", str(f["dir"])], f"--out {f['dir']}: is a directory, expected a file"),
        ("video out=dir", video + ["--out", str(f["dir"])], "--out"),
        ("refine out read-only", refine + ["--out", str(ro / "x.json")], f"cannot write in {ro}"),
        ("refine out under file", refine + ["--out", under_file], f"{f['file']} is a file, not a directory"),
        ("evaluate out=file", ["evaluate", "--gt", gt, "--results", res, "--out", str(f["file"])],
         "exists and is not a directory"),
        ("evaluate out read-only", ["evaluate", "--gt", gt, "--results", res, "--out", str(ro / "m")],
         "cannot write in"),
        ("diagnose out under file", ["diagnose", "--gt", gt, "--results", res, "--out", under_file],
         "is a file, not a directory"),
        ("profile out read-only", ["profile", "--gt", gt, "--results", res, "--out", str(ro / "p.json")],
         "cannot write in"),
        ("profile plot=dir", ["profile", "--gt", gt, "--results", res, "--out", str(out), "--plot", str(f["dir"])],
         "--plot"),
        ("synthesize out under file", ["synthesize", "--gt", gt, "--out", under_file], "is a file, not a directory"),
        ("estimate out read-only", ["estimate", "--source", "mediapipe", "--gt", gt, "--out", str(ro / "r.json")],
         "cannot write in"),
        ("video render under file", video + ["--out", str(out), "--render", str(f["file"] / "v.mp4")],
         "--render"),
        ("throughput json=dir", ["throughput", "--json", str(f["dir"]), "--no-e2e"], "--json"),
        ("sandbox out read-only", ["sandbox", "--out", str(ro / "sb")], "cannot write in"),
        ("train work-dir=file", ["train", "--config", str(CONFIG), "--work-dir", str(f["file"])],
         "--work-dir"),
        # 2. degenerate data that is an error
        ("evaluate zero persons", ["evaluate", "--gt", str(f["gt_empty"]), "--results", res],
         "no non-crowd person with labelled keypoints"),
        ("diagnose zero persons", ["diagnose", "--gt", str(f["gt_empty"]), "--results", res, "--out", str(out)],
         "nothing to diagnose"),
        ("profile zero persons", ["profile", "--gt", str(f["gt_empty"]), "--results", res, "--out", str(out)],
         "nothing to profile"),
        ("evaluate negative area", ["evaluate", "--gt", str(f["gt_area"]), "--results", res],
         f"{f['gt_area']}: annotation"),
        ("evaluate 1e308", ["evaluate", "--gt", gt, "--results", str(f["huge"])], "beyond 1e+06 px"),
        ("refine 1e308", refine[:-2] + ["--results", str(f["huge"]), "--out", str(out)], "beyond 1e+06 px"),
        # 3. the right file named
        ("synthesize NaN in gt", ["synthesize", "--gt", str(f["gt_nan"]), "--out", str(out)],
         f"{f['gt_nan']}: annotation"),
        # 4. argument values
        ("refine device foo", refine + ["--out", str(out), "--device", "foo"], "--device 'foo': unknown device"),
        ("video device foo", video + ["--out", str(out), "--device", "foo"], "--device 'foo': unknown device"),
        ("throughput device foo", ["throughput", "--device", "foo"], "--device 'foo': unknown device"),
        ("throughput threads 0", ["throughput", "--threads", "0"], "--threads 0: must be >= 1"),
        ("video batch 0", video + ["--out", str(out), "--batch-size", "0"], "--batch-size 0: must be >= 1"),
        ("train config=dir", ["train", "--config", str(f["dir"]), "--work-dir", str(out)],
         "is a directory, expected a config file"),
        ("train max_iters=abc", ["train", "--config", str(CONFIG), "--work-dir", str(out), "--cfg-options",
                                 "train.max_iters=abc"], "--cfg-options train.max_iters='abc': expected an integer or None"),
        ("train amp=3", ["train", "--config", str(CONFIG), "--work-dir", str(out), "--cfg-options", "train.amp=3"],
         "--cfg-options train.amp=3: expected true or false or a string"),
        ("train not key=value", ["train", "--config", str(CONFIG), "--work-dir", str(out), "--cfg-options", "lr"],
         "--cfg-options: 'lr' is not KEY=VALUE"),
        # 5. slow failures made fast: typos in refine's inputs are found before the model is loaded
        ("refine results typo", refine[:-2] + ["--results", str(f["root"] / "typo.json"), "--out", str(out)],
         "--results"),
        ("refine gt typo", refine[:5] + ["--gt", str(f["root"] / "typo.json"), "--results", res, "--out", str(out)],
         "--gt"),
        ("train existing work dir", ["train", "--config", str(CONFIG), "--work-dir", str(f["trained_run"])],
         "already holds a training run"),
    ]


def test_every_bad_argument_fails_in_one_line_before_any_work(inputs, tmp_path):
    ro = unwritable_dir(tmp_path)
    out = tmp_path / "never_written.json"
    cases = _cases(inputs, ro, out)
    reports = run_fresh([argv for _, argv, _ in cases])
    failures = []
    for (name, _, words), r in zip(cases, reports):
        lines = r["err"].strip().splitlines()
        if not (r["rc"] == 2 and len(lines) == 1 and words in lines[0] and "Traceback" not in r["err"]):
            failures.append(f"{name}: rc {r['rc']}, stderr {r['err']!r}")
    assert not failures, "\n".join(failures)
    torch = [name for (name, _, _), r in zip(cases, reports) if r["torch"]]
    assert not torch, f"a check imported torch (it must come before any heavy import): {torch[:1]}"
    assert not out.exists() and not (tmp_path / "x.json").exists()
    assert sorted(p.name for p in inputs["dir"].iterdir()) == []


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")
def test_cuda_without_a_gpu_blames_the_device_not_the_checkpoint(inputs, tmp_path):
    out = tmp_path / "r.json"
    f = inputs
    (r,) = run_fresh([["refine", "--checkpoint", str(f["ckpt"]), "--images", str(f["images"]), "--gt",
                       str(f["gt"]), "--results", str(f["res"]), "--out", str(out), "--device", "cuda"]])
    assert r["rc"] == 2 and r["err"].count("\n") == 1, r["err"]
    assert "--device cuda: no CUDA GPU is available" in r["err"] and "junk.pth" not in r["err"]
    assert not out.exists()


def _main(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_duplicated_results_warn_and_the_warning_is_recorded(inputs, tmp_path, capsys, val_gt):
    doubled = tmp_path / "doubled.json"
    records = json.loads(inputs["res"].read_text())
    doubled.write_text(json.dumps(records + records))
    rc, _, err = _main(capsys, "evaluate", "--gt", inputs["gt"], "--results", inputs["res"], "--out", tmp_path / "a")
    assert rc == 0 and err == ""
    rc, out, err = _main(capsys, "evaluate", "--gt", inputs["gt"], "--results", doubled, "--out", tmp_path / "b")
    assert rc == 0 and err.count("\n") == 1 and err.startswith("posefix-bench evaluate: warning: ")
    assert f"{len(records)} of {2 * len(records)} entries repeat" in err and "data warning" in out
    clean = json.loads((tmp_path / "a" / "metrics.json").read_text())
    skewed = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert clean["warnings"] == [] and skewed["AP"] < clean["AP"]  # the skew the warning is about
    assert [w["code"] for w in skewed["warnings"]] == ["duplicate-results"]
    rc, _, err = _main(capsys, "diagnose", "--gt", inputs["gt"], "--results", doubled, "--out", tmp_path / "d",
                       "--no-plots", "--no-ap-impact")
    assert rc == 0 and "repeat" in err
    diag = json.loads((tmp_path / "d" / "diagnosis.json").read_text())
    assert [w["code"] for w in diag["warnings"]] == ["duplicate-results"]


def test_duplicate_and_orphan_annotations_warn(inputs, tmp_path, capsys):
    data = json.loads(inputs["gt"].read_text())
    person = next(a for a in data["annotations"] if a["num_keypoints"] and not a["iscrowd"])
    data["annotations"] += [dict(person, id=10**9), dict(person, id=10**9 + 1, image_id=987654321)]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(data))
    rc, _, err = _main(capsys, "evaluate", "--gt", gt, "--results", inputs["res"], "--out", tmp_path / "e")
    assert rc == 0 and err.count("\n") == 2 and "not in 'images'" in err and "annotated twice" in err
    codes = [w["code"] for w in json.loads((tmp_path / "e" / "metrics.json").read_text())["warnings"]]
    assert codes == ["orphan-annotations", "duplicate-persons"]


def test_profile_without_support_is_refused_as_a_mix_and_as_a_profile(inputs, tmp_path, capsys, val_gt):
    from posefix_bench.codecs.taxonomy import ERROR_TYPES, O_BINS, V_BINS
    from posefix_bench.synthesis.error_profile import ErrorProfile

    k = val_gt.schema.num_keypoints
    empty = ErrorProfile("coco17", val_gt.schema.keypoints,
                         counts=[[[[0] * len(ERROR_TYPES)] * k] * len(O_BINS)] * len(V_BINS),
                         absent=[[[0] * k] * len(O_BINS)] * len(V_BINS))
    empty.save(tmp_path / "empty_profile.json")
    out = tmp_path / "synth.json"
    rc, _, err = _main(capsys, "synthesize", "--gt", inputs["gt"], "--mix", tmp_path / "empty_profile.json",
                       "--out", out)
    assert rc == 2 and err.count("\n") == 1 and "error profile has no support" in err and not out.exists()
    far = json.loads(inputs["res"].read_text())
    for r in far:  # every pose far from every person: nothing matches at OKS 0.1
        r["keypoints"] = [v + 5000.0 if i % 3 != 2 else v for i, v in enumerate(r["keypoints"])]
    (tmp_path / "far.json").write_text(json.dumps(far))
    rc, _, err = _main(capsys, "profile", "--gt", inputs["gt"], "--results", tmp_path / "far.json",
                       "--out", tmp_path / "p.json", "--no-plot")
    assert rc == 2 and "would have no support" in err and not (tmp_path / "p.json").exists()


def test_checkpoint_with_nan_weights_is_named(inputs, tmp_path, capsys):
    import torch

    from posefix_bench.models import build_refiner, save_refiner

    model = build_refiner(dict(backbone="resnet18", head="prior", input_size=(48, 64), deconv_channels=32), seed=0)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    ckpt = tmp_path / "nan.pth"
    save_refiner(ckpt, model, {"trained": True})
    out = tmp_path / "refined.json"
    rc, _, err = _main(capsys, "refine", "--checkpoint", ckpt, "--images", inputs["images"], "--gt", inputs["gt"],
                       "--results", inputs["res"], "--out", out)
    assert rc == 2 and err.count("\n") == 1 and err.split("error: ")[1].startswith(f"{ckpt}: the refiner's weights")
    assert str(out) not in err and not out.exists()


def test_video_batch_size_and_device_have_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["video", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--batch-size BATCH_SIZE crops per forward pass (default: 32)" in text
    assert "--device DEVICE cpu, cuda or cuda:N (default: cpu)" in text
