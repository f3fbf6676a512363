"""Class-imbalanced subsets of a balanced train pool: the class counts of a run
(`class_counts`, from the profiles of `imbssl_bench.profiles` and the pool's size), which images
are kept (drawn per class from the run's seed), the balanced validation and probe draws."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imbssl_bench.errors import UserError
from imbssl_bench.profiles import (
    PARETO_SHAPE,
    PROFILES,
    class_ranks,
    exponential_profile,
    pareto_profile,
    profile_counts,
    scale_to_total,
    step_profile,
)

__all__ = [
    "PARETO_SHAPE",
    "PROFILES",
    "VAL_SEED",
    "class_counts",
    "class_ranks",
    "exponential_profile",
    "holdout_split",
    "pareto_profile",
    "probe_subset",
    "profile_counts",
    "sample_subset",
    "scale_to_total",
    "step_profile",
    "subset_indices",
]


def class_counts(
    pool_counts: Sequence[int],
    ratio: float,
    n_max: int,
    profile: str = "exponential",
    class_order: str = "index",
    seed: int = 0,
    total: int | None = None,
    pareto_shape: float | None = None,
) -> list[int]:
    """Per-class-index counts of the imbalanced subset of a pool with `pool_counts` images per
    class (`profile_counts`), refused when the pool has too few."""
    counts = profile_counts(
        len(pool_counts), ratio, n_max, profile, class_order, seed, total, pareto_shape
    )
    if n_max < 1 or n_max > min(pool_counts):
        raise UserError(
            f"n_max {n_max} must be between 1 and the smallest class of the train "
            f"pool ({min(pool_counts)}); lower --n-max"
        )
    over = [c for c, n in enumerate(counts) if n > pool_counts[c]]
    if total is not None and over:
        raise UserError(
            f"--total {total} needs {counts[over[0]]} images of class {over[0]} but the "
            f"pool has {pool_counts[over[0]]}; lower --total"
        )
    return counts


def sample_subset(targets: np.ndarray, counts: Sequence[int], seed: int) -> np.ndarray:
    """Sorted indices into `targets`: `counts[c]` images of class c, drawn with the seed."""
    picked = []
    for c, n in enumerate(counts):
        members = np.flatnonzero(targets == c)
        rng = np.random.default_rng([seed, c])
        picked.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(picked))


def subset_indices(
    targets: np.ndarray, counts: Sequence[int], seed: int, val_per_class: int = 0
) -> np.ndarray:
    """Sorted indices into `targets` of a run's training subset: `counts` drawn with `seed`
    from the pool left after the balanced validation split (`holdout_split`)."""
    pool, _ = holdout_split(targets, val_per_class)
    return pool[sample_subset(targets[pool], counts, seed)]


VAL_SEED = 0  # one validation split for every run, so all runs share one balanced pool


def probe_subset(targets: np.ndarray, per_class: int | None) -> np.ndarray:
    """Sorted indices of the images the probes fit on: `per_class` of every class (all when
    ``None``), one seeded draw shared by every run so that runs are compared on equal terms.

    Examples:
        >>> idx = probe_subset(np.repeat([0, 1], 10), 4)
        >>> np.bincount(np.repeat([0, 1], 10)[idx]).tolist()
        [4, 4]
    """
    if per_class is None:
        return np.arange(len(targets))
    counts = np.bincount(targets)
    if per_class > counts.min():
        raise UserError(
            f"--probe-per-class {per_class} exceeds the smallest class of the pool "
            f"({counts.min()} images); lower it"
        )
    picked = [
        np.random.default_rng([VAL_SEED, c, 1]).choice(
            np.flatnonzero(targets == c), per_class, replace=False
        )
        for c in range(len(counts))
    ]
    return np.sort(np.concatenate(picked))


def holdout_split(targets: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, val) indices: `per_class` images of each class held out as a balanced
    validation split before any subsampling (SDCLR's CIFAR-10-LT: 45k pool + 5k val).

    Examples:
        >>> pool, val = holdout_split(np.repeat([0, 1], 10), 3)
        >>> len(pool), len(val)
        (14, 6)
    """
    if per_class <= 0:
        return np.arange(len(targets)), np.arange(0)
    counts = np.bincount(targets)
    if per_class >= counts.min():
        raise UserError(
            f"--val-per-class {per_class} leaves no training images in the smallest "
            f"class ({counts.min()} images); lower it"
        )
    val = np.concatenate(
        [
            np.random.default_rng([VAL_SEED, c]).choice(
                np.flatnonzero(targets == c), per_class, replace=False
            )
            for c in range(len(counts))
        ]
    )
    return np.setdiff1d(np.arange(len(targets)), val), np.sort(val)
