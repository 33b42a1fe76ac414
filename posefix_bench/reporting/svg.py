"""A minimal SVG canvas for the diagnosis plots: panels with axes and ticks, bars (stacked, hatched), cells, lines,
text, legends and a viridis-like colour map, written directly as text.

Why (issue 18): ``posefix-bench diagnose`` must take no more wall time than one pycocotools evaluation of the same
file. Importing matplotlib and laying out and rasterising the four diagnosis figures cost ~0.9 s on a 2-core Xeon,
more than the whole diagnosis of ~5,000 detections (~0.7 s). Written as SVG text the figures take milliseconds and
import nothing beyond the standard library; they stay vector graphics that GitHub's Markdown shows like a PNG (the
root element carries ``viewBox`` with ``width`` and ``height``).

Coordinates are pixels with y pointing down; a :class:`Panel` maps data coordinates into its rectangle. Text widths
are estimated (:func:`text_width`, an average glyph width) for the layout only; the viewer draws the text. The output
is deterministic: the same calls give the same bytes (numbers rounded to 0.01, elements in call order, fixed ids).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from posefix_bench.structures.io import atomic_write_text

__all__ = [
    "FONT", "VIRIDIS", "escape", "text_width", "colormap", "nice_ticks", "tick_labels", "legend_size", "Canvas",
    "Panel",
]  # fmt: skip

FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
CHAR_WIDTH = 0.6  # average glyph width in em, for the layout (DejaVu Sans is the widest of FONT's families)
LINE_HEIGHT = 1.2  # em
# matplotlib's viridis at 0, 1/9, ..., 1; colours in between are interpolated linearly
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725")  # fmt: skip
HATCH_ID = "hatch"
GRADIENT_ID = "cmap"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _num(v: float) -> str:
    """A number as SVG text: two decimals, trailing zeros dropped (compact and deterministic)."""
    s = f"{float(v):.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def escape(text) -> str:
    """``text`` safe inside an XML element or a double-quoted attribute (characters XML forbids are dropped)."""
    t = _NOT_XML.sub("", str(text))
    return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def text_width(text, size: float) -> float:
    """Estimated width in pixels of ``text`` (its longest line) at font size ``size``."""
    return CHAR_WIDTH * size * max(len(line) for line in str(text).split("\n"))


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def colormap(value: float, anchors: Sequence[str] = VIRIDIS) -> str:
    """The ``#rrggbb`` colour of ``value`` in [0, 1] (clipped; NaN as 0), linear between the anchor colours."""
    v = 0.0 if math.isnan(value) else min(1.0, max(0.0, float(value)))
    pos = v * (len(anchors) - 1)
    i = min(int(pos), len(anchors) - 2)
    t = pos - i
    a, b = _rgb(anchors[i]), _rgb(anchors[i + 1])
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b))


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi], about ``n`` intervals."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def tick_labels(ticks: Sequence[float]) -> list[tuple[float, str]]:
    """(value, label) pairs, all with the decimals the step between the ticks needs."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [(t, f"{t:.{decimals}f}") for t in ticks]


def legend_size(entries: Sequence[tuple], size: float) -> tuple[float, float]:
    """(width, height) in pixels of :meth:`Canvas.legend` for these entries."""
    w = max(text_width(e[0], size) for e in entries)
    return 2.6 * size + w + 0.6 * size, len(entries) * LINE_HEIGHT * size * 1.15 + 0.8 * size


class Canvas:
    """An SVG drawing of ``width`` x ``height`` pixels on a white background; :meth:`svg` gives the document."""

    def __init__(self, width: float, height: float, title: str | None = None):
        self.width, self.height = math.ceil(width), math.ceil(height)
        self.title = title
        self._items: list[str] = []
        self._defs: dict[str, str] = {}

    # -- primitives ------------------------------------------------------------------------------------------------
    def rect(self, x: float, y: float, w: float, h: float, fill: str, *, stroke: str | None = None,
             stroke_width: float = 1.0, opacity: float | None = None, hatch: bool = False,
             cls: str | None = None) -> None:
        """A rectangle (negative sizes are flipped); ``hatch`` overlays white diagonal lines."""
        if w < 0:
            x, w = x + w, -w
        if h < 0:
            y, h = y + h, -h
        geom = f'x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}"'
        attrs = f' class="{escape(cls)}"' if cls else ""
        if stroke:
            attrs += f' stroke="{stroke}" stroke-width="{_num(stroke_width)}"'
        if opacity is not None:
            attrs += f' fill-opacity="{_num(opacity)}"'
        self._items.append(f'<rect {geom} fill="{fill}"{attrs}/>')
        if hatch:
            self._defs[HATCH_ID] = (
                f'<pattern id="{HATCH_ID}" patternUnits="userSpaceOnUse" width="7" height="7" '
                'patternTransform="rotate(45)"><line x1="3.5" y1="0" x2="3.5" y2="7" stroke="#ffffff" '
                'stroke-width="1.3"/></pattern>')
            self._items.append(f'<rect {geom} fill="url(#{HATCH_ID})" class="hatch"/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#000000", width: float = 1.0,
             dash: str | None = None) -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self._items.append(f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
                           f'stroke="{stroke}" stroke-width="{_num(width)}"{d}/>')

    def text(self, x: float, y: float, text, *, size: float = 12, anchor: str = "start", valign: str = "baseline",
             color: str = "#000000", rotate: float = 0.0, bold: bool = False, cls: str | None = None) -> None:
        """Text at (x, y); ``anchor`` start/middle/end, ``valign`` baseline/top/middle/bottom; "\\n" breaks lines.

        ``rotate`` (degrees, clockwise) turns the text about (x, y)."""
        lines = str(text).split("\n")
        lh = LINE_HEIGHT * size
        first = {"baseline": y, "top": y + 0.8 * size, "middle": y + 0.35 * size - (len(lines) - 1) * lh / 2,
                 "bottom": y - 0.25 * size - (len(lines) - 1) * lh}[valign]
        attrs = f' font-size="{_num(size)}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if color != "#000000":
            attrs += f' fill="{color}"'
        if bold:
            attrs += ' font-weight="bold"'
        if rotate:
            attrs += f' transform="rotate({_num(rotate)} {_num(x)} {_num(y)})"'
        if cls:
            attrs += f' class="{escape(cls)}"'
        if len(lines) == 1:
            body = escape(lines[0])
        else:
            body = "".join(f'<tspan x="{_num(x)}" dy="{_num(0 if i == 0 else lh)}">{escape(s)}</tspan>'
                           for i, s in enumerate(lines))
        self._items.append(f'<text x="{_num(x)}" y="{_num(first)}"{attrs}>{body}</text>')

    # -- composites ------------------------------------------------------------------------------------------------
    def panel(self, x: float, y: float, w: float, h: float, xlim: tuple[float, float], ylim: tuple[float, float],
              flip_y: bool = False) -> Panel:
        """A plotting area at (x, y, w, h) pixels showing ``xlim`` x ``ylim`` (``flip_y``: ylim[0] at the top)."""
        return Panel(self, x, y, w, h, xlim, ylim, flip_y)

    def legend(self, x: float, y: float, entries: Sequence[tuple], size: float = 11) -> tuple[float, float]:
        """A framed legend with its top-left corner at (x, y); entries (label, colour[, hatched]). Returns its size."""
        w, h = legend_size(entries, size)
        self.rect(x, y, w, h, "#ffffff", stroke="#cccccc", cls="legend")
        row = LINE_HEIGHT * size * 1.15
        for i, entry in enumerate(entries):
            label, color, hatched = (tuple(entry) + (False,))[:3]
            top = y + 0.4 * size + i * row
            self.rect(x + 0.6 * size, top + 0.1 * size, 1.5 * size, 0.9 * size, color, hatch=hatched, cls="swatch")
            self.text(x + 2.6 * size, top + 0.55 * size, label, size=size, valign="middle", cls="legend-label")
        return w, h

    def colorbar(self, x: float, y: float, w: float, h: float, label: str, size: float = 11,
                 anchors: Sequence[str] = VIRIDIS) -> None:
        """A vertical colour bar of :func:`colormap` from 0 (bottom) to 1 (top) with ticks and a label."""
        stops = "".join(f'<stop offset="{_num(i / (len(anchors) - 1))}" stop-color="{c}"/>'
                        for i, c in enumerate(anchors))
        self._defs[GRADIENT_ID] = (f'<linearGradient id="{GRADIENT_ID}" x1="0" y1="1" x2="0" y2="0">{stops}'
                                   '</linearGradient>')
        self._items.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" '
                           f'fill="url(#{GRADIENT_ID})" stroke="#000000" stroke-width="0.8" class="colorbar"/>')
        bar = self.panel(x, y, w, h, (0, 1), (0, 1))
        tw = bar.yticks(tick_labels(nice_ticks(0, 1, 5)), size=size, side="right", cls="cbtick")
        self.text(x + w + tw + 1.0 * size, y + h / 2, label, size=size, anchor="middle", valign="middle",
                  rotate=-90)

    # -- output ----------------------------------------------------------------------------------------------------
    def svg(self) -> str:
        """The SVG document (UTF-8 text)."""
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="{FONT}">')
        parts = ['<?xml version="1.0" encoding="UTF-8"?>', head]
        if self.title:
            parts.append(f"<title>{escape(self.title)}</title>")
        if self._defs:
            parts.append("<defs>" + "".join(self._defs[k] for k in sorted(self._defs)) + "</defs>")
        parts.append(f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#ffffff"/>')
        parts += self._items
        parts.append("</svg>")
        return "\n".join(parts) + "\n"

    def write(self, path: str | os.PathLike) -> Path:
        """Write :meth:`svg` to ``path`` atomically (temporary file, then rename)."""
        return atomic_write_text(path, self.svg())


@dataclass
class Panel:
    """A rectangle of a :class:`Canvas` that shows data coordinates ``xlim`` x ``ylim``."""

    canvas: Canvas
    x: float
    y: float
    w: float
    h: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    flip_y: bool = False

    def px(self, v: float) -> float:
        x0, x1 = self.xlim
        return self.x + (v - x0) / (x1 - x0) * self.w

    def py(self, v: float) -> float:
        y0, y1 = self.ylim
        f = (v - y0) / (y1 - y0)
        return self.y + (f if self.flip_y else 1.0 - f) * self.h

    def bar(self, x: float, height: float, width: float, bottom: float = 0.0, *, fill: str,
            hatch: bool = False, stroke: str | None = "#ffffff", cls: str = "bar") -> None:
        """A vertical bar centred at ``x``, from ``bottom`` to ``bottom + height`` (data units)."""
        left, right = self.px(x - width / 2), self.px(x + width / 2)
        top, base = self.py(bottom + height), self.py(bottom)
        self.canvas.rect(left, top, right - left, base - top, fill, stroke=stroke, stroke_width=0.6, hatch=hatch,
                         cls=cls)

    def barh(self, y: float, length: float, height: float, left: float = 0.0, *, fill: str, hatch: bool = False,
             stroke: str | None = "#ffffff", cls: str = "bar") -> None:
        """A horizontal bar centred at ``y``, from ``left`` to ``left + length`` (data units)."""
        a, b = self.py(y - height / 2), self.py(y + height / 2)
        x0, x1 = self.px(left), self.px(left + length)
        self.canvas.rect(x0, min(a, b), x1 - x0, abs(b - a), fill, stroke=stroke, stroke_width=0.6, hatch=hatch,
                         cls=cls)

    def text(self, x: float, y: float, text, **kwargs) -> None:
        """:meth:`Canvas.text` at data coordinates."""
        self.canvas.text(self.px(x), self.py(y), text, **kwargs)

    def frame(self) -> None:
        self.canvas.rect(self.x, self.y, self.w, self.h, "none", stroke="#000000", stroke_width=0.8, cls="frame")

    def xticks(self, ticks: Sequence[tuple[float, str]], size: float = 12, rotate: float = 0.0) -> float:
        """Tick marks and labels below the panel; ``rotate`` (e.g. -45) slants them. Returns the labels' height."""
        base = self.y + self.h
        for v, label in ticks:
            x = self.px(v)
            self.canvas.line(x, base, x, base + 4, width=0.8)
            if rotate:
                self.canvas.text(x + 0.3 * size, base + 6 + 0.7 * size, label, size=size, anchor="end",
                                 rotate=rotate, cls="xtick")
            else:
                self.canvas.text(x, base + 6, label, size=size, anchor="middle", valign="top", cls="xtick")
        longest = max((text_width(s, size) for _, s in ticks), default=0.0)
        return 6 + (longest * abs(math.sin(math.radians(rotate))) + size if rotate else LINE_HEIGHT * size)

    def yticks(self, ticks: Sequence[tuple[float, str]], size: float = 12, side: str = "left",
               cls: str = "ytick") -> float:
        """Tick marks and labels left (or right) of the panel. Returns the labels' width."""
        edge, sign = (self.x, -1) if side == "left" else (self.x + self.w, 1)
        for v, label in ticks:
            y = self.py(v)
            self.canvas.line(edge, y, edge + 4 * sign, y, width=0.8)
            self.canvas.text(edge + 6 * sign, y, label, size=size, anchor="end" if sign < 0 else "start",
                             valign="middle", cls=cls)
        return 6 + max((text_width(s, size) for _, s in ticks), default=0.0)

    def xlabel(self, text: str, offset: float, size: float = 13) -> None:
        """Axis label centred below the panel, ``offset`` pixels under its bottom edge."""
        self.canvas.text(self.x + self.w / 2, self.y + self.h + offset, text, size=size, anchor="middle",
                         valign="top", cls="xlabel")

    def ylabel(self, text: str, offset: float, size: float = 13) -> None:
        """Axis label turned upright, centred left of the panel, ``offset`` pixels from its left edge."""
        x = self.x - offset - 0.3 * size
        self.canvas.text(x, self.y + self.h / 2, text, size=size, anchor="middle", rotate=-90, cls="ylabel")

    def title(self, text: str, size: float = 15) -> None:
        self.canvas.text(self.x + self.w / 2, self.y - 8, text, size=size, anchor="middle", valign="bottom",
                         cls="title")
