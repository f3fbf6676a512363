"""A split of a dataset: images with labels, either decoded once into memory (`ImageSplit`) or
kept on disk as files and decoded when read (`FileSplit`, any image sizes).

Both give what training and evaluation need: one image at a time as PIL (`reader`, for the
method's transform in DataLoader workers) and batches for frozen features (`batches`). The
evaluation view of an image is the same for both: the shorter side resized to the image size
(bilinear, antialiased) and the centre square cut out (`resize_center`); squares of one size are
resized on the feature device from memory and from files alike, so they give the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


def resize_center(x: Tensor, size: int) -> Tensor:
    """Float images ``(..., 3, H, W)`` -> ``(..., 3, size, size)``: torchvision's resize of
    the shorter side to `size` (bilinear, antialiased; untouched when it already is), then its
    centre crop.

    Examples:
        >>> resize_center(torch.rand(2, 3, 40, 60), 20).shape
        torch.Size([2, 3, 20, 20])
    """
    from torchvision.transforms.v2 import functional as TF

    return TF.center_crop(TF.resize(x, [size], antialias=True), [size, size])


def open_rgb(path: Path) -> Image.Image:
    """The image at `path` as RGB; an unreadable file is an `OSError` that names it."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except OSError as exc:
        raise OSError(f"cannot read image '{path}' ({exc}); remove or replace it") from None


def eval_tensor(image: Image.Image, size: int) -> Tensor:
    """One PIL image as the float ``(3, size, size)`` in [0, 1] that frozen features see."""
    x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return resize_center(x.float().div_(255.0)[None], size)[0]


@dataclass(frozen=True)
class ImageSplit:
    """Images as one uint8 tensor ``(N, 3, H, W)`` and labels as int64 ``(N,)``."""

    images: Tensor
    targets: Tensor

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

    def reader(self) -> Callable[[int], Image.Image]:
        """Image ``i`` as PIL, without a copy (the HWC array is made once, here)."""
        return _ArrayReader(self.images.permute(0, 2, 3, 1).contiguous().numpy())

    def batches(self, batch_size: int, image_size: int, workers: int = 0) -> Iterator[Tensor]:
        """uint8 chunks at the stored size (`extract_features` resizes them on its device)."""
        yield from self.images.split(batch_size)


@dataclass(frozen=True)
class FileSplit:
    """Image files under `root` (paths relative to it) and their labels: nothing is decoded
    until read, so memory does not grow with the number of images."""

    root: Path
    files: tuple[str, ...]
    targets: Tensor
    native_size: int | None = None  # the side of all images when they are squares of one size

    def __post_init__(self) -> None:
        if len(self.files) != len(self.targets):
            raise ValueError("files and targets differ in length")

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: np.ndarray) -> FileSplit:
        idx = np.asarray(indices, dtype=np.int64)
        files = tuple(self.files[i] for i in idx)
        return FileSplit(self.root, files, self.targets[torch.from_numpy(idx)], self.native_size)

    def path(self, i: int) -> Path:
        return self.root / self.files[i]

    def reader(self) -> Callable[[int], Image.Image]:
        """Image ``i`` decoded from its file (in the DataLoader worker that asks for it)."""
        return _FileReader(self)

    def batches(self, batch_size: int, image_size: int, workers: int = 0) -> Iterator[Tensor]:
        """Batches decoded in `workers` DataLoader processes: squares of one size as uint8 at
        that size (resized by `extract_features` on its device, as `ImageSplit`'s), other
        images as float ``(B, 3, image_size, image_size)`` in [0, 1] (`eval_tensor`). The
        loader has its own generator: reading features leaves the global RNG as it was."""
        loader = DataLoader(
            _EvalImages(self, None if self.native_size else image_size),
            batch_size=batch_size,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(0),
        )
        yield from loader


class _ArrayReader:  # picklable, for DataLoader workers that spawn
    def __init__(self, hwc: np.ndarray) -> None:
        self.hwc = hwc

    def __call__(self, i: int) -> Image.Image:
        return Image.fromarray(self.hwc[i])


class _FileReader:
    def __init__(self, split: FileSplit) -> None:
        self.split = split

    def __call__(self, i: int) -> Image.Image:
        return open_rgb(self.split.path(i))


class _EvalImages(Dataset):
    """Image ``i`` as `eval_tensor` at `size`, or (None) as uint8 ``(3, H, W)`` unresized."""

    def __init__(self, split: FileSplit, size: int | None) -> None:
        self.split, self.size = split, size

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> Tensor:
        image = open_rgb(self.split.path(i))
        if self.size is None:
            return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        return eval_tensor(image, self.size)


Split = ImageSplit | FileSplit
