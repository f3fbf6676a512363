"""What every dataset provides: class names, cheap train labels, and images decoded once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class ImageSplit:
    """Images as one uint8 tensor ``(N, 3, H, W)`` and labels as int64 ``(N,)``."""

    images: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 (N, 3, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if len(self.images) != len(self.targets):
            raise ValueError("images and targets differ in length")

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: np.ndarray) -> ImageSplit:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageSplit(self.images[idx], self.targets[idx])


@dataclass(frozen=True)
class ImageData:
    classes: list[str]
    train: ImageSplit  # the balanced train pool; imbalanced subsets are drawn from it
    test: ImageSplit


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

    def load(self) -> ImageData:
        """All images, decoded on the first call only."""
        return self._data

    @property
    def image_size(self) -> int:
        """Native side length in pixels (images are square after loading)."""
        return int(self.load().train.images.shape[-1])

    def fingerprint(self) -> str:
        """Identifies the data when the name alone does not (e.g. an image folder)."""
        return ""

    def pool_counts(self) -> list[int]:
        return np.bincount(self.train_targets(), minlength=len(self.classes)).tolist()
