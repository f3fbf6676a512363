"""Datasets in torchvision's format (CIFAR-10, CIFAR-100; STL-10 in `stl10`), downloaded
when online."""

from __future__ import annotations

import shutil
from functools import cached_property
from typing import Any

import numpy as np
import torch

from imbssl_bench.data.base import DatasetSource, ImageData
from imbssl_bench.data.filehash import tree_fingerprint
from imbssl_bench.data.splits import ImageSplit
from imbssl_bench.errors import UserError


class TorchvisionDataset(DatasetSource):
    """A dataset in torchvision's format under `root`, downloaded when online."""

    folder = ""
    torchvision_class = ""
    native_size = 32

    def __init__(self, root: Any, download: bool = True) -> None:
        super().__init__(root)
        if root is None:
            raise UserError(
                f"dataset '{self.name}' needs --data-root (the folder that holds or "
                f"will hold '{self.folder}')"
            )
        self.download = download

    def _split(self, train: bool) -> Any:
        expected = self.root / self.folder
        try:
            return self._open(train, download=False)
        except RuntimeError:
            pass  # not there (or corrupt): try to download when allowed
        if not self.download:
            raise UserError(
                f"{self.name} not found: expected torchvision's '{expected}'; "
                "put it there or allow downloading"
            )
        created = not self.root.exists()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            return self._open(train, download=True)
        except Exception as exc:  # offline, permission, checksum...
            if created:
                shutil.rmtree(self.root, ignore_errors=True)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(
                f"{self.name} not found at '{expected}' and the download failed "
                f"({reason}); copy torchvision's '{self.folder}' folder there, or "
                f"pass --data-root pointing at its parent"
            ) from None

    def _open(self, train: bool, download: bool) -> Any:
        """torchvision's dataset object for one split (raises RuntimeError when absent)."""
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.torchvision_class)
        return cls(str(self.root), train=train, download=download)

    def _targets(self, ds: Any) -> Any:
        return ds.targets

    def _images(self, ds: Any) -> torch.Tensor:
        """uint8 (N, 3, H, W) from torchvision's array."""
        return torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()

    @cached_property
    def _train(self) -> Any:
        return self._split(train=True)

    @property
    def classes(self) -> list[str]:
        return list(self._train.classes)

    @property
    def image_size(self) -> int:
        return self.native_size

    def train_targets(self) -> np.ndarray:
        return np.asarray(self._targets(self._train), dtype=np.int64)

    @cached_property
    def _fingerprint(self) -> str:
        self._train  # noqa: B018 (found or downloaded first)
        folder = self.root / self.folder
        return tree_fingerprint(folder, sorted(p for p in folder.rglob("*") if p.is_file()))

    def fingerprint(self) -> str:
        """The hashes of torchvision's files (cached by mtime)."""
        return self._fingerprint

    def _load(self) -> ImageData:
        def to_split(ds: Any) -> ImageSplit:
            targets = torch.as_tensor(np.asarray(self._targets(ds)), dtype=torch.long)
            return ImageSplit(self._images(ds), targets)

        return ImageData(self.classes, to_split(self._train), to_split(self._split(train=False)))


class CIFAR10(TorchvisionDataset):
    name = "cifar10"
    display_name = "CIFAR-10"
    description = "CIFAR-10 (50k train / 10k test, 10 classes, 32 px)"
    needs = "--data-root holding torchvision's cifar-10-batches-py (downloaded when online)"
    folder = "cifar-10-batches-py"
    torchvision_class = "CIFAR10"


class CIFAR100(TorchvisionDataset):
    name = "cifar100"
    display_name = "CIFAR-100"
    description = "CIFAR-100 (50k train / 10k test, 100 classes, 32 px)"
    needs = "--data-root holding torchvision's cifar-100-python (downloaded when online)"
    folder = "cifar-100-python"
    torchvision_class = "CIFAR100"
