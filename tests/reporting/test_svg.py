"""The minimal SVG canvas of the diagnosis plots: escaping, the colour map, ticks, geometry, determinism."""

import math
import xml.etree.ElementTree as ET

from posefix_bench.reporting.svg import VIRIDIS, Canvas, colormap, escape, nice_ticks, tick_labels

NS = "{http://www.w3.org/2000/svg}"


def test_text_is_escaped_and_characters_xml_forbids_are_dropped():
    c = Canvas(200, 100, title='a <"title"> & more')
    c.text(10, 20, 'x < y & "z" > w\x01')
    c.text(10, 50, "two\nlines", valign="middle")
    root = ET.fromstring(c.svg())
    assert root.find(f"{NS}title").text == 'a <"title"> & more'
    texts = list(root.iter(f"{NS}text"))
    assert texts[0].text == 'x < y & "z" > w'
    assert [t.text for t in texts[1].findall(f"{NS}tspan")] == ["two", "lines"]
    assert escape("<&>\"") == "&lt;&amp;&gt;&quot;"


def test_colormap_interpolates_the_viridis_anchors():
    assert colormap(0.0) == VIRIDIS[0] and colormap(1.0) == VIRIDIS[-1]
    assert colormap(-3) == VIRIDIS[0] and colormap(7) == VIRIDIS[-1] and colormap(math.nan) == VIRIDIS[0]
    assert colormap(1 / 9) == VIRIDIS[1]
    a, b, mid = (int(VIRIDIS[0][1:3], 16), int(VIRIDIS[1][1:3], 16), int(colormap(1 / 18)[1:3], 16))
    assert abs(mid - (a + b) / 2) <= 0.5
    greens = [int(colormap(v / 20)[3:5], 16) for v in range(21)]
    assert greens == sorted(greens)  # viridis brightens monotonically in green


def test_nice_ticks_and_their_labels():
    assert nice_ticks(0, 1.1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert [s for _, s in tick_labels(nice_ticks(0, 1, 5))] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert nice_ticks(0, 0.07) == [0, 0.02, 0.04, 0.06]
    assert [s for _, s in tick_labels(nice_ticks(-0.1, 0.45))] == ["-0.1", "0.0", "0.1", "0.2", "0.3", "0.4"]
    assert nice_ticks(0, 0) == [0]


def test_panel_maps_data_to_pixels_and_bars_and_output_are_deterministic():
    def draw() -> Canvas:
        c = Canvas(300.4, 200, title="t")
        p = c.panel(50, 20, 200, 100, (-0.5, 1.5), (0, 1))
        p.bar(0, 0.5, 0.8, fill="#ff0000", hatch=True)
        p.bar(1, 0.25, 0.8, bottom=0.5, fill="#00ff00")
        p.frame()
        p.xticks([(0, "a"), (1, "b")])
        p.yticks(tick_labels(nice_ticks(0, 1, 5)))
        c.legend(260, 20, [("red", "#ff0000", True), ("green", "#00ff00")])
        return c

    c = draw()
    assert c.svg() == draw().svg()
    root = ET.fromstring(c.svg())
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("301", "200", "0 0 301 200")
    bars = [r for r in root.iter(f"{NS}rect") if r.get("class") == "bar"]
    assert [(r.get("x"), r.get("y"), r.get("width"), r.get("height")) for r in bars] == [
        ("60", "70", "80", "50"), ("160", "45", "80", "25")]
    assert len([r for r in root.iter(f"{NS}rect") if r.get("class") == "hatch"]) == 2  # bar and legend swatch
    assert [t.text for t in root.iter(f"{NS}text") if t.get("class") == "ytick"][-1] == "1.0"


def test_write_is_atomic_and_writes_the_document(tmp_path):
    c = Canvas(10, 10)
    c.line(0, 0, 10, 10)
    path = c.write(tmp_path / "x.svg")
    assert path.read_text(encoding="utf-8") == c.svg()
    assert [p.name for p in tmp_path.iterdir()] == ["x.svg"]
