"""A test variant written against `imbssl_bench.api` alone that uses the per-image view hook:
each image's views are brightened by a number drawn from its loss in the previous epoch (the
hook's state: every epoch's number, saved in the stage's checkpoint)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image, ImageEnhance
from torch import Tensor

from imbssl_bench.api import (
    ImageViews,
    PerImageLoss,
    PretrainContext,
    PretrainResult,
    Variant,
    stage_compute,
)


class LossBrightness(ImageViews):
    """Brightness factor of image i in epoch e: 1 + its last-epoch loss / 10 (1 in epoch 0)."""

    def __init__(self, ctx: PretrainContext) -> None:
        self.transform = ctx.method.build_transform(ctx.image_size)
        self.module: PerImageLoss | None = None  # set once fit_stage has wrapped the method
        self.history: list[list[float]] = []  # every epoch's factors: the checkpointed state

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.module = pl_module

    def image_params(self, epoch: int) -> Tensor:
        losses = self.module.last_losses if epoch and self.module is not None else None
        factors = torch.ones(len(self.module.weights)) if losses is None else 1 + losses / 10
        factors = torch.nan_to_num(factors, nan=1.0).float()
        self.history.append(factors.tolist())
        return factors

    def views(self, image: Image.Image, param: float) -> Sequence[Tensor]:
        return self.transform(ImageEnhance.Brightness(image).enhance(param))

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = state_dict["history"]


def pretrain(ctx: PretrainContext) -> PretrainResult:
    hook = LossBrightness(ctx)
    stats = ctx.fit_stage("bright", ctx.method, views=hook, image_losses=True)
    factors = torch.tensor(hook.history[-1])
    diagnostics = {"views": {"epochs": len(hook.history), "mean_factor": float(factors.mean())}}
    compute = stage_compute(stats, ctx.config.train.batch_size)
    return PretrainResult(ctx.method.backbone, stats.as_record(), diagnostics, compute)


LOSS_BRIGHTNESS = Variant(
    "loss-brightness", "test: views brightened by each image's last loss", pretrain,
    needs_training=True, needs_per_example_loss=True, needs_keyed_draws=True,
)  # fmt: skip
