"""Accuracy metrics for imbalanced pre-training: per class, per frequency group, spread.

Groups follow SDCLR / BCL: classes ranked by their count in the pre-training subset (ties by
profile rank) and cut in thirds, the larger third(s) first; CIFAR-10 -> 4 many, 3 medium, 3 few.
Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GROUPS = ("many", "medium", "few")


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> list[float]:
    """Accuracy on each class's test images (NaN for a class without test images).

    Examples:
        >>> per_class_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
        [0.5, 1.0]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    totals = np.bincount(y_true, minlength=num_classes)
    hits = np.bincount(y_true[y_true == y_pred], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (hits / totals).tolist()


def group_split(
    class_counts: Sequence[int], ranks: Sequence[int] | None = None
) -> dict[str, list[int]]:
    """Class indices of the many / medium / few thirds.

    Examples:
        >>> group_split([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
        {'many': [0, 1, 2, 3], 'medium': [4, 5, 6], 'few': [7, 8, 9]}
    """
    n = len(class_counts)
    rank = ranks if ranks is not None else range(n)  # ties (e.g. ratio 1): by profile rank
    order = sorted(range(n), key=lambda c: (-class_counts[c], rank[c]))
    base, extra = divmod(n, 3)
    sizes = [base + (i < extra) for i in range(3)]
    bounds = np.cumsum([0, *sizes])
    return {g: sorted(order[bounds[i] : bounds[i + 1]]) for i, g in enumerate(GROUPS)}


def summarize(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_counts: Sequence[int],
    ranks: Sequence[int] | None = None,
) -> dict[str, object]:
    """top1, per-class accuracy, group accuracy (mean over the group's classes) and the std
    of per-class accuracy."""
    per_class = per_class_accuracy(y_true, y_pred, len(class_counts))
    arr = np.array(per_class)
    groups = group_split(class_counts, ranks)
    return {
        "top1": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "per_class_acc": [None if np.isnan(a) else a for a in per_class],
        "group_acc": {g: _nanmean(arr[idx]) for g, idx in groups.items()},
        "per_class_std": _nanstd(arr),
        "groups": groups,
    }


def _nanmean(x: np.ndarray) -> float | None:
    return float(np.nanmean(x)) if np.isfinite(x).any() else None


def _nanstd(x: np.ndarray) -> float | None:
    return float(np.nanstd(x)) if np.isfinite(x).any() else None
