"""The diagnosis plots as SVG: parsed back with xml.etree and checked against the diagnosis record they draw."""

import xml.etree.ElementTree as ET

import pytest

from posefix_bench.evaluation.diagnosis import diagnose
from posefix_bench.reporting.diagnosis_plots import (
    CLASS_COLORS, PLOT_FILES, ap_impact_figure, confidence_figure, diagnosis_figures, error_types_figure,
    keypoint_heatmap_figure, write_diagnosis_plots,
)  # fmt: skip
from posefix_bench.reporting.svg import colormap
from posefix_bench.structures.coco import CocoDataset

from evaluation.diagnosis_helpers import custom_case
from helpers import noisy_results

NS = "{http://www.w3.org/2000/svg}"


def _root(fig) -> ET.Element:
    return ET.fromstring(fig.svg().encode("utf-8"))


def _texts(root, cls: str | None = None) -> list[str]:
    """The text of every <text> element (lines of a multi-line text joined by newlines), optionally of one class."""
    out = []
    for el in root.iter(f"{NS}text"):
        if cls is None or el.get("class") == cls:
            spans = el.findall(f"{NS}tspan")
            out.append("\n".join(s.text or "" for s in spans) if spans else (el.text or ""))
    return out


def _rects(root, cls: str) -> list[ET.Element]:
    return [el for el in root.iter(f"{NS}rect") if cls in (el.get("class") or "").split()]


def _proportional(sizes: list[float], values: list[float]) -> bool:
    """sizes == k * values for one k > 0 (to the 0.01 px the SVG is written with)."""
    if max(values) == 0:
        return max(sizes) == 0
    k = max(sizes) / max(values)
    return len(sizes) == len(values) and k > 0 and all(abs(s - k * v) <= 0.02 for s, v in zip(sizes, values))


@pytest.fixture(scope="module")
def refined_diag(val_gt):
    res = noisy_results(val_gt, seed=21, noise=0.1)
    refined = [dict(r, untrained=True) for r in noisy_results(val_gt, seed=21, noise=0.05)]
    return diagnose(val_gt, res, refined=refined)


@pytest.fixture(scope="module")
def custom_diag(tmp_path_factory):
    gt_path, results, _ = custom_case(tmp_path_factory.mktemp("custom"))
    return diagnose(CocoDataset(gt_path), results, ap_impact=False)


def test_all_diagnosis_plots_are_written_as_valid_deterministic_svg(refined_diag, tmp_path):
    paths = write_diagnosis_plots(refined_diag, tmp_path)
    assert sorted(p.name for p in paths) == sorted(PLOT_FILES.values())
    again = diagnosis_figures(refined_diag)
    for p in paths:
        root = ET.parse(p).getroot()
        assert root.tag == f"{NS}svg" and root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
        assert int(root.get("width")) > 300 and int(root.get("height")) > 200
        name = next(k for k, v in PLOT_FILES.items() if v == p.name)
        assert p.read_bytes() == again[name].svg().encode("utf-8")  # same input, same bytes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_error_types_bars_are_the_class_fractions_input_plain_refined_hatched(refined_diag):
    root = _root(error_types_figure(refined_diag))
    classes, groups = refined_diag["classes"], list(refined_diag["schema"]["groups"])
    bars = _rects(root, "bar")
    assert len(bars) == 2 * (1 + len(groups)) * len(classes)  # (input, refined) x (all + groups) x classes
    fractions = []
    for rec in (refined_diag, refined_diag["refined"]):
        for counts in [rec["counts"]] + [rec["per_group"][g] for g in groups]:
            fractions += [counts[c] / counts["total"] for c in classes]
    assert _proportional([float(b.get("height")) for b in bars], fractions)
    assert [b.get("fill") for b in bars[:len(classes)]] == [CLASS_COLORS[c] for c in classes]
    hatched = _rects(root, "hatch")
    assert len(hatched) == (1 + len(groups)) * len(classes) + 1  # the refined bars and the legend's swatch
    assert root.find(f"{NS}defs/{NS}pattern").get("id") == "hatch"
    text = _texts(root)
    assert "Keypoint error types (Ronchi & Perona), input vs refined (hatched)" in text
    assert "fraction of matched keypoints" in text
    assert _texts(root, "xtick") == ["all"] + groups
    assert _texts(root, "legend-label") == classes + ["input", "refined (untrained)"]
    assert f"refined (untrained)\nn={refined_diag['refined']['counts']['total']}" in text


def test_ap_impact_bars_are_the_ap_deltas(refined_diag):
    root = _root(ap_impact_figure(refined_diag))
    names = list(refined_diag["ap_impact"])
    bars = _rects(root, "bar")
    deltas = [rec["ap_impact"][n]["delta_AP"] for rec in (refined_diag, refined_diag["refined"]) for n in names]
    assert len(bars) == 2 * len(names) and min(deltas) >= 0
    assert _proportional([float(b.get("width")) for b in bars], deltas)
    assert [b.get("fill") for b in bars[:len(names)]] == [CLASS_COLORS.get(n, "#555555") for n in names]
    assert _texts(root, "ytick") == names
    ap = refined_diag["ap"]["AP"]
    assert any(t.startswith(f"AP impact of each error type (input AP {ap:.3f}, refined (untrained) AP")
               for t in _texts(root, "title"))
    assert "AP gain when the keypoints of this class are corrected" in _texts(root, "xlabel")
    jitter = refined_diag["ap_impact"]["jitter"]
    assert f"{jitter['delta_AP']:+.3f} (input, {jitter['keypoints']} kp)" in _texts(root, "value")


def test_keypoint_heatmap_cells_carry_the_fractions_and_their_colours(refined_diag):
    root = _root(keypoint_heatmap_figure(refined_diag))
    classes, names = refined_diag["classes"], refined_diag["schema"]["keypoints"]
    cells, values = _rects(root, "cell"), _texts(root, "value")
    assert len(cells) == len(values) == 2 * len(names) * len(classes)
    fractions = [c[k] / c["total"] for rec in (refined_diag, refined_diag["refined"])
                 for c in (rec["per_keypoint"][n] for n in names) for k in classes]
    assert values == [f"{v:.2f}" for v in fractions]
    assert [c.get("fill") for c in cells] == [colormap(v) for v in fractions]
    assert _texts(root, "title") == ["input", "refined (untrained)"]
    assert _texts(root, "xtick") == classes * 2
    assert _texts(root, "ytick")[0] == f"{names[0]} ({refined_diag['per_keypoint'][names[0]]['total']})"
    assert "fraction of matches" in _texts(root) and len(_rects(root, "colorbar")) == 1
    assert root.find(f"{NS}defs/{NS}linearGradient") is not None


def test_confidence_plot_shows_composition_and_fixed_broken_per_bin(refined_diag):
    root = _root(confidence_figure(refined_diag))
    labels, classes = refined_diag["conf_bin_labels"], refined_diag["classes"]
    assert len(_rects(root, "bar")) == len(labels) * len(classes) + 2 * len(labels)
    fixed, broken = _rects(root, "fixed"), _rects(root, "broken")
    assert len(fixed) == len(broken) == len(labels)
    per_bin = refined_diag["transitions"]["per_confidence"]
    errors = [sum(f["input"] for f in per_bin[b]["fixed"].values()) for b in labels]
    fixed_rates = [per_bin[b]["fixed_total"] / n if n else 0.0 for b, n in zip(labels, errors)]
    broken_rates = [per_bin[b]["broken"]["rate"] or 0.0 for b in labels]
    assert _proportional([float(b.get("height")) for b in fixed + broken], fixed_rates + broken_rates)
    assert {b.get("fill") for b in fixed} == {CLASS_COLORS["good"]} and {b.get("fill") for b in broken} == {
        CLASS_COLORS["miss"]}
    text = _texts(root)
    last = per_bin[labels[-1]]
    assert "what refinement did (refined (untrained))" in text and "input error types by confidence" in text
    assert f"{last['broken']['broken']}/{last['broken']['input']}" in text
    assert f"n={refined_diag['per_confidence'][labels[0]]['total']}" in text
    assert _texts(root, "xtick") == labels * 2
    assert {"estimator keypoint confidence", "input keypoint confidence"} <= set(_texts(root, "xlabel"))
    assert "fixed: non-good -> good" in _texts(root, "legend-label")


def test_plots_follow_a_custom_schema_without_refined_or_ap_impact(custom_diag, tmp_path):
    paths = write_diagnosis_plots(custom_diag, tmp_path / "plots")
    assert sorted(p.name for p in paths) == sorted(v for k, v in PLOT_FILES.items() if k != "ap_impact")
    heat = _root(keypoint_heatmap_figure(custom_diag))
    assert _texts(heat, "ytick") == ["head (2)", "left_hand (2)", "right_hand (2)", "tail (1)"]
    assert _texts(heat, "title") == ["input"]
    types = _root(error_types_figure(custom_diag))
    assert _texts(types, "xtick") == ["all", "front", "hands", "back"]
    assert not _rects(types, "hatch") and "(untrained)" not in "".join(_texts(types))
    conf = _root(confidence_figure(custom_diag))
    assert not _rects(conf, "fixed") and "what refinement did" not in "".join(_texts(conf))


def test_untrained_input_is_labelled(custom_diag):
    diag = dict(custom_diag, untrained=True)
    for fig in (error_types_figure(diag), keypoint_heatmap_figure(diag), confidence_figure(diag)):
        assert any("input (untrained)" in t for t in _texts(_root(fig)))
