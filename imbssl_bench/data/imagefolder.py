"""A folder of images: ``DIR/train/<class>/*`` and ``DIR/test/<class>/*``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imbssl_bench.data.base import DatasetSource, ImageData, ImageSplit
from imbssl_bench.data.filehash import tree_fingerprint
from imbssl_bench.errors import UserError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff"}


class ImageFolder(DatasetSource):
    name = "imagefolder"
    description = "any image tree DIR/train/<class>/* + DIR/test/<class>/* (square, one size)"
    needs = (
        "--data-root DIR with train/<class>/ and test/<class>/ (e.g. the unpacked "
        "CIFAR-10 JPEG zip)"
    )

    def __init__(self, root: Path | None) -> None:
        super().__init__(root)
        if root is None:
            raise UserError(
                "dataset 'imagefolder' needs --data-root DIR (with DIR/train/<class>/ "
                "and DIR/test/<class>/)"
            )
        if not root.is_dir():
            raise UserError(
                f"data root '{root}' does not exist; pass --data-root DIR with "
                "DIR/train/<class>/* and DIR/test/<class>/*"
            )
        for split in ("train", "test"):
            if not (root / split).is_dir():
                raise UserError(
                    f"data root '{root}' has no '{split}/' folder; imagefolder expects "
                    f"{root}/train/<class>/* and {root}/test/<class>/*"
                )
        self.display_name = f"imagefolder ({root.resolve().name})"

    def _files(self, split: str) -> tuple[list[Path], np.ndarray]:
        folder = self.root / split
        classes = (
            self.classes
            if split == "test"
            else sorted(d.name for d in folder.iterdir() if d.is_dir())
        )
        files: list[Path] = []
        labels: list[int] = []
        for label, cls in enumerate(classes):
            cls_dir = folder / cls
            if not cls_dir.is_dir():
                raise UserError(
                    f"class '{cls}' is in train/ but not in '{folder}'; "
                    "train/ and test/ need the same class folders"
                )
            found = sorted(p for p in cls_dir.iterdir() if p.suffix.lower() in EXTENSIONS)
            if not found:
                raise UserError(
                    f"class folder '{cls_dir}' holds no images "
                    f"({', '.join(sorted(EXTENSIONS))}); add images or remove it"
                )
            files += found
            labels += [label] * len(found)
        if not files:
            raise UserError(f"no class folders in '{folder}'; expected {folder}/<class>/*")
        return files, np.asarray(labels, dtype=np.int64)

    @cached_property
    def _train_files(self) -> tuple[list[Path], np.ndarray]:
        return self._files("train")

    @cached_property
    def _test_files(self) -> tuple[list[Path], np.ndarray]:
        return self._files("test")

    @cached_property
    def classes(self) -> list[str]:  # type: ignore[override]
        folder = self.root / "train"
        names = sorted(d.name for d in folder.iterdir() if d.is_dir())
        if not names:
            raise UserError(f"no class folders in '{folder}'; expected {folder}/<class>/*")
        return names

    def train_targets(self) -> np.ndarray:
        return self._train_files[1]

    @cached_property
    def image_size(self) -> int:  # type: ignore[override]
        first = self._train_files[0][0]
        with Image.open(first) as im:
            w, h = im.size
        if w != h:
            raise UserError(f"'{first}' is {w}x{h}; imagefolder needs square images of one size")
        return w

    @cached_property
    def _fingerprint(self) -> str:
        return tree_fingerprint(self.root, self._train_files[0] + self._test_files[0])

    def fingerprint(self) -> str:
        """Class names, file names, sizes and bytes of every image (hashes cached by mtime):
        two trees with other content never share run ids."""
        return self._fingerprint

    def _decode(self, files: list[Path]) -> torch.Tensor:
        size = self.image_size

        def read(path: Path) -> np.ndarray:
            try:
                with Image.open(path) as im:
                    arr = np.asarray(im.convert("RGB"))
            except OSError as exc:
                raise UserError(
                    f"cannot read image '{path}' ({exc}); remove or replace it"
                ) from None
            if arr.shape[:2] != (size, size):
                raise UserError(
                    f"'{path}' is {arr.shape[1]}x{arr.shape[0]} but the first image is "
                    f"{size}x{size}; resize the folder to one size"
                )
            return arr

        with ThreadPoolExecutor(max_workers=4) as pool:
            arrays = list(pool.map(read, files, chunksize=256))
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def _load(self) -> ImageData:
        train_files, train_labels = self._train_files
        test_files, test_labels = self._test_files
        return ImageData(
            classes=self.classes,
            train=ImageSplit(self._decode(train_files), torch.from_numpy(train_labels)),
            test=ImageSplit(self._decode(test_files), torch.from_numpy(test_labels)),
        )
