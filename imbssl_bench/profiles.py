"""Class-count profiles: how many images of each class a run keeps, from its config alone.

The exponential profile keeps ``n_c = floor(n_max * rho ** (-c / (C - 1)))`` images of the class
with rank ``c`` (rank 0 keeps ``n_max``, rank ``C - 1`` keeps ``n_max / rho``); the step profile
keeps n_max for half the classes and n_max / rho for the rest; the Pareto profile (ImageNet-LT's)
spaces the counts between the same two ends as Pareto quantiles (`pareto_profile`). The same-size
control scales a profile to an exact total, so that balanced and imbalanced subsets have the same
number of images. A core module (numpy only): the harness plans counts with it
(`data.imbalance.class_counts`) and ``leaderboard --validate`` re-derives a record's with it where
torch is absent.

Examples:
    >>> exponential_profile(5000, 100, 10)
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    >>> sum(exponential_profile(5000, 10, 10)), sum(exponential_profile(4500, 100, 10))
    (20431, 11165)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from imbssl_bench.errors import UserError

_EPS = 1e-9  # guards floor() against 49.99999999 for an exact 50


def exponential_profile(n_max: int, ratio: float, num_classes: int) -> list[int]:
    """Per-rank counts; rank 0 is the most frequent class."""
    if num_classes == 1:
        return [n_max]
    return [
        max(1, math.floor(n_max * ratio ** (-rank / (num_classes - 1)) + _EPS))
        for rank in range(num_classes)
    ]


def step_profile(n_max: int, ratio: float, num_classes: int) -> list[int]:
    """Per-rank counts: the first ``C // 2`` ranks keep n_max, the rest n_max / rho (as LDAM).

    Examples:
        >>> step_profile(5000, 100, 10)
        [5000, 5000, 5000, 5000, 5000, 50, 50, 50, 50, 50]
    """
    low = max(1, math.floor(n_max / ratio + _EPS))
    return [n_max if rank < num_classes // 2 else low for rank in range(num_classes)]


PARETO_SHAPE = 6.0  # ImageNet-LT's (OLTR, Liu et al. CVPR 2019), used by Liu et al. ICLR 2022


def pareto_profile(
    n_max: int, ratio: float, num_classes: int, shape: float = PARETO_SHAPE
) -> list[int]:
    """Per-rank counts of a Pareto profile: rank 0 keeps n_max, the last rank
    ``floor(n_max / rho)``; `shape` (the Pareto index alpha) sets the curve between them.

    ImageNet-LT was drawn as "a subset following the Pareto distribution with the power value
    alpha = 6" (Liu et al., CVPR 2019); the code of that draw is not released, only its file
    lists. We read it as: class sizes are draws of a Pareto(alpha) variable, rescaled linearly
    to [n_min, n_max]. To be deterministic, the draws are replaced by their quantiles at the
    plotting positions ``(C - rank - 1/2) / C`` (what C sorted draws look like), rescaled so
    that the ends are exactly n_max and ``floor(n_max / rho)``, as in the other profiles. The
    Pareto quantile is ``(1 - u) ** (-1 / alpha)`` (numpy's ``Generator.pareto``, a Lomax, is
    that minus 1: the same after rescaling). A smaller alpha puts fewer classes near n_max.

    Examples:
        >>> counts = pareto_profile(1280, 256, 1000)  # ImageNet-LT's ends and class count
        >>> counts[:4], counts[-2:], sum(counts)
        ([1280, 982, 862, 788], [5, 5], 104345)
        >>> sum(n > 100 for n in counts), sum(20 <= n <= 100 for n in counts)
        (349, 488)
        >>> pareto_profile(5000, 100, 10)
        [5000, 2864, 1997, 1464, 1086, 795, 560, 363, 196, 50]
    """
    # ImageNet-LT itself, one random draw: 115,846 images; as usually reported (not re-counted
    # here), 385 classes > 100, 479 in 20..100, 136 < 20. These quantiles: 104,345 images,
    # 349 / 488 / 163. (A Pareto-shaped curve over the rank instead, n_max * (1 + c t) ** -6,
    # gives 166,769 images and 347 / 311 / 342: further from the published subset.)
    if not (math.isfinite(shape) and shape > 0):
        raise UserError(f"--pareto-shape must be a finite number > 0, got {shape:g}")
    low = max(1, math.floor(n_max / ratio + _EPS))
    if num_classes == 1:
        return [n_max]
    quantiles = [
        (1 - (num_classes - rank - 0.5) / num_classes) ** (-1 / shape)
        for rank in range(num_classes)
    ]
    top, bottom = quantiles[0], quantiles[-1]
    return [
        math.floor(low + (n_max - low) * (q - bottom) / (top - bottom) + _EPS) for q in quantiles
    ]


PROFILES: dict[str, Callable[..., list[int]]] = {
    "exponential": exponential_profile,
    "step": step_profile,
    "pareto": pareto_profile,
}


def scale_to_total(counts: Sequence[int], total: int, ranks: Sequence[int]) -> list[int]:
    """Scale `counts` to sum to exactly `total`, keeping the shape (largest remainders get the
    leftover images, ties by rank; every class keeps at least one image).

    Examples:
        >>> scale_to_total([100, 50, 10], 80, [0, 1, 2])
        [50, 25, 5]
        >>> scale_to_total([10, 10, 10], 20, [0, 1, 2])
        [7, 7, 6]
    """
    if total < len(counts):
        raise UserError(f"--total {total} is below one image per class ({len(counts)} classes)")
    exact = [c * total / sum(counts) for c in counts]
    scaled = [math.floor(x + _EPS) for x in exact]
    raised = {c for c, n in enumerate(scaled) if n == 0}
    for c in raised:
        scaled[c] = 1
    # leftover images go to the largest remainders (ties: the more frequent rank); classes that
    # were raised to one image already got more than their share
    order = sorted(
        range(len(counts)),
        key=lambda c: (c in raised, -(exact[c] - math.floor(exact[c] + _EPS)), ranks[c]),
    )
    for c in itertools.islice(itertools.cycle(order), max(0, total - sum(scaled))):
        scaled[c] += 1
    while sum(scaled) > total:  # raising to one overshot: trim the largest, rarest-ranked first
        c = max(
            (i for i in range(len(scaled)) if scaled[i] > 1), key=lambda i: (scaled[i], ranks[i])
        )
        scaled[c] -= 1
    return scaled


def class_ranks(num_classes: int, order: str, seed: int) -> list[int]:
    """Rank of each class index: ``index`` (rank = index), ``reverse``, ``random`` (seeded)
    or an explicit comma-separated list of class indices from most to least frequent."""
    if order == "index":
        by_rank = list(range(num_classes))
    elif order == "reverse":
        by_rank = list(range(num_classes))[::-1]
    elif order == "random":
        by_rank = np.random.default_rng(seed).permutation(num_classes).tolist()
    else:
        try:
            by_rank = [int(x) for x in order.split(",")]
        except ValueError:
            by_rank = []
        if sorted(by_rank) != list(range(num_classes)):
            raise UserError(
                f"bad --class-order '{order}': use index, reverse, random, or a "
                f"permutation of 0..{num_classes - 1} like "
                f"{','.join(map(str, range(num_classes)))}"
            )
    ranks = [0] * num_classes
    for rank, cls in enumerate(by_rank):
        ranks[cls] = rank
    return ranks


def profile_counts(
    num_classes: int,
    ratio: float,
    n_max: int,
    profile: str = "exponential",
    class_order: str = "index",
    seed: int = 0,
    total: int | None = None,
    pareto_shape: float | None = None,
) -> list[int]:
    """Per-class-index counts of `profile` at `ratio` over `num_classes` classes; with
    `total`, scaled to sum to it. `pareto_shape` is the Pareto profile's alpha (default
    `PARETO_SHAPE`); other profiles refuse it. The pool's limits are `class_counts`'s."""
    if profile not in PROFILES:
        raise UserError(f"unknown profile '{profile}'; valid: {', '.join(PROFILES)}")
    if pareto_shape is not None and profile != "pareto":
        raise UserError(
            f"--pareto-shape applies to the pareto profile, not '{profile}'; add "
            f"--profile pareto or drop --pareto-shape"
        )
    if not ratio >= 1:
        raise UserError(f"imbalance ratio must be >= 1 (n_max / n_min), got {ratio:g}")
    shape = {} if pareto_shape is None else {"shape": pareto_shape}
    per_rank = PROFILES[profile](n_max, ratio, num_classes, **shape)
    ranks = class_ranks(num_classes, class_order, seed)
    counts = [per_rank[ranks[c]] for c in range(num_classes)]
    return counts if total is None else scale_to_total(counts, total, ranks)
