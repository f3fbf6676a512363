"""A minimal method plugin, written only against the public method API (as a third party would)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch.nn.functional as F
from lightly.transforms import SimSiamTransform
from torch import Tensor, nn

from imbssl_bench.api import Method


@dataclass(frozen=True)
class ToyArgs:
    dim: int = 16
    nan_at_step: int = -1  # a test hook: the loss is NaN from this optimisation step on
    # a test hook: from the second epoch on (a checkpoint exists), each step waits until this
    # file exists, and meanwhile `<pause_file>.<pid>.waiting` says that this process waits
    pause_file: str = ""

    def __post_init__(self) -> None:  # checked when the grid is planned
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, not {self.dim}")


class Toy(Method):
    name = "toy"
    description = "test plugin: cosine agreement of two views through a linear head"
    Args = ToyArgs

    def build(self) -> None:
        self.head = nn.Linear(self.feature_dim, self.args.dim)

    def build_transform(self, image_size: int):  # type: ignore[no-untyped-def]
        return SimSiamTransform(input_size=image_size, gaussian_blur=0.0)

    def before_step(self) -> None:
        go = Path(self.args.pause_file)
        if self.args.pause_file and self.epoch >= 1 and not go.exists():
            Path(f"{go}.{os.getpid()}.waiting").touch()
            while not go.exists():  # a test's Ctrl+C or kill -9 ends the wait
                time.sleep(0.05)

    def training_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        a, b = (self.head(self.backbone(v)) for v in views[:2])
        loss = (
            -(F.cosine_similarity(a, b.detach()).mean() + F.cosine_similarity(b, a.detach()).mean())
            / 2
        )
        if 0 <= self.args.nan_at_step <= self.step:
            loss = loss * float("nan")
        return loss
