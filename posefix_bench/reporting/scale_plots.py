"""Plots and the report stage of the scale measurement (issue 20, :mod:`posefix_bench.bench.scale`).

:func:`scale_figure` draws ``scale.json``: milliseconds per person of every stage against the number of persons
(flat lines are linear cost; the acceptance is a ratio of at most 1.3 between the largest and the smallest size)
and each stage process's peak resident memory. :func:`stage_reports` is the harness's ``reports`` stage: the
diagnosis plots of the refined run (SVG), as the bench writes them for every run, timed like every other stage;
matplotlib is imported only by the scale plot itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from posefix_bench.reporting.diagnosis_plots import write_diagnosis_plots
from posefix_bench.structures.io import read_json

__all__ = ["REPORTS_STAGE", "scale_figure", "save_scale_plot", "stage_reports"]

REPORTS_STAGE = {"reports": "posefix_bench.reporting.scale_plots:stage_reports"}


def stage_reports(ctx: dict) -> dict:
    """The ``reports`` stage: the diagnosis plots of ``ctx["diagnosis"]`` into ``ctx["plots"]``."""
    diag = read_json(ctx["diagnosis"], "diagnosis record")
    paths = write_diagnosis_plots(diag, ctx["plots"])
    return {"plots": [p.name for p in paths]}


def scale_figure(record: dict):
    """Two panels over the persons of each size (log axis): CPU (and wall) ms per person per stage, peak RSS."""
    from posefix_bench.reporting.mpl import figure

    sizes = record["sizes"]
    persons = [s["persons"] for s in sizes]
    stages = list(sizes[-1]["stages"])
    fig = figure(11.0, 4.2)
    ax_t, ax_m = fig.subplots(1, 2)
    def series(stage: str, key: str) -> list[float]:
        return [s["stages"][stage].get(key, float("nan")) if stage in s["stages"] else float("nan") for s in sizes]

    for stage in stages:
        line, = ax_t.plot(persons, series(stage, "cpu_ms_per_person"), marker="o", label=stage)
        ax_t.plot(persons, series(stage, "ms_per_person"), linestyle=":", color=line.get_color(), alpha=0.6)
        ax_m.plot(persons, series(stage, "peak_rss_mb"), marker="o", label=stage)
    base = [min(st["rss_start_mb"] for st in s["stages"].values()) for s in sizes]
    ax_m.plot(persons, base, color="0.5", linestyle="--", label="after `import torch`")
    ax_m.legend(fontsize=8)
    m = record.get("machine", {})
    machine = (f"{m.get('cpu', '?')} ({m.get('cpu_capability', '?')}), {m.get('threads_per_stage', '?')} thread(s) "
               f"per stage, load {m.get('load_average_1min_before', float('nan')):.1f}")
    ax_t.set(xscale="log", yscale="log", xlabel="persons", ylabel="ms per person (CPU; dotted: wall)",
             title="Stage cost per person (flat = linear)")
    ax_m.set(xscale="log", xlabel="persons", ylabel="peak RSS of the stage process (MB)", title="Peak memory")
    for ax in (ax_t, ax_m):
        ax.set_xticks(persons, [f"{p:,}" for p in persons])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.suptitle(f"Bench stages from {persons[0]:,} to {persons[-1]:,} persons; {machine}", fontsize=9)
    return fig


def save_scale_plot(record: dict, path: str | os.PathLike) -> Path:
    """Draw :func:`scale_figure` and write it as a PNG atomically."""
    from posefix_bench.reporting.mpl import save_figure

    return save_figure(scale_figure(record), Path(path))
