"""`matched`: the compute-matched control. Plain `base` training of the method for as many
forward-backward passes as a remedy spends: ``round(epochs * matched_factor)`` epochs, the
cosine schedule over the whole run. The factor is fixed at planning time (by default the
grid's costliest other variant of the same method, ratio and seed, `Variant.cost`), so the
run id names it."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError
from imbssl_bench.training import fit
from imbssl_bench.variants.api import (
    VARIANTS,
    PretrainContext,
    PretrainResult,
    Variant,
    stage_compute,
)


@dataclass(frozen=True)
class MatchedArgs:
    matched_factor: float | None = None  # passes vs base; None: the grid's costliest variant
    matched_epochs: int | None = None  # resolved: round(epochs * matched_factor)


def resolve_matched(args: MatchedArgs, cfg: RunConfig, num_classes: int) -> MatchedArgs:
    """The epochs of the given factor; without one, `args` as they are (the grid plans the
    factor from its other variants, then resolves again)."""
    if args.matched_factor is None:
        return args
    factor = float(args.matched_factor)
    if not (math.isfinite(factor) and factor > 0):
        raise UserError(f"--matched-factor {factor} must be a finite number > 0")
    epochs = max(1, math.floor(cfg.train.epochs * factor + 0.5))  # nearest, halves up
    if args.matched_epochs not in (None, epochs):
        raise UserError(
            f"matched_epochs {args.matched_epochs} disagrees with --matched-factor {factor:g} "
            f"x {cfg.train.epochs} epochs = {epochs}; give only the factor"
        )
    return MatchedArgs(factor, epochs)


def _matched(ctx: PretrainContext) -> PretrainResult:
    cfg, args = ctx.config, MatchedArgs(**ctx.config.variant_args)
    if args.matched_epochs is None:
        raise ValueError("matched needs a resolved matched_epochs (see grid.match_compute)")
    ctx.reporter.stage("pre-training")
    stats = fit(
        ctx.method,
        ctx.subset,
        dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=args.matched_epochs)),
        ctx.image_size,
        ctx.reporter,
        checkpoint_dir=ctx.stage_dir("matched"),
    )
    matched = {"factor": args.matched_factor, "epochs": args.matched_epochs}
    return PretrainResult(
        ctx.method.backbone,
        dataclasses.asdict(stats),
        {"matched": {**matched, "to": list(ctx.matched_to)}},
        compute=stage_compute(stats, cfg.train.batch_size),
    )


def _cost(args: dict[str, Any], cfg: RunConfig) -> float:
    return args["matched_factor"] or 1.0


VARIANTS.add(
    "matched",
    Variant(
        "matched",
        "control: plain base training for as many forward-backward passes as the grid's "
        "costliest other variant (or --matched-factor x base)",
        _matched,
        Args=MatchedArgs,
        resolve=resolve_matched,
        needs_training=True,
        cost=_cost,
    ),
)
