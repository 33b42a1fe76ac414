"""Plots of the error diagnosis and of measured error profiles (PNG, matplotlib Agg, explicit Figure objects).

The figures follow Ronchi & Perona (ICCV 2017): error-type composition (their Fig. 5), AP improvement when each
error type is corrected (Fig. 6), plus the per-keypoint composition and the estimator-confidence view of the PyTorch
PoseFix re-implementation's finding that refinement helps confident keypoints only. They read the plain records of
:func:`posefix_bench.evaluation.diagnosis.diagnose` and
:class:`posefix_bench.synthesis.error_profile.ErrorProfile`; keypoint names and groups come from the record's schema.
Results marked ``"untrained": true`` are labelled "(untrained)" in every legend.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure` (no pyplot state); the ``write``/``save``
functions render them atomically and return the paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from posefix_bench.codecs.taxonomy import ERROR_TYPES, O_BINS, V_BINS
from posefix_bench.structures.io import atomic_write_with
from posefix_bench.synthesis.error_profile import ErrorProfile

__all__ = [
    "CLASS_COLORS", "PLOT_FILES", "save_figure", "error_types_figure", "ap_impact_figure",
    "keypoint_heatmap_figure", "confidence_figure", "diagnosis_figures", "write_diagnosis_plots",
    "profile_figure", "save_profile_plot",
]  # fmt: skip

CLASS_COLORS = {
    "good": "#4daf4a", "jitter": "#ffbf00", "inversion": "#984ea3", "swap": "#377eb8", "miss": "#e41a1c",
    "absent": "#9e9e9e",
}  # fmt: skip
PLOT_FILES = {
    "error_types": "error_types.png", "ap_impact": "ap_impact.png", "keypoint_errors": "keypoint_errors.png",
    "confidence_bins": "confidence_bins.png",
}  # fmt: skip
SPARSE_COUNT = 20  # profile cells with fewer keypoints are drawn faint (ErrorProfile.probabilities backs off there)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Render ``fig`` to a PNG file atomically."""
    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


def _runs(diag: dict) -> list[tuple[str, dict]]:
    """(label, record) of the input results and, when present, the refined results."""
    runs = [("input", diag)]
    if diag.get("refined") is not None:
        runs.append(("refined", diag["refined"]))
    return [(f"{name} (untrained)" if rec.get("untrained") else name, rec) for name, rec in runs]


def _fractions(counts: dict, classes) -> np.ndarray:
    total = counts["total"]
    return np.asarray([counts[c] / total if total else 0.0 for c in classes])


def _stacked_bars(ax, x, fractions: np.ndarray, classes, width: float, hatch: str | None = None, legend=True):
    """Stacked vertical bars: ``fractions`` (n_bars, n_classes) at positions ``x``."""
    bottom = np.zeros(len(x))
    for c, name in enumerate(classes):
        ax.bar(x, fractions[:, c], width, bottom=bottom, color=CLASS_COLORS[name], hatch=hatch,
               edgecolor="white", linewidth=0.5, label=name if legend else None)
        bottom += fractions[:, c]


# -- diagnosis figures ---------------------------------------------------------------------------------------------
def error_types_figure(diag: dict) -> Figure:
    """Stacked error-type fractions, all keypoints and per body-part group, input (and refined) side by side."""
    classes, runs = diag["classes"], _runs(diag)
    scopes = ["all"] + list(diag["schema"]["groups"])
    fig = _figure(1.6 + 1.3 * len(scopes) * len(runs), 4.2)
    ax = fig.add_subplot()
    width = 0.8 / len(runs)
    for r, (label, rec) in enumerate(runs):
        counts = [rec["counts"]] + [rec["per_group"][g] for g in scopes[1:]]
        x = np.arange(len(scopes)) + (r - (len(runs) - 1) / 2) * width
        _stacked_bars(ax, x, np.stack([_fractions(c, classes) for c in counts]), classes, width * 0.95,
                      hatch=None if r == 0 else "//", legend=r == 0)
        for xi, c in zip(x, counts):
            ax.text(xi, 1.01, f"{label}\nn={c['total']}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(scopes)), scopes)
    ax.set_ylim(0, 1.18)
    ax.set_ylabel("fraction of matched keypoints")
    ax.set_title("Keypoint error types (Ronchi & Perona)" + (", input vs refined (hatched)" if len(runs) > 1 else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return fig


def ap_impact_figure(diag: dict) -> Figure | None:
    """AP gained by correcting each error type in isolation and all together (None without AP impact)."""
    runs = [(label, rec) for label, rec in _runs(diag) if rec.get("ap_impact")]
    if not runs:
        return None
    names = list(runs[0][1]["ap_impact"])
    fig = _figure(7.0, 0.9 + 0.45 * len(names) * len(runs))
    ax = fig.add_subplot()
    height = 0.8 / len(runs)
    for r, (label, rec) in enumerate(runs):
        y = np.arange(len(names)) + (r - (len(runs) - 1) / 2) * height
        deltas = [rec["ap_impact"][n]["delta_AP"] or 0.0 for n in names]
        colors = [CLASS_COLORS.get(n, "#555555") for n in names]
        ax.barh(y, deltas, height * 0.9, color=colors, hatch=None if r == 0 else "//", edgecolor="white")
        for yi, n, d in zip(y, names, deltas):
            k = rec["ap_impact"][n]["keypoints"]
            ax.text(d, yi, f" {d:+.3f} ({label}, {k} kp)", va="center", fontsize=7)
    ax.set_yticks(np.arange(len(names)), names)
    ax.invert_yaxis()
    base = ", ".join(f"{label} AP {rec['ap']['AP']:.3f}" for label, rec in runs if rec["ap"]["AP"] is not None)
    ax.set_xlabel("AP gain when the keypoints of this class are corrected")
    ax.set_title(f"AP impact of each error type ({base})", fontsize=9)
    ax.margins(x=0.45)
    return fig


def keypoint_heatmap_figure(diag: dict) -> Figure:
    """Per-keypoint class fractions (rows keypoints, columns classes), one panel per results file."""
    classes, runs = diag["classes"], _runs(diag)
    names = diag["schema"]["keypoints"]
    fig = _figure(1.5 + 4.0 * len(runs), max(3.5, 1.2 + 0.3 * len(names)))
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    image = None
    for ax, (label, rec) in zip(axes, runs):
        rows = [rec["per_keypoint"][n] for n in names]
        frac = np.stack([_fractions(c, classes) for c in rows])
        image = ax.imshow(frac, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(frac):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), [f"{n} ({c['total']})" for n, c in zip(names, rows)], fontsize=7)
        ax.set_title(label)
    fig.colorbar(image, ax=list(axes), label="fraction of matches")
    fig.suptitle("Error types per keypoint (number of matched keypoints in brackets)", fontsize=9)
    return fig


def confidence_figure(diag: dict) -> Figure:
    """Class composition per estimator-confidence bin; with refined results, fixed and broken rates per bin."""
    classes, labels = diag["classes"], diag["conf_bin_labels"]
    refined = diag.get("transitions") is not None
    fig = _figure(5.0 + 4.5 * refined, 4.0)
    axes = fig.subplots(1, 1 + refined, squeeze=False)[0]
    counts = [diag["per_confidence"][b] for b in labels]
    _stacked_bars(axes[0], np.arange(len(labels)), np.stack([_fractions(c, classes) for c in counts]), classes, 0.8)
    for x, c in enumerate(counts):
        axes[0].text(x, 1.01, f"n={c['total']}", ha="center", va="bottom", fontsize=7)
    axes[0].set_xticks(range(len(labels)), labels)
    axes[0].set(ylim=(0, 1.1), xlabel="estimator keypoint confidence", ylabel="fraction of matched keypoints",
                title=_runs(diag)[0][0] + " error types by confidence")
    axes[0].legend(fontsize=7, loc="lower right")
    if refined:
        _fixed_broken_bars(axes[1], diag["transitions"]["per_confidence"], labels, _runs(diag)[1][0])
    return fig


def _fixed_broken_bars(ax, per_bin: dict, labels, refined_label: str) -> None:
    x = np.arange(len(labels))
    recs = [per_bin[b] for b in labels]
    n_err = [sum(f["input"] for f in r["fixed"].values()) for r in recs]
    fixed = [r["fixed_total"] / n if n else 0.0 for r, n in zip(recs, n_err)]
    broken = [r["broken"]["rate"] or 0.0 for r in recs]
    ax.bar(x - 0.2, fixed, 0.4, color=CLASS_COLORS["good"], label="fixed: non-good -> good")
    ax.bar(x + 0.2, broken, 0.4, color=CLASS_COLORS["miss"], label="broken: good -> non-good")
    for xi, f, b, n, r in zip(x, fixed, broken, n_err, recs):
        ax.text(xi - 0.2, f, f"{r['fixed_total']}/{n}", ha="center", va="bottom", fontsize=7)
        ax.text(xi + 0.2, b, f"{r['broken']['broken']}/{r['broken']['input']}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, labels)
    ax.set(ylim=(0, 1.1), xlabel="input keypoint confidence", ylabel="rate",
           title=f"what refinement did ({refined_label})")
    ax.legend(fontsize=7, loc="upper left")


def diagnosis_figures(diag: dict) -> dict[str, Figure]:
    """The diagnosis plots by name (keys of :data:`PLOT_FILES`; ``ap_impact`` only when it was measured)."""
    figs = {
        "error_types": error_types_figure(diag),
        "ap_impact": ap_impact_figure(diag),
        "keypoint_errors": keypoint_heatmap_figure(diag),
        "confidence_bins": confidence_figure(diag),
    }
    return {name: fig for name, fig in figs.items() if fig is not None}


def write_diagnosis_plots(diag: dict, out_dir: str | os.PathLike, figures: dict | None = None) -> list[Path]:
    """Write the diagnosis plots as PNGs in ``out_dir`` (file names :data:`PLOT_FILES`); returns the paths.

    ``figures`` may be given pre-built (:func:`diagnosis_figures`) so that a command renders before writing.
    """
    figures = diagnosis_figures(diag) if figures is None else figures
    return [save_figure(fig, Path(out_dir) / PLOT_FILES[name]) for name, fig in figures.items()]


# -- error profiles ------------------------------------------------------------------------------------------------
def profile_figure(profile: ErrorProfile) -> Figure:
    """One panel per (V bin, O bin): per-joint stacked class frequencies, with the keypoint count of each joint.

    Joints with fewer than :data:`SPARSE_COUNT` keypoints in a cell are drawn faint: their frequencies are noisy
    (and :meth:`ErrorProfile.probabilities` backs off to pooled counts there).
    """
    freq, counts = np.nan_to_num(profile.frequencies()), profile.counts.sum(axis=-1)
    k = profile.num_keypoints
    fig = _figure(3.0 * len(O_BINS) + 1.5, 0.9 + len(V_BINS) * (0.8 + 0.17 * k))
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
    return save_figure(profile_figure(profile), path)
