"""STL-10 (Coates et al. 2011) in torchvision's binary format: 5,000 labelled train images
(500 per class) and 8,000 test images of 96 px; the 100,000 unlabelled images are not used.
Liu et al. (ICLR 2022) probe CIFAR-10 models on it out of domain (`--transfer stl10:DIR`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from imbssl_bench.data.cifar import TorchvisionDataset


class STL10(TorchvisionDataset):
    name = "stl10"
    display_name = "STL-10"
    description = "STL-10 (5k train / 8k test, 10 classes, 96 px; the unlabelled split unused)"
    needs = "--data-root holding torchvision's stl10_binary (downloaded when online)"
    folder = "stl10_binary"
    torchvision_class = "STL10"
    native_size = 96

    def _open(self, train: bool, download: bool) -> Any:
        import torchvision.datasets as tvd

        return tvd.STL10(str(self.root), split="train" if train else "test", download=download)

    def _targets(self, ds: Any) -> Any:
        return ds.labels

    def _images(self, ds: Any) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(ds.data))  # already (N, 3, 96, 96)
