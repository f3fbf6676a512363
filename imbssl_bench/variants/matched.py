"""`matched`: the compute-matched control. Plain `base` training of the method for as many
forward-backward passes as a remedy spends: ``round(epochs * matched_factor)`` epochs, the
cosine schedule over the whole run. The factor is fixed at planning time (by default the
grid's costliest other variant of the same method, ratio and seed, `Variant.cost`), so the
run id names it; the factor the whole epochs achieve must be within `TOLERANCE` of it."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from imbssl_bench.api import (
    PretrainContext,
    PretrainResult,
    RunConfig,
    UserError,
    Variant,
    stage_compute,
)

TOLERANCE = 0.05  # the most the epochs' factor may differ from the planned one, relative


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
        raise UserError(f"matched_factor = {factor} must be a finite number > 0")
    epochs = _rounded(factor, cfg.train.epochs)
    if args.matched_epochs not in (None, epochs):
        raise UserError(
            f"matched_epochs {args.matched_epochs} disagrees with matched_factor = {factor:g} "
            f"x {cfg.train.epochs} epochs = {epochs}; give only the factor"
        )
    _check_achieved(factor, cfg.train.epochs, epochs)
    return MatchedArgs(factor, epochs)


def _rounded(factor: float, epochs: int) -> int:
    return max(1, math.floor(epochs * factor + 0.5))  # nearest, halves up


def _check_achieved(factor: float, epochs: int, matched_epochs: int) -> None:
    """Refuse whole epochs that miss `factor` by more than `TOLERANCE`, naming the smallest
    number of base epochs whose rounding would match it."""
    achieved = matched_epochs / epochs
    if abs(achieved / factor - 1) <= TOLERANCE:
        return
    enough = next(
        e for e in itertools.count(epochs) if abs(_rounded(factor, e) / e / factor - 1) <= TOLERANCE
    )
    raise UserError(
        f"matched: x{factor:g} of {epochs} epoch(s) trains {matched_epochs} epoch(s), "
        f"x{achieved:.3g}, not the planned x{factor:g}; --epochs {enough} would match "
        f"({_rounded(factor, enough)} epochs)"
    )


def _matched(ctx: PretrainContext) -> PretrainResult:
    cfg, args = ctx.config, MatchedArgs(**ctx.config.variant_args)
    if args.matched_epochs is None:
        raise ValueError("matched needs a resolved matched_epochs (see grid.match_compute)")
    ctx.reporter.stage("pre-training")
    stats = ctx.fit_stage("matched", ctx.method, draws="base", epochs=args.matched_epochs)
    achieved = round(args.matched_epochs / cfg.train.epochs, 4)
    matched = {"factor": args.matched_factor, "epochs": args.matched_epochs, "achieved": achieved}
    return PretrainResult(
        ctx.method.backbone,
        stats.as_record(),
        {"matched": {**matched, "to": list(ctx.matched_to)}},
        compute=stage_compute(stats, cfg.train.batch_size),
    )


def _cost(args: dict[str, Any], cfg: RunConfig) -> float:
    return args["matched_factor"] or 1.0


# registered under the `imbssl_bench.variants` entry points (pyproject.toml)
MATCHED = Variant(
    "matched",
    "control: plain base training for as many forward-backward passes as the grid's "
    "costliest other variant (or matched_factor x base)",
    _matched,
    Args=MatchedArgs,
    resolve=resolve_matched,
    needs_training=True,
    cost=_cost,
)
