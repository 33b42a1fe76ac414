"""Matplotlib figures of the PNG report plots: an Agg-canvas :class:`~matplotlib.figure.Figure` (no pyplot state,
constrained layout) and its atomic PNG writing.

Used by the bench's plots (:mod:`~posefix_bench.reporting.bench_plots`), the measured error profile
(:mod:`~posefix_bench.reporting.profile_plots`) and the scale plot (:mod:`~posefix_bench.reporting.scale_plots`).
The diagnosis plots are SVG written as text (:mod:`~posefix_bench.reporting.svg`) and never import this module:
importing matplotlib alone costs more than a whole ``posefix-bench diagnose`` may (issue 18).
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from posefix_bench.structures.io import atomic_write_with

__all__ = ["figure", "save_figure"]


def figure(width: float, height: float) -> Figure:
    """A ``width`` x ``height`` inch figure on an Agg canvas, constrained layout."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Render ``fig`` to a PNG file atomically."""
    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
