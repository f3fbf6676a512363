"""`restarts`: warm restarts around any method's pre-training (SGDR, Loshchilov & Hutter,
ICLR 2017, arXiv 1608.03983): the run's cosine schedule repeated `cycles` times in a row,
the learning rate restarting each time while the weights carry over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imbssl_bench.api import (
    PretrainContext,
    PretrainResult,
    RunConfig,
    Variant,
    check_range,
    stage_compute,
    total_compute,
)


@dataclass(frozen=True)
class RestartsArgs:
    """Options: `--variant-arg cycles=3` / `[variant_args]`; stored resolved in the record."""

    cycles: int = 2  # SGDR's cycles; each one the run's epochs (their T_mult = 1)

    def __post_init__(self) -> None:
        check_range(self, "[1, inf)", "cycles")


def pretrain(ctx: PretrainContext) -> PretrainResult:
    """Train the method `cycles` times with the run's schedule, each cycle a stage of its own
    (its epoch checkpoint resumes it; a finished cycle's checkpoint restores its weights)."""
    args = RestartsArgs(**ctx.config.variant_args)
    stages = []
    for cycle in range(args.cycles):
        ctx.reporter.stage(f"pre-training, cycle {cycle + 1}/{args.cycles}")
        stages.append(ctx.fit_stage(f"cycle-{cycle}", ctx.method))  # resumed, logged, watched
    last = stages[-1].as_record()
    train = {
        **last,
        "epochs": sum(s.epochs for s in stages),
        "steps": sum(s.steps for s in stages),
        "wall_s": round(sum(s.wall_s for s in stages), 3),
    }
    batch = ctx.config.train.batch_size
    compute = total_compute(*(stage_compute(s, batch) for s in stages))
    losses = [s.final_loss for s in stages]
    return PretrainResult(ctx.method.backbone, train, {"restarts": {"final_loss": losses}}, compute)


def cost(variant_args: dict[str, Any], cfg: RunConfig) -> float:
    """Passes relative to plain base: one base schedule per cycle (`matched` reads it)."""
    return float(variant_args["cycles"])


RESTARTS = Variant(
    "restarts",
    "warm restarts: the cosine schedule repeated `cycles` times (SGDR)",
    pretrain,
    Args=RestartsArgs,
    needs_training=True,
    cost=cost,
)
