"""The `base` variant: plain pre-training of the method on the subset."""

from __future__ import annotations

import time

from imbssl_bench.variants.api import VARIANTS, PretrainContext, PretrainResult, Variant, train_base


def _base(ctx: PretrainContext) -> PretrainResult:
    if not ctx.method.trains:
        return PretrainResult(ctx.method.backbone, {"epochs": 0, "steps": 0})
    t0 = time.perf_counter()
    stats, reused = train_base(ctx)
    if reused:  # another grid kept these weights; report this run's own (loading) time
        stats = {**stats, "reused_weights": True, "wall_s": round(time.perf_counter() - t0, 3)}
    return PretrainResult(ctx.method.backbone, stats)


VARIANTS.add("base", Variant("base", "plain pre-training of the method on the subset", _base))
