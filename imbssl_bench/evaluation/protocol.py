"""Evaluate a frozen backbone: features of the balanced train pool and test split -> probes
-> metrics. The linear probe is the primary metric (per-class and group accuracies come from
it); the kNN probe's per-class figures are stored beside it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from lightly.transforms.utils import IMAGENET_NORMALIZE
from lightly.utils.debug import std_of_l2_normalized
from torch import nn

from imbssl_bench.config import EvalConfig
from imbssl_bench.data import Split
from imbssl_bench.evaluation.features import extract_features
from imbssl_bench.evaluation.metrics import summarize
from imbssl_bench.evaluation.probes import PROBES

PRIMARY_PROBE = "linear"


def collapse(features: np.ndarray) -> dict[str, float]:
    """Lightly's collapse monitor on the pool's frozen features: the mean per-dimension std of
    the L2-normalised features (0: collapsed to one point; about 1/sqrt(D) when spread out) and
    that value times sqrt(D)."""
    std = float(std_of_l2_normalized(torch.from_numpy(features)))
    return {
        "feature_std": round(std, 5),
        "feature_std_x_sqrt_dim": round(std * features.shape[1] ** 0.5, 4),
    }


def evaluate(
    backbone: nn.Module,
    pool: Split,
    test: Split,
    class_counts: Sequence[int],
    ranks: Sequence[int],
    cfg: EvalConfig,
    image_size: int,
    device: str | torch.device,
    seed: int,
    stage: Callable[[str], None] = lambda _: None,
    val: Split | None = None,
    normalize: dict[str, list[float]] = IMAGENET_NORMALIZE,
    workers: int = 0,
) -> dict[str, Any]:
    """Probes fit on the balanced pool's features and score the test split (and `val`, as
    ``val_<probe>_top1``, when given). Images are normalised with `normalize`: the method's
    own (`Method.input_normalization`), recorded as ``input_normalize``."""
    stage("features")
    splits = [pool, test] if val is None else [pool, test, val]
    feats = [
        extract_features(
            backbone, s, image_size, cfg.feature_batch_size, device, normalize, workers
        )
        for s in splits
    ]
    if not all(np.isfinite(f).all() for f in feats):
        raise FloatingPointError("the backbone produced non-finite features (training diverged?)")
    train_x, test_x = feats[0], feats[1]
    train_y, test_y = pool.targets.numpy(), test.targets.numpy()
    val_split = None if val is None else (feats[2], val.targets.numpy())
    metrics: dict[str, Any] = {
        "feature_dim": int(train_x.shape[1]),
        **collapse(train_x),
        "input_normalize": {k: list(v) for k, v in normalize.items()},
    }
    for name, probe in PROBES.items():
        stage(f"{name} probe")
        out = probe(train_x, train_y, test_x, len(class_counts), cfg, seed, val_split)
        summary = summarize(test_y, out.test, class_counts, ranks)
        metrics[f"{name}_top1"] = summary["top1"]
        if val_split is not None and out.val is not None:
            metrics[f"val_{name}_top1"] = float(np.mean(out.val == val_split[1]))
        if out.info:  # e.g. the linear probe's iterations, convergence and chosen C
            metrics[f"{name}_probe"] = out.info
        if name == PRIMARY_PROBE:
            metrics.update(
                {k: summary[k] for k in ("per_class_acc", "group_acc", "per_class_std", "groups")}
            )
        else:
            metrics[f"{name}_per_class_acc"] = summary["per_class_acc"]
            metrics[f"{name}_group_acc"] = summary["group_acc"]
    return metrics
