"""The plot of a measured error profile (:class:`posefix_bench.synthesis.error_profile.ErrorProfile`), PNG.

One panel per (visibility bin, object-size bin) of the profile: per-joint stacked frequencies of the error types of
Ronchi & Perona (ICCV 2017), coloured as in the diagnosis plots (:data:`~posefix_bench.reporting.diagnosis_plots.
CLASS_COLORS`), with the keypoint count of each joint. Matplotlib (:mod:`~posefix_bench.reporting.mpl`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from posefix_bench.codecs.taxonomy import ERROR_TYPES, O_BINS, V_BINS
from posefix_bench.reporting.diagnosis_plots import CLASS_COLORS
from posefix_bench.reporting.mpl import figure, save_figure
from posefix_bench.synthesis.error_profile import ErrorProfile

__all__ = ["SPARSE_COUNT", "profile_figure", "save_profile_plot"]

SPARSE_COUNT = 20  # profile cells with fewer keypoints are drawn faint (ErrorProfile.probabilities backs off there)


def profile_figure(profile: ErrorProfile) -> Figure:
    """One panel per (V bin, O bin): per-joint stacked class frequencies, with the keypoint count of each joint.

    Joints with fewer than :data:`SPARSE_COUNT` keypoints in a cell are drawn faint: their frequencies are noisy
    (and :meth:`ErrorProfile.probabilities` backs off to pooled counts there).
    """
    freq, counts = np.nan_to_num(profile.frequencies()), profile.counts.sum(axis=-1)
    k = profile.num_keypoints
    fig = figure(3.0 * len(O_BINS) + 1.5, 0.9 + len(V_BINS) * (0.8 + 0.17 * k))
    axes = fig.subplots(len(V_BINS), len(O_BINS), sharex=True, sharey=True, squeeze=False)
    y = np.arange(k)
    for (vi, oi), ax in np.ndenumerate(axes):
        left = np.zeros(k)
        dense = counts[vi, oi] >= SPARSE_COUNT
        for c, name in enumerate(ERROR_TYPES):
            for rows, alpha in ((dense, 1.0), (~dense, 0.35)):
                ax.barh(y[rows], freq[vi, oi, rows, c], 0.8, left=left[rows], color=CLASS_COLORS[name], alpha=alpha)
            left += freq[vi, oi, :, c]
        for j in range(k):
            ax.text(1.01, y[j], str(counts[vi, oi, j]), va="center", fontsize=6)
        ax.set_title(f"{V_BINS[vi]}, {O_BINS[oi]}: n={counts[vi, oi].sum()}, absent {profile.absent[vi, oi].sum()}",
                     fontsize=8)
        ax.set_xlim(0, 1.15)
    axes[0, 0].set_yticks(y, profile.keypoints)
    for ax in axes.flat:
        ax.tick_params(labelsize=6)
    axes[0, 0].invert_yaxis()
    handles = [Patch(color=CLASS_COLORS[name], label=name) for name in ERROR_TYPES]
    fig.legend(handles=handles, loc="outside upper right", ncols=len(ERROR_TYPES), fontsize=7)
    fig.suptitle(f"Measured error profile ({profile.schema}); numbers: keypoints per joint; faint: fewer than "
                 f"{SPARSE_COUNT}", fontsize=9, x=0.02, ha="left")
    return fig


def save_profile_plot(profile: ErrorProfile, path: str | os.PathLike) -> Path:
    """Draw :func:`profile_figure` and write it as a PNG atomically."""
    return save_figure(profile_figure(profile), path)
