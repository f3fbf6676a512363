"""The data room: datasets (``create_dataset(name, root)`` is the one entry point) and the
imbalanced subsets drawn from them (`imbalance`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from imbssl_bench.data.base import DatasetSource, ImageData, ImageSplit
from imbssl_bench.data.cifar import CIFAR10, CIFAR100
from imbssl_bench.data.digits import Digits
from imbssl_bench.data.imagefolder import ImageFolder
from imbssl_bench.data.imbalance import (
    class_counts,
    class_ranks,
    holdout_split,
    probe_subset,
    sample_subset,
    subset_indices,
)
from imbssl_bench.data.wrappers import ImbalancedDataset
from imbssl_bench.registry import Registry

DATASETS: Registry[type[DatasetSource]] = Registry("dataset", "; see `imbssl-bench datasets`")
for _cls in (Digits, CIFAR10, CIFAR100, ImageFolder):
    DATASETS.add(_cls.name, _cls)


def list_datasets() -> list[type[DatasetSource]]:
    return [cls for _, cls in DATASETS.items()]


@cache
def create_dataset(name: str, root: str | None = None) -> DatasetSource:
    """Return the dataset `name` at `root`; cached so a grid decodes each dataset once."""
    cls = DATASETS.get(name)
    return cls(Path(root).expanduser() if root else None)


__all__ = [
    "DATASETS",
    "DatasetSource",
    "ImageData",
    "ImageSplit",
    "ImbalancedDataset",
    "class_counts",
    "class_ranks",
    "create_dataset",
    "holdout_split",
    "list_datasets",
    "probe_subset",
    "sample_subset",
    "subset_indices",
]
