"""The `base` variant: plain pre-training of the method on the subset."""

from __future__ import annotations

from imbssl_bench.api import Compute, PretrainContext, PretrainResult, Variant, train_base


def _base(ctx: PretrainContext) -> PretrainResult:
    if not ctx.method.trains:
        untrained = Compute(0, 0.0, 0.0)
        return PretrainResult(ctx.method.backbone, {"epochs": 0, "steps": 0}, compute=untrained)
    base = train_base(ctx)  # a base run always trains (its stage checkpoint resumes it)
    return PretrainResult(ctx.method.backbone, base.stats.as_record(), compute=base.compute)


# registered under the `imbssl_bench.variants` entry points (pyproject.toml)
BASE = Variant("base", "plain pre-training of the method on the subset", _base)
