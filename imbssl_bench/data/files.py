"""Datasets of image files (``imagefolder``, ``filelist``): decoded once into memory when the
images are squares of one size that fit the RAM budget, streamed from disk otherwise.

Streaming keeps only the file names in memory; each image is decoded in a DataLoader worker
when a batch needs it, and the method's transform crops and resizes it to the image size, so
memory grows with workers x batch, not with the dataset. Both storages give the same images to
training (the same PIL image from the same file) and to evaluation (`splits.eval_tensor`), so
the choice is not part of a run's identity; the record says which one ran.
"""

from __future__ import annotations

import dataclasses
import math
import os
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imbssl_bench.data.base import DatasetSource, ImageData
from imbssl_bench.data.filehash import per_file, tree_fingerprint
from imbssl_bench.data.splits import FileSplit, ImageSplit
from imbssl_bench.errors import UserError

RAM_BUDGET_ENV = "IMBSSL_BENCH_RAM_BUDGET"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``"8G"`` -> 8 GiB; plain numbers are bytes.

    Examples:
        >>> parse_bytes("8G"), parse_bytes("512m"), parse_bytes("1000")
        (8589934592, 536870912, 1000)
    """
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{RAM_BUDGET_ENV}='{text}' is not a size; write e.g. 8G or 512M")
    return int(value * _UNITS[unit])


def ram_budget() -> int:
    """Bytes of decoded images a dataset may hold in memory: ``$IMBSSL_BENCH_RAM_BUDGET``
    (e.g. ``8G``), else half of the machine's physical memory."""
    if os.environ.get(RAM_BUDGET_ENV):
        return parse_bytes(os.environ[RAM_BUDGET_ENV])
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


def _header_size(path: Path) -> list[int]:
    """[width, height] from the file's header (nothing decoded)."""
    try:
        with Image.open(path) as im:
            return list(im.size)
    except OSError as exc:
        raise UserError(f"cannot read image '{path}' ({exc}); remove or replace it") from None


def _is_size(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)


class FileDataset(DatasetSource):
    """A dataset whose images are files under `root`: subclasses say which files and labels
    make each split (`_list`) and what the classes are called."""

    @abstractmethod
    def _list(self, split: str) -> tuple[list[str], np.ndarray]:
        """Paths relative to `root` and int labels of ``train``, ``test`` (or ``val``)."""

    def _split(self, split: str) -> FileSplit:
        files, labels = self._list(split)
        return FileSplit(self.root, tuple(files), torch.from_numpy(labels))

    @cached_property
    def _files(self) -> dict[str, FileSplit]:
        return {split: self._split(split) for split in self.splits}

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this dataset has: train and test, and val where it ships one."""
        return ("train", "test")

    @property
    def has_val(self) -> bool:
        return "val" in self.splits

    def train_targets(self) -> np.ndarray:
        return self._files["train"].targets.numpy()

    def _paths(self) -> list[Path]:
        return [s.path(i) for s in self._files.values() for i in range(len(s))]

    @cached_property
    def sizes(self) -> list[tuple[int, int]]:
        """(width, height) of every image (headers only, cached per file)."""
        found = per_file(self.root, self._paths(), _header_size, "sizes", _is_size)
        return [(w, h) for _, (w, h) in found]

    @cached_property
    def native_size(self) -> int | None:
        """The side of the images when all are squares of one size, else None."""
        kinds = set(self.sizes)
        (w, h) = next(iter(kinds))
        return w if len(kinds) == 1 and w == h else None

    @property
    def image_size(self) -> int:
        if self.native_size is None:
            kinds = sorted(set(self.sizes))
            a, b = kinds[0], kinds[-1]
            raise UserError(
                f"the images under '{self.root}' are not squares of one size (e.g. "
                f"{a[0]}x{a[1]} and {b[0]}x{b[1]}); pass --image-size N, the side the "
                "training views and the evaluation centre crop are resized to"
            )
        return self.native_size

    def decoded_bytes(self) -> int:
        return sum(3 * w * h for w, h in self.sizes)

    @cached_property
    def _fingerprint(self) -> str:
        return tree_fingerprint(self.root, self._paths())

    def fingerprint(self) -> str:
        """Names, sizes and bytes of every image (hashes cached by file state): two trees
        with other content never share run ids."""
        return self._fingerprint

    def choose_storage(self, streaming: bool | None) -> str:
        """Streaming when asked, or (None) when the images are not squares of one size or
        their decoded bytes exceed `ram_budget`."""
        if streaming:
            return "streaming"
        size, need, budget = self.native_size, self.decoded_bytes(), ram_budget()
        if size is not None and need <= budget:
            return "memory"
        if streaming is None:
            return "streaming"
        why = (
            "are not squares of one size"
            if size is None
            else f"need {need / 2**30:.1f} GiB decoded, over the RAM budget of "
            f"{budget / 2**30:.1f} GiB (${RAM_BUDGET_ENV})"
        )
        raise UserError(f"--in-memory: the images under '{self.root}' {why}; drop --in-memory")

    def load(self, storage: str = "memory") -> ImageData:
        if storage == "streaming":
            return self._streamed
        self.choose_storage(False)  # a clear error before decoding what cannot be held
        return self._data

    @cached_property
    def _streamed(self) -> ImageData:
        f = {
            k: dataclasses.replace(s, native_size=self.native_size) for k, s in self._files.items()
        }
        return ImageData(self.classes, f["train"], f["test"], f.get("val"))

    def _decode(self, split: FileSplit) -> ImageSplit:
        read = split.reader()

        def array(i: int) -> np.ndarray:
            try:
                return np.asarray(read(i))
            except OSError as exc:
                raise UserError(str(exc)) from None

        with ThreadPoolExecutor(max_workers=4) as pool:
            arrays = list(pool.map(array, range(len(split)), chunksize=256))
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        return ImageSplit(images, split.targets)

    def _load(self) -> ImageData:
        f = self._files
        val = self._decode(f["val"]) if "val" in f else None
        return ImageData(self.classes, self._decode(f["train"]), self._decode(f["test"]), val)
