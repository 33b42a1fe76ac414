"""The measured error profile's plot (matplotlib, PNG)."""

import matplotlib.image
import numpy as np

from posefix_bench.evaluation.profile import measure_profile
from posefix_bench.reporting.profile_plots import profile_figure, save_profile_plot
from posefix_bench.structures.coco import CocoDataset

from evaluation.diagnosis_helpers import custom_case


def test_profile_plot_has_a_panel_per_cell_and_is_written_as_png(tmp_path):
    gt_path, results, _ = custom_case(tmp_path)
    profile = measure_profile(CocoDataset(gt_path), results)
    assert len(profile_figure(profile).axes) == 9
    path = save_profile_plot(profile, tmp_path / "profile.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(path)
    assert np.asarray(img).ndim == 3 and img[..., :3].std() > 0.05
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
