import matplotlib.image
import numpy as np
import pytest

from posefix_bench.evaluation.diagnosis import diagnose
from posefix_bench.evaluation.profile import measure_profile
from posefix_bench.reporting.diagnosis_plots import (
    PLOT_FILES, confidence_figure, error_types_figure, keypoint_heatmap_figure, profile_figure, save_profile_plot,
    write_diagnosis_plots,
)  # fmt: skip
from posefix_bench.structures.coco import CocoDataset

from evaluation.diagnosis_helpers import custom_case
from helpers import noisy_results


def _texts(fig) -> str:
    """Every piece of text drawn in a figure (titles, labels, tick labels, annotations, legends)."""
    fig.canvas.draw()
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def _read_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)


@pytest.fixture(scope="module")
def refined_diag(val_gt):
    res = noisy_results(val_gt, seed=21, noise=0.1)
    refined = [dict(r, untrained=True) for r in noisy_results(val_gt, seed=21, noise=0.05)]
    return diagnose(val_gt, res, refined=refined)


def test_all_diagnosis_plots_are_written_as_pngs(refined_diag, tmp_path):
    paths = write_diagnosis_plots(refined_diag, tmp_path)
    assert sorted(p.name for p in paths) == sorted(PLOT_FILES.values())
    for p in paths:
        img = _read_png(p)
        assert img.shape[0] > 200 and img.shape[1] > 300 and img[..., :3].std() > 0.05  # drawn, not blank
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_plots_show_before_after_and_the_untrained_label(refined_diag):
    text = _texts(error_types_figure(refined_diag))
    assert "input" in text and "refined (untrained)" in text and "hatched" in text
    conf = _texts(confidence_figure(refined_diag))
    fixed = refined_diag["transitions"]["per_confidence"][refined_diag["conf_bin_labels"][-1]]
    assert "what refinement did (refined (untrained))" in conf and f"{fixed['fixed_total']}/" in conf
    heat = keypoint_heatmap_figure(refined_diag)
    assert len(heat.axes) == 3  # input, refined, colour bar


def test_plots_follow_a_custom_schema_without_refined_or_ap_impact(tmp_path):
    gt_path, results, _ = custom_case(tmp_path)
    gt = CocoDataset(gt_path)
    diag = diagnose(gt, results, ap_impact=False)
    paths = write_diagnosis_plots(diag, tmp_path / "plots")
    assert sorted(p.name for p in paths) == sorted(v for k, v in PLOT_FILES.items() if k != "ap_impact")
    heat = keypoint_heatmap_figure(diag)
    labels = [t.get_text() for t in heat.axes[0].get_yticklabels()]
    assert labels == ["head (2)", "left_hand (2)", "right_hand (2)", "tail (1)"]
    groups = [t.get_text() for t in error_types_figure(diag).axes[0].get_xticklabels()]
    assert groups == ["all", "front", "hands", "back"]
    profile = measure_profile(gt, results)
    assert len(profile_figure(profile).axes) == 9
    img = _read_png(save_profile_plot(profile, tmp_path / "profile.png"))
    assert np.asarray(img).ndim == 3
