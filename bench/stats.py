"""Small numeric helpers: min / median / max, and the straight-line fit of the sweep's growth."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def spread(values: Sequence[float | None]) -> tuple[float, float, float] | None:
    """(min, median, max) of the values that exist, or None when there are none."""
    have = [v for v in values if v is not None]
    if not have:
        return None
    return min(have), statistics.median(have), max(have)


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``y = fixed + slope * x``; returns (fixed, slope)."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        raise ValueError("a line needs at least two distinct x values")
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return mean_y - slope * mean_x, slope


def deviation(fixed: float, slope: float, x: float, y: float) -> float:
    """How far ``y`` lies from the line at ``x``, as a fraction of the line's value there."""
    predicted = fixed + slope * x
    return (y - predicted) / predicted if predicted else float("inf")
