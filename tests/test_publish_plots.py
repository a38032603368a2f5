"""Card plots drawn with Pillow: valid PNGs, bars and lines where the data puts them, same bytes each time."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageColor

from owa_builders.publish.plots import HEIGHT, PALETTE, WIDTH, histogram_png, lines_png, nice_ticks


def pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    return np.asarray(image.convert("RGB"))


def colour_mask(array: np.ndarray, colour: str) -> np.ndarray:
    return np.all(array == np.array(ImageColor.getrgb(colour)), axis=-1)


@pytest.mark.parametrize(
    "low,high,count", [(0, 190, 5), (0, 1, 8), (0, 5.2, 8), (0, 36, 5), (3, 7, 4), (0, 0, 5), (0, 1e7, 5)]
)
def test_ticks_are_round_and_cover_the_range(low: float, high: float, count: int) -> None:
    ticks = nice_ticks(low, high, count)
    assert ticks[0] <= low and ticks[-1] >= max(high, low + 1e-12)
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1 and 2 <= len(ticks) <= 2 * count + 2
    step = steps.pop()
    assert step / 10 ** np.floor(np.log10(step)) in (1, 2, 2.5, 5)


def test_histogram_bars_are_as_tall_as_their_counts() -> None:
    png = histogram_png([0, 10, 20, 5], 0.0, 1.0, title="fill", xlabel="x", ylabel="y")
    bars = colour_mask(pixels(png), PALETTE[0])
    columns = bars.sum(axis=0)
    heights = [
        int(columns[bars.shape[1] * k // 4 + 5 : bars.shape[1] * (k + 1) // 4].max()) for k in range(4)
    ]
    assert heights[0] == 0 and heights[1] > 0
    assert heights[2] == pytest.approx(2 * heights[1], abs=2) and heights[3] == pytest.approx(
        heights[1] / 2, abs=2
    )
    assert (
        histogram_png([0, 10, 20, 5], 0.0, 1.0, title="fill", xlabel="x", ylabel="y") == png
    )  # deterministic


def test_lines_have_one_colour_per_series_ordered_by_value() -> None:
    png = lines_png(
        {"fast": [100.0, 100.0, 100.0], "slow": [10.0, 10.0, 10.0]}, 1.0, title="t", xlabel="s", ylabel="e/s"
    )
    array = pixels(png)
    fast, slow = colour_mask(array, PALETTE[0]), colour_mask(array, PALETTE[1])
    assert fast.sum() > 100 and slow.sum() > 100
    middle = WIDTH // 3
    fast_rows = np.nonzero(fast[:, middle])[0]
    slow_rows = np.nonzero(slow[:, middle])[0]
    assert (
        fast_rows.size and slow_rows.size and fast_rows.max() < slow_rows.min()
    )  # higher value, higher on the image
    assert len(np.unique(array.reshape(-1, 3), axis=0)) > 10  # text, axes, lines: not blank
