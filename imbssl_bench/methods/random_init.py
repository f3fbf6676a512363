"""The untrained-backbone control: every table needs the floor that training must beat."""

from __future__ import annotations

from imbssl_bench.methods.base import Method


class RandomInit(Method):
    name = "random"
    description = "control: the randomly initialised backbone, no pre-training"
    trains = False
