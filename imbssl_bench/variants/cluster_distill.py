"""`cluster-distill`: offline clustering + one expert per cluster + distillation into one model
(Chang & Chang, arXiv 2212.11444; the paper gives the stages, every further choice here is an
option of `ClusterDistillArgs`).

1. base: the method's plain run on the subset (its weights reused when the grid kept them);
2. cluster: spherical faiss k-means on its frozen, L2-normalised backbone features of the
   subset (no augmentation); clusters smaller than one batch merge into their nearest one;
3. experts: one per cluster, initialised from the base weights, trained with the same method
   on that cluster only, each for `expert_epochs` passes over its cluster (so all experts
   together see about `expert_epochs` passes over the subset);
4. distill: a student (base weights, or scratch) trained on the whole subset with its SSL loss
   + `distill_weight` * the cosine distillation loss of `imbssl_bench.distill`.
Labels are used only for the diagnostics (NMI and purity of the clusters).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from imbssl_bench.clustering import cluster_diagnostics, kmeans, merge_small
from imbssl_bench.config import RunConfig
from imbssl_bench.distill import DistillStudent
from imbssl_bench.distributed import from_rank_zero
from imbssl_bench.errors import UserError
from imbssl_bench.features import extract_features, feature_device
from imbssl_bench.training import fit
from imbssl_bench.variants.api import (
    VARIANTS,
    PretrainContext,
    PretrainResult,
    Variant,
    train_base,
)

STUDENT_INITS = ("base", "scratch")
ADAPTERS = ("linear", "none")


@dataclass(frozen=True)
class ClusterDistillArgs:
    clusters: int | None = None  # k-means K; None: the number of classes
    expert_epochs: int | None = None  # passes of each expert over its cluster; None: base / 2
    student_epochs: int | None = None  # None: the base epochs
    student_init: str = "base"  # base | scratch
    distill_weight: float = 1.0  # lambda of SSL + lambda * distillation
    adapter: str = "linear"  # linear (one per cluster, identity init) | none (identity, fixed)
    kmeans_iters: int = 20
    kmeans_redo: int = 5  # best of this many initialisations


def resolve_args(args: ClusterDistillArgs, cfg: RunConfig, num_classes: int) -> ClusterDistillArgs:
    """Fill the defaults that depend on the run, and check the values."""
    epochs = cfg.train.epochs
    args = dataclasses.replace(
        args,
        clusters=args.clusters or num_classes,
        expert_epochs=args.expert_epochs or max(1, epochs // 2),
        student_epochs=args.student_epochs or epochs,
        distill_weight=float(args.distill_weight),
    )
    if args.student_init not in STUDENT_INITS:
        raise UserError(f"--student-init must be one of {', '.join(STUDENT_INITS)}")
    if args.adapter not in ADAPTERS:
        raise UserError(f"cluster-distill adapter must be one of {', '.join(ADAPTERS)}")
    counts = (
        args.clusters,
        args.expert_epochs,
        args.student_epochs,
        args.kmeans_iters,
        args.kmeans_redo,
    )
    if min(counts) < 1:
        raise UserError(
            "cluster-distill: clusters, expert/student epochs and k-means iterations must be >= 1"
        )
    if not (np.isfinite(args.distill_weight) and args.distill_weight >= 0):
        raise UserError("--distill-weight must be a finite number >= 0")
    return args


def _with_epochs(cfg: RunConfig, epochs: int) -> RunConfig:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs))


def _reseed(cfg: RunConfig, stage: int) -> None:
    """Each stage starts from its own seed, so reusing the base weights changes nothing."""
    pl.seed_everything((cfg.seed * 1009 + stage) % 2**32, workers=True, verbose=False)


def _cluster_distill(ctx: PretrainContext) -> PretrainResult:
    cfg, a = ctx.config, ClusterDistillArgs(**ctx.config.variant_args)
    if ctx.make_method is None:
        raise ValueError("cluster-distill needs PretrainContext.make_method")
    base_stats, reused = train_base(ctx)
    base_state = {k: v.detach().clone() for k, v in ctx.method.state_dict().items()}

    ctx.reporter.stage("clustering")
    t0 = time.perf_counter()
    feats = extract_features(
        ctx.method.backbone,
        ctx.subset.images,
        ctx.image_size,
        cfg.eval.feature_batch_size,
        feature_device(cfg.runtime.accelerator),
        ctx.method.input_normalization(ctx.image_size),
    )
    assign, centroids = kmeans(feats, a.clusters or 1, cfg.seed, a.kmeans_iters, a.kmeans_redo)
    assign = merge_small(assign, centroids, min(cfg.train.batch_size, len(ctx.subset)))
    assign = from_rank_zero(assign)  # under DDP every process trains the same experts
    diagnostics: dict[str, Any] = {
        "clusters_requested": a.clusters,
        **cluster_diagnostics(assign, ctx.subset.targets.numpy()),
        "base_reused": reused,
    }
    cluster_s = time.perf_counter() - t0

    experts, expert_rows = [], []
    for k in range(int(assign.max()) + 1):
        ctx.reporter.stage(f"expert {k + 1}/{assign.max() + 1}")
        _reseed(cfg, 1 + k)
        expert = ctx.make_method()
        expert.load_state_dict(base_state)
        members = np.flatnonzero(assign == k)
        stats = fit(
            expert,
            ctx.subset.subset(members),
            _with_epochs(cfg, a.expert_epochs or 1),
            ctx.image_size,
            ctx.reporter,
            checkpoint_dir=ctx.stage_dir(f"expert-{k}"),
        )
        experts.append(expert.backbone)
        expert_rows.append(
            {
                "images": len(members),
                "epochs": stats.epochs,
                "steps": stats.steps,
                "wall_s": stats.wall_s,
            }
        )

    ctx.reporter.stage("distilling")
    _reseed(cfg, 0)
    student = ctx.make_method()
    if a.student_init == "base":
        student.load_state_dict(base_state)
    module = DistillStudent(student, experts, torch.as_tensor(assign), a.distill_weight)
    if a.adapter == "none":
        module.adapters.requires_grad_(False)
    stats = fit(
        module,
        ctx.subset,
        _with_epochs(cfg, a.student_epochs or 1),
        ctx.image_size,
        ctx.reporter,
        checkpoint_dir=ctx.stage_dir("student"),
    )

    expert_steps = sum(e["steps"] for e in expert_rows)
    expert_wall = sum(e["wall_s"] for e in expert_rows)
    base_steps, base_wall = max(1, base_stats["steps"]), max(1e-9, base_stats["wall_s"])
    diagnostics.update(
        experts=expert_rows,
        base={k: base_stats[k] for k in ("epochs", "steps", "wall_s", "final_loss")},
        student={"init": a.student_init, **dataclasses.asdict(stats)},
        cluster_s=round(cluster_s, 3),
        compute_vs_base={
            "steps": round((base_steps + expert_steps + stats.steps) / base_steps, 3),
            "wall": round((base_wall + cluster_s + expert_wall + stats.wall_s) / base_wall, 3),
        },
    )
    return PretrainResult(student.backbone, dataclasses.asdict(stats), diagnostics)


VARIANTS.add(
    "cluster-distill",
    Variant(
        "cluster-distill",
        "cluster the base features, train one expert per cluster, distill them into one model",
        _cluster_distill,
        Args=ClusterDistillArgs,
        resolve=resolve_args,
        needs_base_weights=True,
        needs_training=True,
    ),
)
