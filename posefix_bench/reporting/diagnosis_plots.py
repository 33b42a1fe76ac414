"""Plots of the error diagnosis, as SVG files written directly as text (:mod:`posefix_bench.reporting.svg`).

The figures follow Ronchi & Perona (ICCV 2017): error-type composition (their Fig. 5), AP improvement when each
error type is corrected (Fig. 6), plus the per-keypoint composition and the estimator-confidence view of the PyTorch
PoseFix re-implementation's finding that refinement helps confident keypoints only. They read the plain record of
:func:`posefix_bench.evaluation.diagnosis.diagnose`; keypoint names and groups come from the record's schema.
Results marked ``"untrained": true`` are labelled "(untrained)" in every legend and title.

No matplotlib here (issue 18: its import and layout cost more than the whole diagnosis): each ``*_figure`` function
returns a :class:`~posefix_bench.reporting.svg.Canvas`, :func:`write_diagnosis_plots` writes them atomically. The
measured error profile's plot is matplotlib, in :mod:`posefix_bench.reporting.profile_plots`.
"""

from __future__ import annotations

import os
from pathlib import Path

from posefix_bench.reporting.svg import Canvas, Panel, colormap, legend_size, nice_ticks, text_width, tick_labels

__all__ = [
    "CLASS_COLORS", "PLOT_FILES", "error_types_figure", "ap_impact_figure", "keypoint_heatmap_figure",
    "confidence_figure", "diagnosis_figures", "write_diagnosis_plots",
]  # fmt: skip

CLASS_COLORS = {
    "good": "#4daf4a", "jitter": "#ffbf00", "inversion": "#984ea3", "swap": "#377eb8", "miss": "#e41a1c",
    "absent": "#9e9e9e",
}  # fmt: skip
PLOT_FILES = {
    "error_types": "error_types.svg", "ap_impact": "ap_impact.svg", "keypoint_errors": "keypoint_errors.svg",
    "confidence_bins": "confidence_bins.svg",
}  # fmt: skip
OTHER_COLOR = "#555555"  # AP-impact rows that are not a class ("all")
RUN_SWATCH = "#555555"  # legend swatch of "input" (plain) and "refined" (hatched)
# font sizes (px)
TITLE, LABEL, TICK, NOTE = 15, 13, 12, 10


def _runs(diag: dict) -> list[tuple[str, dict]]:
    """(label, record) of the input results and, when present, the refined results."""
    runs = [("input", diag)]
    if diag.get("refined") is not None:
        runs.append(("refined", diag["refined"]))
    return [(f"{name} (untrained)" if rec.get("untrained") else name, rec) for name, rec in runs]


def _fractions(counts: dict, classes) -> list[float]:
    total = counts["total"]
    return [counts[c] / total if total else 0.0 for c in classes]


def _stacked_bar(panel: Panel, x: float, fractions: list[float], classes, width: float, hatch: bool) -> None:
    bottom = 0.0
    for frac, name in zip(fractions, classes):
        panel.bar(x, frac, width, bottom, fill=CLASS_COLORS[name], hatch=hatch)
        bottom += frac


def _fraction_axis(panel: Panel, ylabel: str) -> float:
    """Frame, y ticks 0..1 and the y label of a fraction panel; returns the tick labels' width."""
    panel.frame()
    w = panel.yticks(tick_labels(nice_ticks(0.0, 1.0, 5)), size=TICK)
    panel.ylabel(ylabel, w + 4, size=LABEL)
    return w


# -- diagnosis figures ---------------------------------------------------------------------------------------------
def error_types_figure(diag: dict) -> Canvas:
    """Stacked error-type fractions, all keypoints and per body-part group, input (and refined) side by side."""
    classes, runs = diag["classes"], _runs(diag)
    scopes = ["all"] + list(diag["schema"]["groups"])
    legend = [(c, CLASS_COLORS[c]) for c in classes]
    run_legend = [(label, RUN_SWATCH, r > 0) for r, (label, _) in enumerate(runs)] if len(runs) > 1 else []
    lw = max(legend_size(entries, NOTE + 1)[0] for entries in (legend, run_legend) if entries)
    pw, left, top = 125 * len(scopes) * len(runs), 80, 40
    title = "Keypoint error types (Ronchi & Perona)" + (", input vs refined (hatched)" if len(runs) > 1 else "")
    pw = max(pw, text_width(title, TITLE) - lw)
    canvas = Canvas(left + pw + lw + 20, 420, title=title)
    panel = canvas.panel(left, top, pw, 420 - top - 40, (-0.5, len(scopes) - 0.5), (0.0, 1.18))
    width = 0.8 / len(runs)
    for r, (label, rec) in enumerate(runs):
        counts = [rec["counts"]] + [rec["per_group"][g] for g in scopes[1:]]
        for i, c in enumerate(counts):
            x = i + (r - (len(runs) - 1) / 2) * width
            _stacked_bar(panel, x, _fractions(c, classes), classes, width * 0.95, hatch=r > 0)
            panel.text(x, 1.01, f"{label}\nn={c['total']}", size=NOTE - 1, anchor="middle", valign="bottom")
    _fraction_axis(panel, "fraction of matched keypoints")
    panel.xticks([(i, s) for i, s in enumerate(scopes)], size=TICK)
    panel.title(title, size=TITLE)
    _, lh = canvas.legend(left + pw + 8, top, legend, size=NOTE + 1)
    if run_legend:
        canvas.legend(left + pw + 8, top + lh + 8, run_legend, size=NOTE + 1)
    return canvas


def ap_impact_figure(diag: dict) -> Canvas | None:
    """AP gained by correcting each error type in isolation and all together (None without AP impact)."""
    runs = [(label, rec) for label, rec in _runs(diag) if rec.get("ap_impact")]
    if not runs:
        return None
    names = list(runs[0][1]["ap_impact"])
    base = ", ".join(f"{label} AP {rec['ap']['AP']:.3f}" for label, rec in runs if rec["ap"]["AP"] is not None)
    title = f"AP impact of each error type ({base})"
    deltas = [[rec["ap_impact"][n]["delta_AP"] or 0.0 for n in names] for _, rec in runs]
    lo, hi = min(0.0, *(min(d) for d in deltas)), max(0.0, *(max(d) for d in deltas))
    span = (hi - lo) or 0.01
    xlim = (lo - 0.45 * span if lo < 0 else 0.0, hi + 0.45 * span)  # room for the value labels
    left = 20 + max(text_width(n, TICK) for n in names)
    ph = 45 * len(names) * len(runs)
    pw = max(560.0, text_width(title, LABEL) - left + 40)
    canvas = Canvas(left + pw + 20, ph + 90, title=title)
    panel = canvas.panel(left, 35, pw, ph, xlim, (-0.5, len(names) - 0.5), flip_y=True)
    height = 0.8 / len(runs)
    for r, (label, rec) in enumerate(runs):
        for i, (n, d) in enumerate(zip(names, deltas[r])):
            y = i + (r - (len(runs) - 1) / 2) * height
            panel.barh(y, d, height * 0.9, fill=CLASS_COLORS.get(n, OTHER_COLOR), hatch=r > 0)
            note = f"{d:+.3f} ({label}, {rec['ap_impact'][n]['keypoints']} kp)"
            canvas.text(panel.px(d) + (4 if d >= 0 else -4), panel.py(y), note, size=NOTE, valign="middle",
                        anchor="start" if d >= 0 else "end", cls="value")
    panel.frame()
    if lo < 0:
        canvas.line(panel.px(0), panel.y, panel.px(0), panel.y + panel.h, stroke="#444444", width=0.8)
    panel.yticks([(i, n) for i, n in enumerate(names)], size=TICK)
    h = panel.xticks(tick_labels(nice_ticks(*xlim)), size=TICK)
    panel.xlabel("AP gain when the keypoints of this class are corrected", h + 4, size=LABEL)
    panel.title(title, size=LABEL)
    return canvas


def keypoint_heatmap_figure(diag: dict) -> Canvas:
    """Per-keypoint class fractions (rows keypoints, columns classes), one panel per results file, cell values
    written in the cells, a colour bar of the viridis-like map."""
    classes, runs = diag["classes"], _runs(diag)
    names = diag["schema"]["keypoints"]
    cell_w, cell_h = 48, max(18, min(50, 440 / max(1, len(names))))
    pw, ph = cell_w * len(classes), cell_h * len(names)
    labels = [[f"{n} ({rec['per_keypoint'][n]['total']})" for n in names] for _, rec in runs]
    lefts = [12 + max(text_width(s, NOTE) for s in lab) for lab in labels]
    below = 12 + max(text_width(c, TICK) for c in classes) * 0.71 + TICK
    top = 62
    title = "Error types per keypoint (number of matched keypoints in brackets)"
    width = sum(left + pw + 16 for left in lefts) + 110
    canvas = Canvas(max(width, text_width(title, LABEL) + 20), top + ph + below + 10, title=title)
    x = 0.0
    for (label, rec), left, lab in zip(runs, lefts, labels):
        x += left
        panel = canvas.panel(x, top, pw, ph, (-0.5, len(classes) - 0.5), (-0.5, len(names) - 0.5), flip_y=True)
        for i, n in enumerate(names):
            for j, v in enumerate(_fractions(rec["per_keypoint"][n], classes)):
                canvas.rect(panel.px(j - 0.5), panel.py(i - 0.5), cell_w, cell_h, colormap(v), cls="cell")
                panel.text(j, i, f"{v:.2f}", size=NOTE - 1, anchor="middle", valign="middle",
                           color="#ffffff" if v < 0.6 else "#000000", cls="value")
        panel.frame()
        panel.yticks(list(enumerate(lab)), size=NOTE)
        panel.xticks(list(enumerate(classes)), size=TICK, rotate=-45)
        panel.title(label, size=TITLE)
        x += pw + 16
    canvas.colorbar(x + 8, top, 18, ph, "fraction of matches", size=NOTE + 1)
    canvas.text(canvas.width / 2, 20, title, size=LABEL, anchor="middle", valign="middle", cls="suptitle")
    return canvas


def confidence_figure(diag: dict) -> Canvas:
    """Class composition per estimator-confidence bin; with refined results, fixed and broken rates per bin."""
    classes, labels, runs = diag["classes"], diag["conf_bin_labels"], _runs(diag)
    refined = diag.get("transitions") is not None
    legend = [(c, CLASS_COLORS[c]) for c in classes]
    fb_legend = [("fixed: non-good -> good", CLASS_COLORS["good"]), ("broken: good -> non-good", CLASS_COLORS["miss"])]
    pw, ph, left, top = max(300, 80 * len(labels)), 300, 80, 40
    lw = legend_size(legend, NOTE + 1)[0]
    width = left + pw + lw + 20 + (left + pw + legend_size(fb_legend, NOTE + 1)[0] + 20 if refined else 0)
    title = "Error types by estimator confidence" + (", what refinement did" if refined else "")
    canvas = Canvas(width, top + ph + 60, title=title)
    xlim = (-0.5, len(labels) - 0.5)
    panel = canvas.panel(left, top, pw, ph, xlim, (0.0, 1.1))
    counts = [diag["per_confidence"][b] for b in labels]
    for x, c in enumerate(counts):
        _stacked_bar(panel, x, _fractions(c, classes), classes, 0.8, hatch=False)
        panel.text(x, 1.01, f"n={c['total']}", size=NOTE - 1, anchor="middle", valign="bottom")
    _fraction_axis(panel, "fraction of matched keypoints")
    h = panel.xticks(list(enumerate(labels)), size=TICK)
    panel.xlabel("estimator keypoint confidence", h + 2, size=LABEL)
    panel.title(f"{runs[0][0]} error types by confidence", size=TITLE)
    canvas.legend(left + pw + 8, top, legend, size=NOTE + 1)
    if refined:
        second = canvas.panel(2 * left + pw + lw + 20, top, pw, ph, xlim, (0.0, 1.1))
        _fixed_broken_bars(second, diag["transitions"]["per_confidence"], labels, runs[1][0])
        canvas.legend(second.x + pw + 8, top, fb_legend, size=NOTE + 1)
    return canvas


def _fixed_broken_bars(panel: Panel, per_bin: dict, labels, refined_label: str) -> None:
    for x, b in enumerate(labels):
        r = per_bin[b]
        n_err = sum(f["input"] for f in r["fixed"].values())
        fixed = r["fixed_total"] / n_err if n_err else 0.0
        broken = r["broken"]["rate"] or 0.0
        panel.bar(x - 0.2, fixed, 0.4, fill=CLASS_COLORS["good"], stroke=None, cls="bar fixed")
        panel.bar(x + 0.2, broken, 0.4, fill=CLASS_COLORS["miss"], stroke=None, cls="bar broken")
        panel.text(x - 0.2, fixed, f"{r['fixed_total']}/{n_err}", size=NOTE - 1, anchor="middle", valign="bottom")
        panel.text(x + 0.2, broken, f"{r['broken']['broken']}/{r['broken']['input']}", size=NOTE - 1,
                   anchor="middle", valign="bottom")
    _fraction_axis(panel, "rate")
    h = panel.xticks(list(enumerate(labels)), size=TICK)
    panel.xlabel("input keypoint confidence", h + 2, size=LABEL)
    panel.title(f"what refinement did ({refined_label})", size=TITLE)


def diagnosis_figures(diag: dict) -> dict[str, Canvas]:
    """The diagnosis plots by name (keys of :data:`PLOT_FILES`; ``ap_impact`` only when it was measured)."""
    figs = {
        "error_types": error_types_figure(diag),
        "ap_impact": ap_impact_figure(diag),
        "keypoint_errors": keypoint_heatmap_figure(diag),
        "confidence_bins": confidence_figure(diag),
    }
    return {name: fig for name, fig in figs.items() if fig is not None}


def write_diagnosis_plots(diag: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write the diagnosis plots as SVG files in ``out_dir`` (file names :data:`PLOT_FILES`), each atomically;
    returns the paths."""
    return [fig.write(Path(out_dir) / PLOT_FILES[name]) for name, fig in diagnosis_figures(diag).items()]
