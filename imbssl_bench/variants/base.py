"""The `base` variant: plain pre-training of the method on the subset."""

from __future__ import annotations

from types import SimpleNamespace

from imbssl_bench.variants.api import (
    Compute,
    PretrainContext,
    PretrainResult,
    Variant,
    stage_compute,
    train_base,
)


def _base(ctx: PretrainContext) -> PretrainResult:
    if not ctx.method.trains:
        untrained = Compute(0, 0.0, 0.0)
        return PretrainResult(ctx.method.backbone, {"epochs": 0, "steps": 0}, compute=untrained)
    stats, _ = train_base(ctx)  # a base run always trains (its stage checkpoint resumes it)
    compute = stage_compute(SimpleNamespace(**stats), ctx.config.train.batch_size)
    return PretrainResult(ctx.method.backbone, stats, compute=compute)


# registered under the `imbssl_bench.variants` entry points (pyproject.toml)
BASE = Variant("base", "plain pre-training of the method on the subset", _base)
