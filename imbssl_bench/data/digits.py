"""scikit-learn's bundled 8x8 digits: the offline default dataset, no download needed."""

from __future__ import annotations

import hashlib
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F

from imbssl_bench.data.base import DatasetSource, ImageData
from imbssl_bench.data.splits import ImageSplit

SPLIT_SEED = 0  # fixed: every run sees the same train pool and test split
TEST_FRACTION = 0.25
SIZE = 32  # upsampled from 8x8 so that CIFAR-style backbones and augmentations apply


class Digits(DatasetSource):
    name = "digits"
    display_name = "digits (sklearn, 32 px)"
    description = "scikit-learn's 8x8 digits (1,797 images, 10 classes), upsampled to 32 px"
    needs = "nothing: bundled with scikit-learn (offline)"

    @cached_property
    def _raw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        x_train, x_test, y_train, y_test = train_test_split(
            bunch.images,
            bunch.target,
            test_size=TEST_FRACTION,
            random_state=SPLIT_SEED,
            stratify=bunch.target,
        )
        return x_train, x_test, y_train.astype(np.int64), y_test.astype(np.int64)

    @property
    def classes(self) -> list[str]:
        return [str(d) for d in range(10)]

    @property
    def image_size(self) -> int:
        return SIZE

    def train_targets(self) -> np.ndarray:
        return self._raw[2]

    def fingerprint(self) -> str:
        """A hash of the split arrays scikit-learn gives (values, shapes and types)."""
        h = hashlib.sha256()
        for a in self._raw:
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:12]

    def _load(self) -> ImageData:
        x_train, x_test, y_train, y_test = self._raw
        return ImageData(
            classes=self.classes,
            train=ImageSplit(_to_rgb_uint8(x_train), torch.from_numpy(y_train)),
            test=ImageSplit(_to_rgb_uint8(x_test), torch.from_numpy(y_test)),
        )


def _to_rgb_uint8(images: np.ndarray) -> torch.Tensor:
    """(N, 8, 8) values in 0..16 -> (N, 3, SIZE, SIZE) uint8, bilinear upsampling."""
    x = torch.from_numpy(images).float().div(16.0).unsqueeze(1)
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return x.mul(255).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
