"""The data room: datasets (``create_dataset(name, root)`` is the one entry point) and the
imbalanced subsets drawn from them (`imbalance`)."""

from __future__ import annotations

import inspect
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from imbssl_bench.data.base import DatasetSource, ImageData
from imbssl_bench.data.cifar import CIFAR10, CIFAR100
from imbssl_bench.data.classes import ClassSubset
from imbssl_bench.data.digits import Digits
from imbssl_bench.data.filelist import FileList
from imbssl_bench.data.imagefolder import ImageFolder
from imbssl_bench.data.imbalance import (
    class_counts,
    class_ranks,
    holdout_split,
    probe_subset,
    sample_subset,
    subset_indices,
)
from imbssl_bench.data.splits import FileSplit, ImageSplit, Split
from imbssl_bench.data.stl10 import STL10
from imbssl_bench.data.wrappers import ImbalancedDataset
from imbssl_bench.errors import UserError
from imbssl_bench.registry import Registry

if TYPE_CHECKING:
    from imbssl_bench.config import RunConfig

DATASETS: Registry[type[DatasetSource]] = Registry("dataset", "; see `imbssl-bench datasets`")
for _cls in (Digits, CIFAR10, CIFAR100, STL10, ImageFolder, FileList):
    DATASETS.add(_cls.name, _cls)


def list_datasets() -> list[type[DatasetSource]]:
    return [cls for _, cls in DATASETS.items()]


@cache
def create_dataset(name: str, root: str | None = None, **options: str) -> DatasetSource:
    """Return the dataset `name` at `root` with its own `options` (e.g. filelist's
    ``train_list``); cached so a grid decodes each dataset once."""
    cls = DATASETS.get(name)
    takes = inspect.signature(cls.__init__).parameters
    for key in options:
        if key not in takes:
            owners = [n for n, c in DATASETS.items() if key in inspect.signature(c).parameters]
            flag = "--" + key.replace("_", "-")
            raise UserError(
                f"{flag} is an option of dataset {' / '.join(owners)}, not of '{name}'; "
                f"drop it or pass --dataset {owners[0]}"
            )
    return cls(Path(root).expanduser() if root else None, **options)


DATASET_OPTIONS = ("train_list", "test_list", "val_list")  # RuntimeConfig fields


def open_dataset(cfg: RunConfig) -> DatasetSource:
    """The dataset a run's config names: `create_dataset` with its options, restricted to
    ``data.classes`` when set (cached like `create_dataset`)."""
    given = {k: getattr(cfg.runtime, k) for k in DATASET_OPTIONS}
    source = create_dataset(
        cfg.data.dataset, cfg.runtime.data_root, **{k: v for k, v in given.items() if v}
    )
    return class_subset(source, cfg.data.classes) if cfg.data.classes else source


@cache
def class_subset(source: DatasetSource, spec: str) -> ClassSubset:
    """`source` restricted to the classes of `spec` (cached: decoded once per grid)."""
    return ClassSubset(source, spec)


__all__ = [
    "DATASETS",
    "ClassSubset",
    "DatasetSource",
    "FileSplit",
    "ImageData",
    "ImageSplit",
    "ImbalancedDataset",
    "Split",
    "class_counts",
    "class_ranks",
    "class_subset",
    "create_dataset",
    "holdout_split",
    "list_datasets",
    "open_dataset",
    "probe_subset",
    "sample_subset",
    "subset_indices",
]
