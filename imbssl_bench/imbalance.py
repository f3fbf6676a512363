"""Class-imbalanced subsets of a balanced train pool.

The exponential profile keeps ``n_c = floor(n_max * rho ** (-c / (C - 1)))`` images of the class
with rank ``c`` (rank 0 keeps ``n_max``, rank ``C - 1`` keeps ``n_max / rho``). Which images are
kept is drawn per class from the run's seed, so one config always gives one subset.

Examples:
    >>> exponential_profile(5000, 100, 10)
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    >>> sum(exponential_profile(5000, 10, 10)), sum(exponential_profile(4500, 100, 10))
    (20431, 11165)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from imbssl_bench.errors import UserError

PROFILES = ("exponential",)
_EPS = 1e-9  # guards floor() against 49.99999999 for an exact 50


def exponential_profile(n_max: int, ratio: float, num_classes: int) -> list[int]:
    """Per-rank counts; rank 0 is the most frequent class."""
    if num_classes == 1:
        return [n_max]
    return [
        max(1, math.floor(n_max * ratio ** (-rank / (num_classes - 1)) + _EPS))
        for rank in range(num_classes)
    ]


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


def class_counts(
    pool_counts: Sequence[int],
    ratio: float,
    n_max: int,
    profile: str = "exponential",
    class_order: str = "index",
    seed: int = 0,
) -> list[int]:
    """Per-class-index counts of the imbalanced subset."""
    if profile not in PROFILES:
        raise UserError(f"unknown profile '{profile}'; valid: {', '.join(PROFILES)}")
    if not ratio >= 1:
        raise UserError(f"imbalance ratio must be >= 1 (n_max / n_min), got {ratio:g}")
    if n_max < 1 or n_max > min(pool_counts):
        raise UserError(
            f"n_max {n_max} must be between 1 and the smallest class of the train "
            f"pool ({min(pool_counts)}); lower --n-max"
        )
    per_rank = exponential_profile(n_max, ratio, len(pool_counts))
    ranks = class_ranks(len(pool_counts), class_order, seed)
    return [per_rank[ranks[c]] for c in range(len(pool_counts))]


def sample_subset(targets: np.ndarray, counts: Sequence[int], seed: int) -> np.ndarray:
    """Sorted indices into `targets`: `counts[c]` images of class c, drawn with the seed."""
    picked = []
    for c, n in enumerate(counts):
        members = np.flatnonzero(targets == c)
        rng = np.random.default_rng([seed, c])
        picked.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(picked))
