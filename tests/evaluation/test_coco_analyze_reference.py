"""The diagnosis against coco-analyze itself: the counts of ``../shared/notes/coco-analyze-reference.md``.

Those counts were computed with coco-analyze (Ronchi & Perona's ``COCOanalyze.analyze(check_kpts=True)``, area range
"all", every val image) on three public results files for coco-mini val; coco-analyze has no notion of an absent
keypoint, so they compare with ``--absent-policy pycocotools``. The library function and the command must give
exactly those matched detections and class counts, and every keypoint the class that an independent, row-by-row
rendering of coco-analyze's rule (``coco_analyze_classes``) gives it.
"""

import json

import pytest

from posefix_bench.cli import main
from posefix_bench.codecs.taxonomy import CLASSES, TAXONOMY
from posefix_bench.evaluation.diagnosis import classify, diagnose
from posefix_bench.structures.results import load_results

from evaluation.diagnosis_helpers import coco_analyze_classes

# results file: (matched, good, jitter, inversion, swap, miss), from coco-analyze-reference.md
REFERENCE = {
    "mediapipe_cocomini_val.json": (50, 365, 134, 41, 3, 80),
    "synthetic_paper_s1000.json": (89, 638, 171, 42, 22, 91),
    "noisy4x_cocomini_val.json": (88, 205, 240, 46, 4, 451),
}
ERRORS = ("good", "jitter", "inversion", "swap", "miss")


def _counts(diag):
    return (diag["matched_detections"],) + tuple(diag["counts"][c] for c in ERRORS)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_library_counts_equal_coco_analyze(val_gt, reference_dir, name):
    results = load_results(reference_dir / name, val_gt)
    diag = diagnose(val_gt, results, absent_policy="pycocotools", ap_impact=False)
    assert diag["taxonomy"] == TAXONOMY == "coco-analyze"
    assert _counts(diag) == REFERENCE[name]
    assert diag["counts"]["absent"] == 0 and diag["counts"]["total"] == sum(REFERENCE[name][1:])
    # keypoint by keypoint, the class is the one of coco-analyze's rows (not only the totals)
    table = classify(val_gt, results, absent_policy="pycocotools")
    mine = {(int(r), int(j)): CLASSES[c] for r, j, c in zip(table.result_index, table.joint, table.cls)}
    assert mine == coco_analyze_classes(val_gt, results, table.det_ann_id)


def test_command_counts_equal_coco_analyze(val_gt_path, reference_dir, tmp_path, capsys):
    for i, name in enumerate(sorted(REFERENCE)):
        out = tmp_path / f"d{i}"
        args = ["diagnose", "--gt", str(val_gt_path), "--results", str(reference_dir / name), "--out", str(out),
                "--absent-policy", "pycocotools", "--no-plots", "--no-ap-impact"]
        assert main(args) == 0
        diag = json.loads((out / "diagnosis.json").read_text())
        assert diag["taxonomy"] == "coco-analyze" and diag["absent_policy"] == "pycocotools"
        assert _counts(diag) == REFERENCE[name], name
        assert "taxonomy: coco-analyze, absent policy: pycocotools" in capsys.readouterr().out
