"""The variant API: what a variant gets (`PretrainContext`) and gives back (`PretrainResult`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lightning_fabric.utilities.rank_zero import rank_zero_only
from torch import nn

from imbssl_bench.config import RunConfig, make_args
from imbssl_bench.data import Split
from imbssl_bench.methods import Method, NoArgs
from imbssl_bench.progress import Reporter
from imbssl_bench.training.draws import KEYED, reseed_after
from imbssl_bench.training.trainer import StageObservers, TrainStats, fit, speed_up
from imbssl_bench.training.weights import belong_to_record, load_weights, save_weights


@dataclass
class PretrainContext:
    config: RunConfig
    method: Method
    subset: Split
    image_size: int
    reporter: Reporter
    make_method: Callable[[], Method] | None = None  # a fresh, untrained copy of `method`
    base_weights: Path | None = None  # where the `base` run of this config keeps its weights
    checkpoints: Path | None = None  # the run's folder of per-stage `last.ckpt` (resume)
    matched_to: tuple[str, ...] = ()  # `matched`: the run ids of the grid whose compute it matches
    # the runner's loggers and online kNN for a stage: (stage, monitored) -> observers
    observe: Callable[[str, bool], StageObservers] | None = None

    def stage_dir(self, stage: str) -> Path | None:
        """Where the training stage `stage` keeps its epoch checkpoint."""
        return self.checkpoints / stage if self.checkpoints is not None else None

    def fit_stage(
        self,
        stage: str,
        module: Any,
        split: Split | None = None,
        config: RunConfig | None = None,
        callbacks: tuple[Any, ...] = (),
        drop_last: bool = True,
        monitored: bool = True,
        draws: str | None = None,
    ) -> TrainStats:
        """`fit` one training stage named `stage` (its checkpoints resume it, the run's
        loggers log it, and the online kNN watches it unless not `monitored`, e.g. the
        experts of cluster-distill): `module` on `split` (default: the subset) with `config`
        (default: the run's). Its random draws (batch order, views) are keyed by `draws`
        (default: `stage`): a remedy's main stage passes ``"base"`` to see, epoch by epoch,
        the batches and views plain `base` sees, so that remedy and controls are paired."""
        observers = self.observe(stage, monitored) if self.observe else None
        return fit(
            module,
            self.subset if split is None else split,
            config or self.config,
            self.image_size,
            self.reporter,
            callbacks=list(callbacks),
            checkpoint_dir=self.stage_dir(stage),
            drop_last=drop_last,
            observers=observers,
            stage=draws or stage,
        )


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
    """The `Compute` of one `fit` stage (`TrainStats`) for a config batch of `batch_size`."""
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
    compute: Compute | None, train: dict[str, Any], cfg: RunConfig, n_train: int
) -> dict[str, Any] | None:
    """The record's ``compute``: what the run spent and its ratio to the planned `base` of the
    same config. `compute` None: untrained if `train` says 0 steps (zeros), else unknown (a
    variant that does not state it: None, never a guess)."""
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
    }


@dataclass
class PretrainResult:
    backbone: nn.Module
    train: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    compute: Compute | None = None  # None: untrained (0 steps), else not stated (record: null)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    pretrain: Callable[[PretrainContext], PretrainResult]
    Args: type = NoArgs
    resolve: Callable[[Any, RunConfig, int], Any] | None = None  # (args, config, classes) -> args
    # the grid keeps the `base` run's weights for it; a callable decides per resolved
    # variant_args (rwsam: only with `rwsam_weights = "offline"`)
    needs_base_weights: bool | Callable[[dict[str, Any]], bool] = False
    needs_training: bool = False  # meaningless for methods that do not train (`random`)
    needs_per_example_loss: bool = False  # re-weights the method's per-example losses
    # (resolved variant_args, config) -> the forward-backward passes this variant plans to
    # spend relative to plain `base` of the same config (None: 1); `matched` reads it
    cost: Callable[[dict[str, Any], RunConfig], float] | None = None

    def resolve_args(self, values: dict[str, Any], cfg: RunConfig, num_classes: int) -> dict:
        """The variant's options with every default filled, as the record stores them."""
        args = make_args(self.Args, values, f"variant '{self.name}'")
        return dataclasses.asdict(self.resolve(args, cfg, num_classes) if self.resolve else args)

    def uses_base_weights(self, variant_args: dict[str, Any]) -> bool:
        """Whether a run with these resolved options starts from its config's `base` run."""
        needs = self.needs_base_weights
        return needs(variant_args) if callable(needs) else needs


TRAIN_STATS = ("epochs", "steps", "batch_size", "final_loss", "wall_s")


def _readable_weights(path: Path, method: Method) -> dict[str, Any] | None:
    """The kept weights if they fit `method` exactly (names and shapes), else None: an
    unreadable or foreign file is trained over, never half-loaded."""
    try:
        saved = load_weights(path)
        state, stats = saved["state_dict"], saved["train"]
    except Exception:
        return None
    mine = method.state_dict()
    fits = set(state) == set(mine) and all(state[k].shape == mine[k].shape for k in mine)
    return saved if fits and all(k in stats for k in TRAIN_STATS) else None


def train_base(ctx: PretrainContext) -> tuple[dict[str, Any], bool]:
    """Train ``ctx.method`` plainly, or load the weights its `base` run kept (while its ``ok``
    record names them: training/weights.py). Returns the base training's stats and whether
    they were reused. The `base` run itself always trains, and keeps its weights for later."""
    path = ctx.base_weights
    keeps = ctx.config.variant == "base"
    valid = path is not None and not keeps and path.is_file() and belong_to_record(path)
    saved = _readable_weights(path, ctx.method) if valid else None  # type: ignore[arg-type]
    if saved is not None:
        ctx.method.load_state_dict(saved["state_dict"])
        speed_up(ctx.method, ctx.config)  # the memory format a freshly trained base has
        if ctx.config.train.draws == KEYED:
            reseed_after(ctx.config.seed, "base")  # the draws after it, as if trained here
        return saved["train"], True
    ctx.reporter.stage("pre-training")
    stats = asdict(ctx.fit_stage("base", ctx.method))
    if path is not None and keeps and rank_zero_only.rank == 0:
        save_weights(path, {"state_dict": ctx.method.state_dict(), "train": stats})
    return stats, False
