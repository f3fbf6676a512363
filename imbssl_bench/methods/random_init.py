"""The untrained-backbone control: every table needs the floor that training must beat."""

from __future__ import annotations

from lightly.transforms.utils import IMAGENET_NORMALIZE

from imbssl_bench.methods.base import Method


class RandomInit(Method):
    name = "random"
    description = "control: the randomly initialised backbone, no pre-training"
    trains = False
    input_normalize = IMAGENET_NORMALIZE  # no transform: evaluated as Lightly's methods are
