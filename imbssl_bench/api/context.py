"""What a variant gets (`PretrainContext`): the run, its method and subset, and the harness's
services: training stages that resume, log and key their draws (`fit_stage`), the `base`
pre-training (`train_base`), frozen features (`features`) and keyed generators (`rng`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning_fabric.utilities.rank_zero import rank_zero_only

from imbssl_bench.api.compute import Compute, stage_compute
from imbssl_bench.api.image_loss import PerImageLoss
from imbssl_bench.config import RunConfig
from imbssl_bench.data import Split
from imbssl_bench.evaluation.features import extract_features, feature_device
from imbssl_bench.methods.base import Method
from imbssl_bench.progress import Reporter
from imbssl_bench.training.draws import KEYED, SamplerWeights, draw_seed, reseed_after
from imbssl_bench.training.image_views import ImageViews
from imbssl_bench.training.trainer import StageObservers, TrainStats, fit, speed_up
from imbssl_bench.training.weights import belong_to_record, load_weights, save_weights


@dataclass
class PretrainContext:
    """Handed to `Variant.pretrain`. ``subset``: the run's imbalanced training images (its
    labels are ``subset.targets``; ``subset.subset(indices)`` is a split of some of them);
    ``method``: the built, untrained method (`train_base` trains it, or loads the weights its
    `base` run kept); ``make_method()``: a fresh untrained copy; ``config``: the resolved,
    frozen `RunConfig` (``config.variant_args``: the resolved options)."""

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
    # every stage trained or reused so far (the record's ``compute.stages``)
    stages: list[dict[str, Any]] = field(default_factory=list)

    def stage_dir(self, stage: str) -> Path | None:
        """Where the training stage `stage` keeps its epoch checkpoint."""
        return self.checkpoints / stage if self.checkpoints is not None else None

    def fit_stage(
        self,
        stage: str,
        module: Any,
        split: Split | None = None,
        config: RunConfig | None = None,
        callbacks: Sequence[Any] = (),
        drop_last: bool = True,
        monitored: bool = True,
        draws: str | None = None,
        *,
        epochs: int | None = None,
        sampler_weights: SamplerWeights | None = None,
        loss_weights: torch.Tensor | None = None,
        image_losses: bool = False,
        views: ImageViews | None = None,
    ) -> TrainStats:
        """Train `module` (a `Method`, or a `MethodWrapper` around one) for one stage named
        `stage`: its epoch checkpoints resume it, the run's loggers log it, the online kNN
        watches it unless not `monitored`. On `split` (default: the subset), with `config`
        (default: the run's) for `epochs` (default: the config's).

        Its random draws (batch order, views) are keyed by (seed, `draws`, epoch, image),
        `draws` defaulting to `stage`: a remedy's main stage passes ``"base"`` to see, epoch
        by epoch, the batches and views plain `base` sees. `sampler_weights`: each epoch draws
        its images with replacement, each with probability proportional to its weight (one per
        image of `split`, or a function of the epoch returning them: it must give the same
        weights in every process). `loss_weights` (one per image, mean 1 keeps the loss's
        scale) weight each image's loss; they and `image_losses` need a `Method` with
        per-image losses, and the returned stats then hold each image's mean loss over the
        last epoch (``image_losses``; NaN where an image was not drawn). `views`: a per-image
        view hook (`ImageViews`): each image's views from a number the hook gives it per
        epoch, its state kept in the stage's checkpoint."""
        split = self.subset if split is None else split
        config = config or self.config
        if epochs is not None:
            config = dataclasses.replace(
                config, train=dataclasses.replace(config.train, epochs=epochs)
            )
        kept = loss_weights is not None or image_losses
        trained = PerImageLoss(module, len(split), loss_weights) if kept else module
        stats = fit(
            trained,
            split,
            config,
            self.image_size,
            self.reporter,
            callbacks=list(callbacks),
            checkpoint_dir=self.stage_dir(stage),
            drop_last=drop_last,
            observers=self.observe(stage, monitored) if self.observe else None,
            stage=draws or stage,
            sampler_weights=sampler_weights,
            views=views,
        )
        self._trained(stage, stats, len(split))
        if not kept:
            return stats
        return dataclasses.replace(stats, image_losses=trained.last_losses.detach().cpu().clone())

    def _trained(self, stage: str, stats: TrainStats, images: int, reused: bool = False) -> None:
        """Note a finished stage for the record (``compute.stages``)."""
        row = {"stage": stage, "epochs": stats.epochs, "steps": stats.steps, "images": images}
        self.stages.append({**row, "batch_size": stats.batch_size, "reused": reused})

    def features(
        self,
        backbone: torch.nn.Module,
        split: Split | None = None,
        device: str | torch.device | None = None,
    ) -> np.ndarray:
        """Frozen features ``(N, D)`` of `split` (default: the subset) as evaluation computes
        them: resized, centre-cropped, normalised like the method's views; on `device`
        (default: the run's GPU if it may use one, else the CPU; in a training hook pass the
        module's), where `backbone` stays. Each process computes its own: pass results that
        every process must share through `from_rank_zero`."""
        cfg = self.config
        return extract_features(
            backbone,
            self.subset if split is None else split,
            self.image_size,
            cfg.eval.feature_batch_size,
            device or feature_device(cfg.runtime.accelerator),
            self.method.input_normalization(self.image_size),
        )

    def seed(self, *key: int | str) -> int:
        """A 32-bit seed (what scikit-learn, numpy and torch all take) drawn from the
        experiment and `key` (e.g. ``("kmeans", 3)``): the same in every process and on every
        resume, unrelated across keys."""
        return draw_seed(self.config.seed, *key) % 2**32

    def rng(self, *key: int | str) -> np.random.Generator:
        """A numpy generator seeded by `seed(*key)`: draws that no global stream can move."""
        return np.random.default_rng(self.seed(*key))


@dataclass(frozen=True)
class BaseTraining:
    """`train_base`'s result: the base stage's stats (kept from its `base` run when
    `reused`) and their compute."""

    stats: TrainStats
    reused: bool
    compute: Compute


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


def _stats(saved: dict[str, Any]) -> TrainStats:
    names = {f.name for f in dataclasses.fields(TrainStats)} - {"image_losses"}
    return TrainStats(**{k: v for k, v in saved.items() if k in names})


def train_base(ctx: PretrainContext) -> BaseTraining:
    """Train ``ctx.method`` plainly (stage ``base``), or load the weights its `base` run kept
    (while its ``ok`` record names them: training/weights.py) into it. The `base` run itself
    always trains, and keeps its weights for the variants of its config."""
    path = ctx.base_weights
    keeps = ctx.config.variant == "base"
    valid = path is not None and not keeps and path.is_file() and belong_to_record(path)
    saved = _readable_weights(path, ctx.method) if valid else None  # type: ignore[arg-type]
    batch = ctx.config.train.batch_size
    if saved is not None:
        ctx.method.load_state_dict(saved["state_dict"])
        speed_up(ctx.method, ctx.config)  # the memory format a freshly trained base has
        if ctx.config.train.draws == KEYED:
            reseed_after(ctx.config.seed, "base")  # the draws after it, as if trained here
        stats = _stats(saved["train"])
        ctx._trained("base", stats, len(ctx.subset), reused=True)
        return BaseTraining(stats, True, stage_compute(stats, batch))
    ctx.reporter.stage("pre-training")
    stats = ctx.fit_stage("base", ctx.method)
    if path is not None and keeps and rank_zero_only.rank == 0:
        save_weights(path, {"state_dict": ctx.method.state_dict(), "train": stats.as_record()})
    return BaseTraining(stats, False, stage_compute(stats, batch))
