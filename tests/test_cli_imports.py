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
    assert (tmp_path / "d" / "diagnosis.json").is_file() and not list((tmp_path / "d").glob("*.svg"))
    assert json.loads((tmp_path / "e" / "evaluation.json").read_text())["evaluator"] == "hotcoco"


def test_diagnose_with_plots_imports_nothing_heavy_and_writes_its_numbers_first(val_gt, val_gt_path, tmp_path):
    """With plots, ``diagnose`` never imports matplotlib (issue 18: the SVG plots are written as text), and the plot
    module comes in only after diagnosis.json is on disk (the record survives a plotting failure)."""
    res = tmp_path / "res.json"
    save_results(res, noisy_results(val_gt, seed=4))
    out = tmp_path / "d"
    plots = "posefix_bench.reporting.diagnosis_plots"
    code = ("import builtins, os, sys\nfrom posefix_bench.cli import main\nreal = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            f"    if name == {plots!r} and name not in sys.modules:\n"
            f"        assert os.path.isfile({str(out / 'diagnosis.json')!r}), 'plots before the numbers'\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            f"assert main(['diagnose', '--gt', {str(val_gt_path)!r}, '--results', {str(res)!r}, "
            f"'--out', {str(out)!r}]) == 0\n"
            f"assert {plots!r} in sys.modules")
    assert _heavy_modules_after(code) == []
    assert sorted(p.name for p in out.iterdir()) == ["ap_impact.svg", "confidence_bins.svg", "diagnosis.json",
                                                      "error_types.svg", "keypoint_errors.svg"]


def test_the_diagnosis_plot_module_imports_no_matplotlib():
    assert _heavy_modules_after("import posefix_bench.reporting.diagnosis_plots") == []
