"""How the leaderboard writes numbers: ratios, accuracies and differences in points."""

from __future__ import annotations

from statistics import mean, stdev


def pct(values: list[float]) -> str:
    """Fractions as percent, mean ± std (a dash when none)."""
    if not values:
        return "–"
    m = 100 * mean(values)
    return f"{m:.1f} ± {100 * stdev(values):.1f}" if len(values) > 1 else f"{m:.1f}"


def fmt_ratio(x: float) -> str:
    """An imbalance ratio as written in headers: ``100``, ``2.5``."""
    return f"{x:g}"


def times(values: list[float]) -> str:
    """A mean multiple, e.g. passes relative to base: ``1.53``."""
    return f"{mean(values):.2f}" if values else "–"


def pct_points(values: list[float]) -> str:
    """Differences already in points, signed mean ± std."""
    if not values:
        return "–"
    m = mean(values)
    return f"{m:+.1f} ± {stdev(values):.1f}" if len(values) > 1 else f"{m:+.1f}"
