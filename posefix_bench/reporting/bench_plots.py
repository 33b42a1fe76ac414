"""Plots of the bench reports: AP before/after and AP deltas with their seed spread, fixed/broken rates per error type,
speed against gain, and the crop panel of input vs refined skeletons.

They read the aggregated per-ablation records of :func:`posefix_bench.record.metrics.ablation_metrics`
(``{"sources": {name: {"ap_before", "ap_after", "delta", "fixed", "broken", "occluded", ...}}}``, every number over
seeds a *stat* ``{"mean", "min", "max", "n", "per_seed"}``). The error types and their colours are those of the
diagnosis (Ronchi & Perona, ICCV 2017, Sec. 3.1; :mod:`posefix_bench.reporting.diagnosis_plots`); "fixed" means an
input keypoint of an error type ended good after refinement and "broken" a good one ended in an error type, the
transition counts of :func:`posefix_bench.evaluation.diagnosis.transitions`.

The crop panel shows the persons whose mean keypoint similarity (KS, :mod:`posefix_bench.codecs.oks`) against their
own joints changed most under refinement, up and down (picked by the pair's analysis,
:func:`posefix_bench.evaluation.pair.select_crops`), crops them with the top-down crop transform
(:mod:`posefix_bench.structures.transforms`) and draws ground truth, input and refined skeletons with
:mod:`posefix_bench.reporting.draw`.

Matplotlib with the Agg canvas and explicit :class:`~matplotlib.figure.Figure` objects (no pyplot state,
:func:`~posefix_bench.reporting.mpl.figure`); figures are written atomically with
:func:`~posefix_bench.reporting.mpl.save_figure`. Names of untrained ablations carry "UNTRAINED" in every plot.

Shape legend: K keypoints, N detections, M matched keypoints, S seeds, H x W image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from posefix_bench.record.metrics import FIXABLE
from posefix_bench.reporting.context import label
from posefix_bench.reporting.diagnosis_plots import CLASS_COLORS
from posefix_bench.reporting.mpl import figure as _figure
from posefix_bench.reporting.verdicts import family_groups
from posefix_bench.structures.schema import KeypointSchema

__all__ = [
    "CROP_COLORS", "CROP_COLOR_NAMES", "CROP_TILE", "ap_before_after_figure", "ap_delta_figure",
    "fixed_broken_figure", "speed_gain_figure", "learning_curve_figure", "CropItem", "crop_items", "crop_panel",
]  # fmt: skip

# ground truth, input, refined: RGB, distinct from each other and from the sandbox's backgrounds
CROP_COLORS = {"ground truth": (255, 255, 255), "input": (230, 25, 75), "refined": (0, 200, 255)}
CROP_COLOR_NAMES = {"ground truth": "white", "input": "red", "refined": "light blue"}
CROP_TILE = (192, 256)  # (w, h) of one crop
CROP_PADDING = 1.5  # crop box enlargement around the ground-truth box: room for input keypoints that are far off


def _seed_points(ax, x: float, stat: dict, horizontal: bool = False, color: str = "black") -> None:
    vals = [v for v in stat["per_seed"].values() if v is not None]
    offsets = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(1)
    for off, v in zip(offsets, vals):
        if horizontal:
            ax.plot(v, x + off, "o", ms=3.5, color=color, mfc="white", zorder=3)
        else:
            ax.plot(x + off, v, "o", ms=3.5, color=color, mfc="white", zorder=3)


def _whisker(stat: dict) -> np.ndarray:
    """(2, 1) distances from the mean to min and max, as matplotlib's error bars want them."""
    return np.array([[stat["mean"] - stat["min"]], [stat["max"] - stat["mean"]]])


# -- per ablation --------------------------------------------------------------------------------------------------
def _ap_groups(summary: dict) -> list[tuple[str, float, dict]]:
    """(label, AP before, AP-after stat) per source, then per source's occluded subset where it exists."""
    groups = [(name, s["ap_before"], s["ap_after"]) for name, s in summary["sources"].items()]
    for name, s in summary["sources"].items():
        occ = s.get("occluded")
        if occ and occ.get("ap_after"):
            groups.append((f"{name}\n(occluded, {occ['persons']})", occ["ap_before"], occ["ap_after"]))
    return groups


def ap_before_after_figure(summary: dict) -> Figure:
    """AP of the input and of the refined results per source (and occluded subset); refined bars are seed means
    with min..max whiskers and one point per seed."""
    groups = _ap_groups(summary)
    fig = _figure(1.8 + 1.5 * len(groups), 4.0)
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    refined_label = "refined (UNTRAINED)" if summary.get("untrained") else "refined"
    for i, (_, before, after) in enumerate(groups):
        ax.bar(i - 0.2, before if before is not None else 0.0, 0.38, color="#9e9e9e",
               label="input" if i == 0 else None)
        ax.bar(i + 0.2, after["mean"], 0.38, color=CLASS_COLORS["good"], yerr=_whisker(after), capsize=3,
               label=refined_label if i == 0 else None)
        _seed_points(ax, i + 0.2, after)
        if before is not None:
            ax.text(i - 0.2, before, f"{before:.3f}", ha="center", va="bottom", fontsize=7)
        ax.text(i + 0.2, after["max"], f"{after['mean']:.3f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [g[0] for g in groups], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("COCO keypoint AP")
    seeds = max(g[2]["n"] for g in groups)
    ax.set_title(f"{label(summary)}\nAP before/after refinement ({seeds} seed{'s' * (seeds > 1)}; "
                 "whiskers min..max, points per seed)", fontsize=8)
    ax.legend(fontsize=8, loc="upper right")
    return fig


# -- index ---------------------------------------------------------------------------------------------------------
def _delta_panels(summaries: Sequence[dict], sources: Sequence[str]) -> list[tuple[str, list]]:
    """(title, [AP-delta stat or None per ablation]) for every source and every occluded subset that exists."""
    panels = [(f"{name}: all persons", [s["sources"][name]["delta"] for s in summaries]) for name in sources]
    for name in sources:
        occ = [(s["sources"][name].get("occluded") or {}).get("delta") for s in summaries]
        if any(o is not None for o in occ):
            panels.append((f"{name}: lower-body occluded", occ))
    return panels


def ap_delta_figure(summaries: Sequence[dict], sources: Sequence[str], default: str | None = None) -> Figure:
    """One panel per source (and occluded subset): AP after - AP before of every ablation, seed mean with min..max
    whiskers and one point per seed; the default ablation in bold."""
    panels = _delta_panels(summaries, sources)
    n = len(summaries)
    fig = _figure(3.2 * len(panels) + 2.6, 1.2 + 0.32 * n)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    y = np.arange(n)
    for ax, (title, stats) in zip(axes, panels):
        for i, st in enumerate(stats):
            if st is None:
                continue
            color = CLASS_COLORS["good"] if st["mean"] >= 0 else CLASS_COLORS["miss"]
            ax.barh(i, st["mean"], 0.7, color=color, xerr=_whisker(st), capsize=2)
            _seed_points(ax, i, st, horizontal=True)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("AP delta (refined - input)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(x=0.15)
    axes[0].set_yticks(y, [label(s) for s in summaries])
    for tick, s in zip(axes[0].get_yticklabels(), summaries):
        if s["ablation"] == default:
            tick.set_fontweight("bold")
    axes[0].invert_yaxis()
    fig.suptitle("AP change per ablation\n(bars: seed mean, whiskers: min..max, points: seeds; bold: the default)",
                 fontsize=9)
    return fig


def _rate_matrix(summaries: Sequence[dict], source: str) -> np.ndarray:
    """(n_ablations, len(FIXABLE) + 1) mean fixed rates per error type, then the mean broken rate (NaN: none)."""
    rows = []
    for s in summaries:
        rec = s["sources"][source]
        stats = [rec["fixed"][t]["rate"] for t in FIXABLE] + [rec["broken"]["rate"]]
        rows.append([np.nan if st is None else st["mean"] for st in stats])
    return np.asarray(rows, dtype=np.float64)


def fixed_broken_figure(summaries: Sequence[dict], sources: Sequence[str]) -> Figure:
    """Per source, a table-like heat map: rows ablations, columns the share of each input error type that ended
    good (fixed) and the share of good input keypoints that ended in an error (broken); seed means."""
    n = len(summaries)
    cols = [f"fixed\n{t}" for t in FIXABLE] + ["broken\ngood"]
    fig = _figure(2.4 + 3.4 * len(sources), 1.4 + 0.32 * n)
    axes = fig.subplots(1, len(sources), sharey=True, squeeze=False)[0]
    for ax, name in zip(axes, sources):
        m = _rate_matrix(summaries, name)
        fixed = np.ma.masked_invalid(np.where(np.arange(m.shape[1]) < len(FIXABLE), m, np.nan))
        broken = np.ma.masked_invalid(np.where(np.arange(m.shape[1]) == len(FIXABLE), m, np.nan))
        ax.imshow(fixed, cmap="Greens", vmin=0, vmax=1, aspect="auto")
        ax.imshow(broken, cmap="Reds", vmin=0, vmax=1, aspect="auto")
        for (i, j), v in np.ndenumerate(m):
            text = "-" if np.isnan(v) else f"{100 * v:.0f}%"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black")
        ax.set_xticks(range(len(cols)), cols, fontsize=7)
        ax.set_title(name, fontsize=8)
    axes[0].set_yticks(range(n), [label(s) for s in summaries], fontsize=7)
    fig.suptitle("What refinement did per error type (seed means):\nshare of the input keypoints of each type that "
                 "ended good, share of the good ones that ended in an error", fontsize=8)
    return fig


def speed_gain_figure(summaries: Sequence[dict], sources: Sequence[str]) -> Figure | None:
    """Per distinct network: its inference samples/s (best measured batch and precision) against the AP delta of
    each ablation using it, averaged over the sources (points; the best one named); None without FPS records."""
    networks: dict[str, list] = {}
    for s in summaries:
        best = s.get("fps_best")
        if best is None:
            continue
        name = f"{best['backbone']} {best['head']} {best['input_size'][1]}x{best['input_size'][0]}"
        gain = float(np.mean([s["sources"][n]["delta"]["mean"] for n in sources]))
        networks.setdefault(name, []).append((best["samples_per_s"], gain, label(s)))
    if not networks:
        return None
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot()
    for name, points in networks.items():
        sps = points[0][0]
        gains = [p[1] for p in points]
        ax.plot([sps] * len(gains), gains, "o", color=CLASS_COLORS["swap"], mfc="white")
        ax.vlines(sps, min(gains), max(gains), color=CLASS_COLORS["swap"], lw=1)
        top = max(points, key=lambda p: p[1])
        ax.annotate(f"{name} ({len(points)} ablation{'s' * (len(points) > 1)})\nbest: {top[2]}", (sps, top[1]),
                    fontsize=6, xytext=(4, 4), textcoords="offset points")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("refiner inference samples/s (best batch and precision measured)")
    ax.set_ylabel(f"AP delta, mean over {len(sources)} source(s)")
    ax.set_title("Speed vs gain: one column of points per network, one point per ablation", fontsize=9)
    ax.margins(x=0.3, y=0.15)
    return fig


def gain_input_figure(points: Sequence[tuple[str, float, float]], refiner: str,
                      families: Mapping[str, str] | None = None) -> Figure | None:
    """The refiner's AP delta against each source's input AP (a point per source, named); the sources of one family
    (``families``: source -> family label, sources that differ only in strength) joined by a line, weakest first,
    with the family in the legend. None with < 2 points."""
    if len(points) < 2:
        return None
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    colors = [CLASS_COLORS[c] for c in ("swap", "miss", "inversion", "jitter", "absent")]
    lines = 0
    for fam, pts in family_groups(points, families).items():
        if len(pts) > 1:
            ax.plot([p[1] for p in pts], [p[2] for p in pts], "o-", color=colors[lines % len(colors)], ms=5,
                    lw=1.2, label=fam)
            lines += 1
        else:
            ax.plot([pts[0][1]], [pts[0][2]], "o", color=CLASS_COLORS["good"])
        for name, ap, delta in pts:
            ax.annotate(name, (ap, delta), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("input AP (the source's own)")
    ax.set_ylabel("AP delta after refinement")
    ax.set_title(f"Gain vs input strength: {refiner}", fontsize=9)
    ax.margins(x=0.25, y=0.2)
    if lines:
        ax.legend(fontsize=7, loc="best")
    return fig


def learning_curve_figure(summaries: Sequence[dict], sources: Sequence[str]) -> Figure | None:
    """One panel per source: refined AP at each checkpoint of every ablation that has a learning curve (seed mean;
    points per seed), the input AP as a dashed line; None without learning curves."""
    sums = [s for s in summaries if s.get("learning_curve")]
    if not sums or not sources:
        return None
    fig = _figure(max(3.4 * len(sources) + 1.0, 7.0), 3.6)  # one panel: still room for the title
    axes = fig.subplots(1, len(sources), sharey=True, squeeze=False)[0]
    colors = [CLASS_COLORS[c] for c in ("swap", "miss", "good", "inversion", "jitter", "absent")]
    for ax, name in zip(axes, sources):
        for i, s in enumerate(sums):
            pts = [p for p in s["learning_curve"] if name in p["ap"]]
            color = colors[i % len(colors)]
            ax.plot([p["iterations"] for p in pts], [p["ap"][name] for p in pts], "o-", color=color, ms=3,
                    label=label(s))
            for p in pts:
                seeds = [v[name] for v in p["per_seed"].values() if name in v]
                if len(seeds) > 1:
                    ax.plot([p["iterations"]] * len(seeds), seeds, ".", color=color, ms=3)
        before = sums[0]["sources"][name]["ap_before"]
        if before is not None:
            ax.axhline(before, color="black", lw=0.8, ls="--", label="input")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("training iterations", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("COCO keypoint AP after refinement")
    axes[-1].legend(fontsize=6, loc="best")
    fig.suptitle("Learning curves: refined AP at the checkpoints of each training run (seed mean; dots: seeds)",
                 fontsize=9)
    return fig


# -- crop panel ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CropItem:
    """One person of the crop panel: its crop and three skeletons in crop coordinates.

    Attributes:
        image: (H, W, 3) uint8 RGB crop.
        poses: (3, K, 3) ground truth (x, y, v), input and refined (x, y, 1 where predicted, 0 where absent).
        hollow: (3, K) bool, ground-truth joints labelled occluded (v = 1).
        image_id, ann_id, result_index: where it comes from.
        ks_before, ks_after: mean KS over the person's labelled joints, input and refined.
        kind: "fix" or "break".
    """

    image: np.ndarray
    poses: np.ndarray
    hollow: np.ndarray
    image_id: int
    ann_id: int
    result_index: int
    ks_before: float
    ks_after: float
    kind: str

    @property
    def caption(self) -> str:
        return f"{self.kind} KS {self.ks_before:.2f}->{self.ks_after:.2f}"


def crop_items(crops: Sequence[dict], tile: tuple[int, int] = CROP_TILE) -> list[CropItem]:
    """Crops (``tile`` = (w, h)) around the ground-truth boxes of the crop panel's persons (the records of
    :func:`posefix_bench.evaluation.pair.crop_record`: image file, box, poses in image pixels), with the three
    skeletons mapped into crop coordinates; reads the images."""
    from posefix_bench.structures.coco import read_image_file
    from posefix_bench.structures.transforms import affine_matrix, apply_affine, box_to_center_scale, warp_image

    items = []
    for c in crops:
        center, scale = box_to_center_scale(np.asarray(c["bbox"]), tile[0] / tile[1], padding=CROP_PADDING)
        m = affine_matrix(center, scale, 0.0, tile)
        crop = warp_image(read_image_file(c["image"]), m, tile)
        poses = np.asarray(c["poses"], dtype=np.float64)
        k = poses.shape[1]
        shown = poses[..., 2] > 0
        poses[..., :2] = np.where(shown[..., None], apply_affine(poses[..., :2], np.broadcast_to(m, (3, 2, 3))), 0.0)
        hollow = np.zeros((3, k), bool)
        hollow[0] = poses[0, :, 2] == 1
        items.append(CropItem(crop, poses, hollow, c["image_id"], c["ann_id"], c["result_index"], c["ks_before"],
                              c["ks_after"], c["kind"]))
    return items


def crop_panel(items: Sequence[CropItem], schema: KeypointSchema, cols: int = 4) -> np.ndarray:
    """(H, W, 3) uint8 contact sheet of the crops, ground truth / input / refined in :data:`CROP_COLORS`."""
    from posefix_bench.reporting.draw import contact_sheet

    colors = list(CROP_COLORS.values())
    tile = (items[0].image.shape[1], items[0].image.shape[0])
    return contact_sheet([it.image for it in items], [it.poses for it in items], schema, cols=cols, tile=tile,
                         labels=[it.caption for it in items], colors=[colors] * len(items),
                         hollow=[it.hollow for it in items], thickness=2, radius=3)
