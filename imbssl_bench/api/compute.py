"""What a variant's pre-training spent (`Compute`), and the record's ``compute`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imbssl_bench.config import RunConfig


@dataclass(frozen=True)
class Compute:
    """What a variant's pre-training spent, all stages together. A *pass* is one
    forward-backward pass of the trained model over one batch of the config's size: a SAM step
    is 2 passes, a step on a batch half that size 0.5 (the experts' frozen forwards during
    distillation are not passes; they are in the wall time)."""

    steps: int  # optimiser steps
    passes: float
    wall_s: float  # the training stages and the work between them (clustering, KDE)
    earlier_wall_s: float = 0.0  # of wall_s: what processes before this one spent (resumed)


def stage_compute(stats: Any, batch_size: int, passes_per_step: float = 1.0) -> Compute:
    """The `Compute` of one stage from its `TrainStats` (``fit_stage``'s result) for a config
    batch of `batch_size`; `passes_per_step`: e.g. 2 for a SAM step."""
    share = stats.batch_size / batch_size
    passes = stats.steps * passes_per_step * share
    return Compute(stats.steps, passes, stats.wall_s, getattr(stats, "earlier_wall_s", 0.0))


def total_compute(*parts: Compute, extra_wall_s: float = 0.0) -> Compute:
    """Several stages' compute added up (`extra_wall_s`: work between them)."""
    return Compute(
        sum(p.steps for p in parts),
        sum(p.passes for p in parts),
        sum(p.wall_s for p in parts) + extra_wall_s,
        sum(p.earlier_wall_s for p in parts),
    )


def planned_base(cfg: RunConfig, n_train: int) -> Compute:
    """What plain `base` of `cfg` plans to spend on `n_train` images (wall 0: unknown): the
    drop_last loader's ``n_train // batch`` steps per epoch, the batch capped by the subset."""
    batch = min(cfg.train.batch_size, n_train)
    steps = cfg.train.epochs * (n_train // batch) if batch else 0
    return Compute(steps, steps * batch / cfg.train.batch_size, 0.0)


def compute_section(
    compute: Compute | None,
    train: dict[str, Any],
    cfg: RunConfig,
    n_train: int,
    stages: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The record's ``compute``: what the run spent and its ratio to the planned `base` of the
    same config, with its training `stages` (name, epochs, steps, images, batch, reused)
    when there are several. `compute` None: untrained if `train` says 0 steps (zeros), else
    unknown (a variant that does not state it: None, never a guess)."""
    if compute is None:
        if train.get("steps", 0):
            return None
        compute = Compute(0, 0.0, 0.0)
    base = planned_base(cfg, n_train)

    def ratio(spent: float, planned: float) -> float | None:
        return round(spent / planned, 4) if planned else (0.0 if not spent else None)

    return {
        "steps": compute.steps,
        "passes": round(compute.passes, 3),
        "wall_s": round(compute.wall_s, 3),
        "base_steps": base.steps,
        "base_passes": round(base.passes, 3),
        "steps_vs_base": ratio(compute.steps, base.steps),
        "passes_vs_base": ratio(compute.passes, base.passes),
        **({"stages": stages} if stages and len(stages) > 1 else {}),
    }
