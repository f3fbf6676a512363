"""Presets: the backbone, image size and training budget a run uses unless flags say otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from imbssl_bench.registry import Registry


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    backbone: str
    stem: str
    epochs: int
    batch_size: int
    image_size: int | None = None  # None: the dataset's native size


PRESETS: Registry[Preset] = Registry("preset")
for _p in (
    Preset(
        "tiny",
        "digits on a 2-core CPU: under a minute per run (ResNet-10-T, timm stem)",
        backbone="resnet10t",
        stem="timm",
        epochs=8,
        batch_size=128,
    ),
    Preset(
        "quick",
        "CIFAR-sized data on a 2-core CPU: 2-3 min per run on 2,478 images, far from paper scale",
        backbone="resnet10t",
        stem="timm",
        epochs=15,
        batch_size=128,
    ),
    Preset(
        "standard",
        "GPU: ResNet-18 with CIFAR stem, 200 epochs, batch 512 (Lightly's CIFAR-10 benchmark)",
        backbone="resnet18",
        stem="cifar",
        epochs=200,
        batch_size=512,
    ),
):
    PRESETS.add(_p.name, _p)

DEFAULT_PRESET = {"digits": "tiny"}  # every other dataset: "quick"


def default_preset(dataset: str) -> str:
    return DEFAULT_PRESET.get(dataset, "quick")
