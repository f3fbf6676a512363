"""A folder of images: ``DIR/train/<class>/*`` and ``DIR/test/<class>/*``, any sizes."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from imbssl_bench.data.files import FileDataset
from imbssl_bench.errors import UserError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff"}


class ImageFolder(FileDataset):
    name = "imagefolder"
    description = (
        "any image tree DIR/train/<class>/* + DIR/test/<class>/* (any sizes; streamed when "
        "they differ or do not fit in memory)"
    )
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

    @cached_property
    def classes(self) -> list[str]:  # type: ignore[override]
        folder = self.root / "train"
        names = sorted(d.name for d in folder.iterdir() if d.is_dir())
        if not names:
            raise UserError(f"no class folders in '{folder}'; expected {folder}/<class>/*")
        return names

    def _list(self, split: str) -> tuple[list[str], np.ndarray]:
        folder = self.root / split
        files: list[str] = []
        labels: list[int] = []
        for label, cls in enumerate(self.classes):
            cls_dir = folder / cls
            if not cls_dir.is_dir():
                raise UserError(
                    f"class '{cls}' is in train/ but not in '{folder}'; "
                    "train/ and test/ need the same class folders"
                )
            found = sorted(p.name for p in cls_dir.iterdir() if p.suffix.lower() in EXTENSIONS)
            if not found:
                raise UserError(
                    f"class folder '{cls_dir}' holds no images "
                    f"({', '.join(sorted(EXTENSIONS))}); add images or remove it"
                )
            files += [f"{split}/{cls}/{name}" for name in found]
            labels += [label] * len(found)
        return files, np.asarray(labels, dtype=np.int64)
