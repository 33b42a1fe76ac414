"""The command line starts without the heavy libraries: they are imported only by the commands that need them.

Each case runs in a fresh interpreter (a subprocess) and reads ``sys.modules`` at the end.
"""

import json
import subprocess
import sys

from posefix_bench.structures.results import save_results

from helpers import noisy_results

HEAVY = ("torch", "torchvision", "matplotlib", "cv2", "mmpose", "mmcv", "mmdet", "mmengine", "mediapipe")


def _heavy_modules_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_building_every_command_parser_imports_nothing_heavy():
    assert _heavy_modules_after("from posefix_bench.cli import build_parser\nbuild_parser()") == []


def test_evaluate_and_diagnose_without_plots_import_nothing_heavy(val_gt, val_gt_path, tmp_path):
    res = tmp_path / "res.json"
    save_results(res, noisy_results(val_gt, seed=3))
    common = f"'--gt', {str(val_gt_path)!r}, '--results', {str(res)!r}"
    code = ("import contextlib, io\nfrom posefix_bench.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    assert main(['evaluate', {common}, '--out', {str(tmp_path / 'e')!r}]) == 0\n"
            f"    assert main(['diagnose', {common}, '--out', {str(tmp_path / 'd')!r}, '--no-plots']) == 0")
    assert _heavy_modules_after(code) == []
    assert (tmp_path / "d" / "diagnosis.json").is_file() and not list((tmp_path / "d").glob("*.png"))
    assert json.loads((tmp_path / "e" / "evaluation.json").read_text())["evaluator"] == "hotcoco"


def test_diagnose_writes_its_numbers_before_the_plots(val_gt, val_gt_path, tmp_path):
    """With plots, matplotlib comes in after diagnosis.json is on disk (the record survives a plotting failure)."""
    res = tmp_path / "res.json"
    save_results(res, noisy_results(val_gt, seed=4))
    out = tmp_path / "d"
    code = ("import builtins, os, sys\nfrom posefix_bench.cli import main\nreal = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            f"    if name.startswith('matplotlib') and 'matplotlib' not in sys.modules:\n"
            f"        assert os.path.isfile({str(out / 'diagnosis.json')!r}), 'matplotlib before the numbers'\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            f"assert main(['diagnose', '--gt', {str(val_gt_path)!r}, '--results', {str(res)!r}, "
            f"'--out', {str(out)!r}]) == 0")
    assert _heavy_modules_after(code) == ["matplotlib"]
    assert sorted(p.name for p in out.iterdir()) == ["ap_impact.png", "confidence_bins.png", "diagnosis.json",
                                                      "error_types.png", "keypoint_errors.png"]
