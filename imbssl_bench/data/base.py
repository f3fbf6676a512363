"""What every dataset provides: class names, cheap train labels, and its images, decoded once
into memory or (datasets of files) streamed from disk."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from imbssl_bench.data.splits import Split
from imbssl_bench.errors import UserError


@dataclass(frozen=True)
class ImageData:
    classes: list[str]
    train: Split  # the balanced train pool; imbalanced subsets are drawn from it
    test: Split
    val: Split | None = None  # a validation split the dataset ships (e.g. ImageNet-LT's)


class DatasetSource(ABC):
    """A dataset at a location. Subclasses load lazily; `load()` decodes once and caches.

    `train_targets()` must be cheap (no image decoding) so that planning a grid, which only
    needs the class counts of the train pool, stays fast.
    """

    name: str = ""
    description: str = ""
    needs: str = ""  # what the user must provide, shown by `imbssl-bench datasets`
    display_name: str = ""  # how tables label it, e.g. "CIFAR-10 (JPEG)"

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @property
    @abstractmethod
    def classes(self) -> list[str]: ...

    @abstractmethod
    def train_targets(self) -> np.ndarray: ...

    @abstractmethod
    def _load(self) -> ImageData: ...

    @cached_property
    def _data(self) -> ImageData:
        return self._load()

    def load(self, storage: str = "memory") -> ImageData:
        """All images, decoded into memory on the first call only (``storage="streaming"``:
        datasets of files only, see `FileDataset`)."""
        self.choose_storage(storage == "streaming")
        return self._data

    def choose_storage(self, streaming: bool | None) -> str:
        """``memory`` or ``streaming``: what `streaming` asks for (None: the dataset chooses)."""
        if streaming:
            raise UserError(
                f"dataset '{self.name}' is held in memory only; drop --streaming (datasets "
                "of image files stream: imagefolder, filelist)"
            )
        return "memory"

    @property
    def image_size(self) -> int:
        """Native side length in pixels (images are square after loading)."""
        return int(self.load().train.images.shape[-1])

    @property
    def has_val(self) -> bool:
        """Whether the dataset ships its own validation split (`ImageData.val`)."""
        return False

    def fingerprint(self) -> str:
        """Identifies the data when the name alone does not (e.g. an image folder)."""
        return ""

    def pool_counts(self) -> list[int]:
        return np.bincount(self.train_targets(), minlength=len(self.classes)).tolist()
