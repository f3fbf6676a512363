"""`ImbalancedDataset`: the harness's imbalanced subset of any labelled map-style dataset, for
use in your own training code.

Examples:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> labels = torch.arange(10).repeat_interleave(5000)  # CIFAR-10's train set: 5,000 a class
    >>> lt = ImbalancedDataset(TensorDataset(torch.zeros(50000, 1), labels), 100, labels=labels)
    >>> len(lt), lt.class_counts
    (12406, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
    >>> int(lt[0][1]), int(lt[len(lt) - 1][1])
    (0, 9)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from imbssl_bench.data.imbalance import class_counts, subset_indices


class ImbalancedDataset(Dataset):
    """The items of `dataset` that a grid run with these arguments trains on: per class the
    count of the `profile` at imbalance `ratio` (rho = n_max / n_min, `class_order` ranks the
    classes), drawn with `seed`, optionally scaled to `total` images; exactly the harness's
    draw (`class_counts`, `subset_indices`) on a pool without a validation split.

    Labels come from `labels` when given, else from the dataset's ``targets`` attribute
    (torchvision's CIFAR10, CIFAR100, ImageFolder, ...); they are class indices 0..C-1.
    `n_max` defaults to the smallest class of `dataset`; `pareto_shape` is the ``pareto``
    profile's alpha (default 6, ImageNet-LT's). ``indices`` are the kept items'
    positions in `dataset` (sorted), ``class_counts`` the kept images per class index.
    """

    def __init__(
        self,
        dataset: Any,
        ratio: float,
        profile: str = "exponential",
        n_max: int | None = None,
        seed: int = 0,
        total: int | None = None,
        class_order: str = "index",
        labels: Sequence[int] | None = None,
        pareto_shape: float | None = None,
    ) -> None:
        self.dataset = dataset
        targets = _labels(dataset, labels)
        pool = np.bincount(targets).tolist()
        n_max = n_max or min(pool)
        counts = class_counts(pool, ratio, n_max, profile, class_order, seed, total, pareto_shape)
        self.indices: list[int] = subset_indices(targets, counts, seed).tolist()
        self.class_counts: list[int] = counts
        self.targets: list[int] = targets[self.indices].tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[self.indices[i]]


def _labels(dataset: Any, labels: Sequence[int] | None) -> np.ndarray:
    """The dataset's class indices as an int64 array, checked."""
    found = labels if labels is not None else getattr(dataset, "targets", None)
    if found is None:
        raise ValueError(
            "ImbalancedDataset needs the labels: pass labels=[...] (one class index per item) "
            "or wrap a dataset with a `targets` attribute"
        )
    targets = np.asarray([int(y) for y in found], dtype=np.int64)
    if len(targets) != len(dataset):
        raise ValueError(f"{len(targets)} labels for a dataset of {len(dataset)} items")
    if len(targets) and (targets.min() < 0 or (np.bincount(targets) == 0).any()):
        raise ValueError("labels must be class indices 0..C-1 with every class present")
    return targets
