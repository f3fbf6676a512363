"""`sam`, `rwsam`, `rwsam-oracle`: (re-weighted) sharpness-aware pre-training of any method
with per-example losses (Liu et al., ICLR 2022).

- `sam`: every weight 1 (the control for the re-weighting);
- `rwsam`: weights from a kNN Gaussian KDE on L2-normalised backbone features of the subset
  (no augmentation); labels are not used. `rwsam_weights` says whose features:
  - `inloop` (default): the model's own, first after `rwsam_warmup` epochs (weights 1
    before), then every `rwsam_refresh` epochs;
  - `offline`: the `base` run's of the same config (its kept weights, else trained here
    first), once; then a fresh model trains with SAM under these fixed weights, as the
    reference code does with its precomputed weight file;
- `rwsam-oracle`: weights 1 / (class count of the example), from the true labels: an
  upper-bound diagnostic, not a method.

A SAM step is two forward-backward passes (`Compute`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from scipy.stats import spearmanr

from imbssl_bench.api import (
    PretrainContext,
    PretrainResult,
    RunConfig,
    TrainStats,
    UserError,
    Variant,
    from_rank_zero,
    stage_compute,
    total_compute,
    train_base,
)
from imbssl_bench.variants.sam.density import class_weights, density_weights
from imbssl_bench.variants.sam.sam import SAMModule

WEIGHT_MODES = ("inloop", "offline")
SAM_PASSES = 2.0  # forward-backward passes per SAM step


@dataclass(frozen=True)
class SAMArgs:
    sam_rho: float = 0.5  # neighbourhood radius (the reference code's value, adaptive form)
    sam_adaptive: bool = True  # ASAM: perturbation scaled by |parameter|, as the reference code


@dataclass(frozen=True)
class RwSAMArgs(SAMArgs):
    rwsam_weights: str = "inloop"  # inloop: refreshed from the model trained; offline: see above
    rwsam_warmup: int | None = None  # inloop: epochs with weights 1 first; None: a fifth
    rwsam_refresh: int | None = None  # inloop: epochs between weight updates; None: a tenth
    rwsam_k: int = 20  # neighbours of the KDE
    rwsam_alpha: float = 1.0  # weight = density^(-alpha)
    rwsam_clip_min: float = 0.1  # weights are normalised to mean 1, then clipped to this range
    rwsam_clip_max: float = 10.0


def _check_sam(args: SAMArgs) -> None:
    if not (np.isfinite(args.sam_rho) and args.sam_rho >= 0):
        raise UserError(f"sam_rho = {args.sam_rho} must be a finite number >= 0")


def resolve_sam(args: SAMArgs, cfg: RunConfig, num_classes: int) -> SAMArgs:
    _check_sam(args)
    return dataclasses.replace(args, sam_rho=float(args.sam_rho))


def resolve_rwsam(args: RwSAMArgs, cfg: RunConfig, num_classes: int) -> RwSAMArgs:
    _check_sam(args)
    if args.rwsam_weights not in WEIGHT_MODES:
        raise UserError(f"rwsam_weights must be inloop or offline, not '{args.rwsam_weights}'")
    args = dataclasses.replace(
        args,
        sam_rho=float(args.sam_rho),
        rwsam_alpha=float(args.rwsam_alpha),
        rwsam_clip_min=float(args.rwsam_clip_min),
        rwsam_clip_max=float(args.rwsam_clip_max),
    )
    if args.rwsam_k < 1:
        raise UserError("rwsam_k must be >= 1")
    if not (np.isfinite(args.rwsam_alpha) and args.rwsam_alpha >= 0):
        raise UserError(f"rwsam_alpha = {args.rwsam_alpha} must be a finite number >= 0")
    if not 0 < args.rwsam_clip_min <= 1 <= args.rwsam_clip_max:
        raise UserError("rwsam weight clip range must satisfy 0 < min <= 1 <= max")
    if args.rwsam_weights == "offline":
        if args.rwsam_warmup is not None or args.rwsam_refresh is not None:
            raise UserError(
                "rwsam_warmup and rwsam_refresh schedule the in-loop KDE; rwsam_weights = "
                "offline computes the weights once: drop them"
            )
        return args
    return _resolve_schedule(args, cfg.train.epochs)


def _resolve_schedule(args: RwSAMArgs, epochs: int) -> RwSAMArgs:
    """The in-loop KDE's warm-up and refresh period, filled and checked."""
    args = dataclasses.replace(
        args,
        rwsam_warmup=args.rwsam_warmup if args.rwsam_warmup is not None else epochs // 5,
        rwsam_refresh=args.rwsam_refresh
        if args.rwsam_refresh is not None
        else max(1, epochs // 10),
    )
    if (args.rwsam_warmup or 0) < 0 or (args.rwsam_refresh or 0) < 1:
        raise UserError("rwsam_warmup must be >= 0, rwsam_refresh >= 1")
    if (args.rwsam_warmup or 0) >= epochs:
        raise UserError(
            f"rwsam_warmup = {args.rwsam_warmup} leaves no epoch with KDE weights "
            f"(the run has {epochs}); lower it"
        )
    return args


def _uses_base(variant_args: dict[str, Any]) -> bool:
    return variant_args.get("rwsam_weights") == "offline"


def _rwsam_cost(variant_args: dict[str, Any], cfg: RunConfig) -> float:
    """Planned passes relative to `base`: SAM's 2, plus the base stage offline."""
    return SAM_PASSES + (1.0 if _uses_base(variant_args) else 0.0)


def kde_weights(feats: np.ndarray, args: RwSAMArgs) -> np.ndarray:
    """The KDE weights of the subset from its frozen backbone features `feats`."""
    return density_weights(
        feats, args.rwsam_k, args.rwsam_alpha, (args.rwsam_clip_min, args.rwsam_clip_max)
    )


class DensityRefresh(pl.Callback):
    """Recomputes the KDE weights at the start of the scheduled epochs."""

    def __init__(self, ctx: PretrainContext, args: RwSAMArgs) -> None:
        self.ctx, self.args = ctx, args
        self.refreshes, self.seconds = 0, 0.0

    def state_dict(self) -> dict[str, Any]:  # kept in the epoch checkpoint
        return {"refreshes": self.refreshes, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.refreshes, self.seconds = int(state["refreshes"]), float(state["seconds"])

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        a, epoch = self.args, trainer.current_epoch
        if epoch < (a.rwsam_warmup or 0) or (epoch - (a.rwsam_warmup or 0)) % (
            a.rwsam_refresh or 1
        ):
            return
        t0 = time.perf_counter()
        assert isinstance(module, SAMModule)
        w = kde_weights(self.ctx.features(module.method.backbone, device=module.device), a)
        module.weights.copy_(torch.as_tensor(w, dtype=torch.float32))
        self.refreshes += 1
        self.seconds += time.perf_counter() - t0


def weight_summary(weights: np.ndarray, targets: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Mean weight per class index, the spread, and Spearman's rho of class count vs weight."""
    counts = np.bincount(targets, minlength=num_classes)
    present = counts > 0
    per_class = [
        float(weights[targets == c].mean()) if counts[c] else None for c in range(num_classes)
    ]
    means = np.array([m for m in per_class if m is not None])
    varies = means.std() > 1e-12 and len(set(counts[present].tolist())) > 1
    rho = float(spearmanr(counts[present], means)[0]) if varies else None
    return {
        "class_mean_weight": per_class,
        "weight_min": float(weights.min()),
        "weight_max": float(weights.max()),
        "weight_std": float(weights.std()),
        "spearman_count_vs_weight": rho,
    }


def _sam_variant(kind: str):
    def pretrain(ctx: PretrainContext) -> PretrainResult:
        cfg, a = ctx.config, ctx.config.variant_args
        args = (RwSAMArgs if kind == "rwsam" else SAMArgs)(**a)
        if isinstance(args, RwSAMArgs) and args.rwsam_weights == "offline":
            return _offline_rwsam(ctx, args)
        targets = ctx.subset.targets.numpy()
        n, classes = len(targets), ctx.method.num_classes
        if kind == "rwsam-oracle":
            weights = class_weights(targets, np.bincount(targets, minlength=classes))
        else:
            weights = np.ones(n)
        module = SAMModule(ctx.method, torch.as_tensor(weights), args.sam_rho, args.sam_adaptive)
        callbacks = []
        if isinstance(args, RwSAMArgs):
            refresh = DensityRefresh(ctx, args)
            callbacks.append(refresh)
        stats = _train_sam(ctx, module, kind, callbacks)
        final = module.weights.cpu().numpy().astype(np.float64)
        summary: dict[str, Any] = {"kind": kind, **weight_summary(final, targets, classes)}
        if isinstance(args, RwSAMArgs):
            summary.update(
                weights_mode="inloop",
                refreshes=refresh.refreshes,
                in_loop_refreshes=refresh.refreshes,
                weights_s=round(refresh.seconds, 3),
                weights_fraction=round(refresh.seconds / max(stats.wall_s, 1e-9), 4),
            )
        return PretrainResult(
            ctx.method.backbone,
            stats.as_record(),
            {"rwsam": summary},
            stage_compute(stats, cfg.train.batch_size, SAM_PASSES),
        )

    return pretrain


def _train_sam(
    ctx: PretrainContext, module: SAMModule, stage: str, callbacks: list[pl.Callback]
) -> TrainStats:
    ctx.reporter.stage("pre-training")
    return ctx.fit_stage(stage, module, callbacks=tuple(callbacks), draws="base")


def _offline_rwsam(ctx: PretrainContext, args: RwSAMArgs) -> PretrainResult:
    """KDE weights once from the `base` run's features, then SAM from a fresh start under them
    (the start and data order of `sam` with the same seed: only the weights differ)."""
    cfg = ctx.config
    if ctx.make_method is None:
        raise ValueError("rwsam offline needs PretrainContext.make_method")
    base = train_base(ctx)
    ctx.reporter.stage("KDE weights")
    t0 = time.perf_counter()
    weights = from_rank_zero(kde_weights(ctx.features(ctx.method.backbone), args))
    kde_s = time.perf_counter() - t0
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    method = ctx.make_method()
    module = SAMModule(method, torch.as_tensor(weights), args.sam_rho, args.sam_adaptive)
    stats = _train_sam(ctx, module, "rwsam", [])
    sam = stage_compute(stats, cfg.train.batch_size, SAM_PASSES)
    # the base stage's compute, reused or not (its kept weights' train stats): the record
    # states what the result cost, as `base` and `cluster-distill` do
    compute = total_compute(base.compute, sam, extra_wall_s=kde_s)
    targets = ctx.subset.targets.numpy()
    final = module.weights.cpu().numpy().astype(np.float64)
    summary: dict[str, Any] = {
        "kind": "rwsam",
        **weight_summary(final, targets, method.num_classes),
        "weights_mode": "offline",
        "refreshes": 1,
        "in_loop_refreshes": 0,
        "weights_s": round(kde_s, 3),
        "weights_fraction": round(kde_s / max(compute.wall_s, 1e-9), 4),
        "base_reused": base.reused,
        "base": {k: getattr(base.stats, k) for k in ("epochs", "steps", "wall_s", "final_loss")},
    }
    return PretrainResult(method.backbone, stats.as_record(), {"rwsam": summary}, compute)


def _sam_cost(args: dict[str, Any], cfg: RunConfig) -> float:
    return SAM_PASSES


def _make(name: str, description: str, args: type, resolve: Any, cost: Any, base: Any) -> Variant:
    return Variant(
        name,
        description,
        _sam_variant(name),
        Args=args,
        resolve=resolve,
        needs_base_weights=base,
        needs_training=True,
        needs_per_example_loss=True,
        cost=cost,
    )


# registered under the `imbssl_bench.variants` entry points (pyproject.toml)
SAM = _make(
    "sam", "SAM (adaptive by default) with every example weighted 1", SAMArgs, resolve_sam,
    _sam_cost, False,
)  # fmt: skip
RWSAM = _make(
    "rwsam", "re-weighted SAM: KDE-density weights on the model's features (Liu et al. 2022)",
    RwSAMArgs, resolve_rwsam, _rwsam_cost, _uses_base,
)  # fmt: skip
RWSAM_ORACLE = _make(
    "rwsam-oracle", "diagnostic: SAM weighted by 1 / true class count (uses labels)", SAMArgs,
    resolve_sam, _sam_cost, False,
)  # fmt: skip
