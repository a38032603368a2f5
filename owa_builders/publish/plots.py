"""Small PNG charts for dataset cards, drawn with Pillow (no plotting library needed).

Two kinds: a histogram (bars over equal-width bins) and a line chart (one line per series, shared
x). Both have axes, tick labels, a title and a legend, in a fixed size, and give the same PNG bytes
for the same input.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 800, 420
_MARGIN = {"left": 72, "right": 24, "top": 44, "bottom": 58}
#: Line colours, in series order.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round, evenly spaced tick values from ``<= low`` to ``>= high``."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _label(value: float) -> str:
    if abs(value) >= 1000 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


class _Canvas:
    def __init__(
        self,
        title: str,
        xlabel: str,
        ylabel: str,
        x_range: tuple[float, float],
        y_max: float,
        legend: int = 0,
    ) -> None:
        self.image = Image.new("RGB", (WIDTH, HEIGHT), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.left, self.top = _MARGIN["left"], _MARGIN["top"]
        self.right, self.bottom = WIDTH - _MARGIN["right"] - legend, HEIGHT - _MARGIN["bottom"]
        x_ticks = nice_ticks(*x_range, 8)
        self.x0, self.x1 = x_ticks[0], x_ticks[-1]
        self.y_ticks = nice_ticks(0.0, y_max if y_max > 0 else 1.0)
        self.y1 = self.y_ticks[-1]
        font, small = _font(16), _font(12)
        self.draw.text((WIDTH / 2, 14), title, fill="black", font=font, anchor="mt")
        self.draw.text(
            ((self.left + self.right) / 2, HEIGHT - 8), xlabel, fill="black", font=small, anchor="mb"
        )
        label = Image.new("RGB", (HEIGHT, 18), "white")
        ImageDraw.Draw(label).text((HEIGHT / 2, 9), ylabel, fill="black", font=small, anchor="mm")
        self.image.paste(label.rotate(90, expand=True), (2, 0))
        for tick in self.y_ticks:
            y = self.py(tick)
            self.draw.line([(self.left, y), (self.right, y)], fill="#e6e6e6")
            self.draw.text((self.left - 6, y), _label(tick), fill="black", font=small, anchor="rm")
        for tick in x_ticks:
            x = self.px(tick)
            self.draw.line([(x, self.bottom), (x, self.bottom + 4)], fill="black")
            self.draw.text((x, self.bottom + 6), _label(tick), fill="black", font=small, anchor="mt")
        self.draw.line(
            [(self.left, self.top), (self.left, self.bottom), (self.right, self.bottom)], fill="black"
        )

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def py(self, y: float) -> float:
        return self.bottom - y / self.y1 * (self.bottom - self.top)

    def legend(self, names: Sequence[str]) -> None:
        small = _font(12)
        y = self.top + 4
        for i, name in enumerate(names):
            colour = PALETTE[i % len(PALETTE)]
            self.draw.rectangle([self.right + 12, y + 3, self.right + 22, y + 13], fill=colour)
            self.draw.text((self.right + 28, y), name, fill="black", font=small)
            y += 16

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, format="PNG", optimize=True)
        return out.getvalue()


def histogram_png(
    counts: Sequence[int], low: float, high: float, *, title: str, xlabel: str, ylabel: str
) -> bytes:
    """Bars of ``counts`` over ``len(counts)`` equal bins spanning ``[low, high]``."""
    canvas = _Canvas(title, xlabel, ylabel, (low, high), float(max(counts, default=0)))
    width = (high - low) / max(1, len(counts))
    for i, count in enumerate(counts):
        if count:
            x0, x1 = canvas.px(low + i * width), canvas.px(low + (i + 1) * width)
            canvas.draw.rectangle([x0 + 1, canvas.py(count), x1 - 1, canvas.bottom - 1], fill=PALETTE[0])
    return canvas.png()


def lines_png(
    series: Mapping[str, Sequence[float]], step: float, *, title: str, xlabel: str, ylabel: str
) -> bytes:
    """One line per entry of ``series``; point ``i`` of each is at x = ``i * step``."""
    length = max((len(v) for v in series.values()), default=0)
    y_max = max((max(v, default=0.0) for v in series.values()), default=0.0)
    canvas = _Canvas(title, xlabel, ylabel, (0.0, max(step, (length - 1) * step)), float(y_max), legend=130)
    for i, values in enumerate(series.values()):
        points = [(canvas.px(j * step), canvas.py(v)) for j, v in enumerate(values)]
        colour = PALETTE[i % len(PALETTE)]
        if len(points) == 1:
            x, y = points[0]
            canvas.draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        elif points:
            canvas.draw.line(points, fill=colour, width=2)
    canvas.legend(list(series))
    return canvas.png()
