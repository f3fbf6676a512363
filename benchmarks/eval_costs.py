"""Per-run evaluation costs on an image folder: JPEG decode once, frozen-feature throughput.

Usage: python benchmarks/eval_costs.py DATA_ROOT [backbone ...]
(DATA_ROOT: e.g. the unpacked ../shared/datasets/cifar10-jpeg.zip). Run nothing else meanwhile:
two torch processes on 2 cores slow each other several-fold.
"""

from __future__ import annotations

import sys
import time

from imbssl_bench.data import create_dataset
from imbssl_bench.evaluation.features import extract_features
from imbssl_bench.methods.backbones import create_backbone


def main(root: str, backbones: list[str]) -> None:
    start = time.perf_counter()
    data = create_dataset("imagefolder", root).load()
    print(f"decode {len(data.train) + len(data.test)} images: {time.perf_counter() - start:.1f} s")
    images = data.test.images
    for name in backbones:
        backbone, _ = create_backbone(name, "timm")
        extract_features(backbone, images[:512], images.shape[-1])  # warm-up
        start = time.perf_counter()
        extract_features(backbone, images, images.shape[-1])
        seconds = time.perf_counter() - start
        print(
            f"{name} features: {len(images) / seconds:.0f} img/s ({seconds:.1f} s per "
            f"{len(images)})"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or ["resnet18", "resnet10t"])
