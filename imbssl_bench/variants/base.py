"""The `base` variant: plain pre-training of the method on the subset."""

from __future__ import annotations

import time
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
    t0 = time.perf_counter()
    stats, reused = train_base(ctx)
    # what the weights cost to train (when reused, too: the record states their compute)
    compute = stage_compute(SimpleNamespace(**stats), ctx.config.train.batch_size)
    if reused:  # another grid kept these weights; report this run's own (loading) time
        stats = {**stats, "reused_weights": True, "wall_s": round(time.perf_counter() - t0, 3)}
    return PretrainResult(ctx.method.backbone, stats, compute=compute)


# registered under the `imbssl_bench.variants` entry points (pyproject.toml)
BASE = Variant("base", "plain pre-training of the method on the subset", _base)
