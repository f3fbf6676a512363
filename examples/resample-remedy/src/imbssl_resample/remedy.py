"""`density-resample`: continue the `base` pre-training on images drawn, each epoch, with
probability proportional to how sparse their neighbourhood is in the base's features.

The rare classes of a long-tailed set sit in sparse regions of a balanced-ish feature space
(the observation behind rwSAM's density weights, Liu et al., ICLR 2022, arXiv 2110.05025), so
drawing sparse images more often shows the model more of the tail without using a label.
Sparsity is an image's distance to its `resample_k`-th nearest neighbour (scikit-learn's
NearestNeighbors, cosine on the frozen features), raised to `resample_power`; the weights
are recomputed from the current model at the start of every epoch of the second stage.

It shows the sampler hook of `PretrainContext.fit_stage`, frozen features (`ctx.features`),
the reused `base` stage (`train_base`), per-image losses of the last epoch, the compute of
two stages and the planned `cost` that the `matched` control trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from imbssl_bench.api import (
    PretrainContext,
    PretrainResult,
    RunConfig,
    Variant,
    check_range,
    from_rank_zero,
    stage_compute,
    total_compute,
    train_base,
)


@dataclass(frozen=True)
class ResampleArgs:
    """Options: ``--variant-arg resample_k=20``; stored resolved in the record."""

    resample_epochs: int | None = None  # the second stage; None: the run's epochs (cost 2)
    resample_k: int = 10  # the neighbour whose distance measures sparsity
    resample_power: float = 1.0  # 0: uniform draws with replacement (a control of the hook)

    def __post_init__(self) -> None:
        check_range(self, "[1, inf)", "resample_k")
        check_range(self, "[0, inf)", "resample_power")
        if self.resample_epochs is not None:
            check_range(self, "[1, inf)", "resample_epochs")


def resolve(args: ResampleArgs, cfg: RunConfig, num_classes: int) -> ResampleArgs:
    """Planning: the second stage's epochs default to the run's."""
    epochs = args.resample_epochs or cfg.train.epochs
    return ResampleArgs(epochs, args.resample_k, args.resample_power)


def sparsity_weights(features: np.ndarray, k: int, power: float) -> np.ndarray:
    """Each image's distance to its k-th neighbour (itself excluded) to the `power`, scaled to
    mean 1; a subset of at most `k` images is drawn uniformly."""
    n = len(features)
    if n <= k:
        return np.ones(n)
    distances, _ = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(features).kneighbors()
    sparse = np.maximum(distances[:, -1], 1e-12) ** power
    return sparse / sparse.mean()


def current_weights(ctx: PretrainContext, args: ResampleArgs) -> np.ndarray:
    """The sparsity weights of the subset under the method's current backbone; every process
    gets rank 0's, so all draw the same images."""
    feats = ctx.features(ctx.method.backbone)
    return from_rank_zero(sparsity_weights(feats, args.resample_k, args.resample_power))


def pretrain(ctx: PretrainContext) -> PretrainResult:
    args = ResampleArgs(**ctx.config.variant_args)
    base = train_base(ctx)  # the `base` run's kept weights when the grid has them
    ctx.reporter.stage("re-sampled pre-training")
    stats = ctx.fit_stage(
        "resample",
        ctx.method,
        epochs=args.resample_epochs,
        # called as each epoch starts, with the model as the last epoch left it: a resumed
        # stage draws what the uninterrupted one drew
        sampler_weights=lambda epoch: torch.as_tensor(current_weights(ctx, args)),
        image_losses=True,
    )
    compute = total_compute(base.compute, stage_compute(stats, ctx.config.train.batch_size))
    final = current_weights(ctx, args)
    targets = ctx.subset.targets.numpy()
    losses = stats.image_losses.numpy()  # NaN: not drawn in the last epoch
    per_class = [
        float(final[targets == c].mean()) if (targets == c).any() else None
        for c in range(ctx.method.num_classes)
    ]
    diagnostics = {
        "density_resample": {
            "base_reused": base.reused,
            "class_mean_weight": per_class,  # under the trained model (labels: diagnostics only)
            "last_epoch_images_drawn": int(np.isfinite(losses).sum()),
            "last_epoch_mean_loss": float(np.nanmean(losses)),
        }
    }
    return PretrainResult(ctx.method.backbone, stats.as_record(), diagnostics, compute)


def cost(variant_args: dict[str, Any], cfg: RunConfig) -> float:
    """Passes relative to plain base: the base stage and the second one (`matched` reads it)."""
    return 1.0 + variant_args["resample_epochs"] / cfg.train.epochs


DENSITY_RESAMPLE = Variant(
    "density-resample",
    "continue base pre-training on images drawn by their feature-space sparsity",
    pretrain,
    Args=ResampleArgs,
    resolve=resolve,
    needs_base_weights=True,
    needs_training=True,
    needs_per_example_loss=True,  # its per-image losses: refused at planning for the others
    needs_keyed_draws=True,  # sampler weights: --draws stream is refused at planning
    cost=cost,
)
