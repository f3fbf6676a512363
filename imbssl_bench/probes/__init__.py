"""Probe registry: each probe maps frozen train/test features to test predictions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from imbssl_bench.config import EvalConfig
from imbssl_bench.probes.knn import knn_predict
from imbssl_bench.probes.linear import linear_predict
from imbssl_bench.registry import Registry

Probe = Callable[[np.ndarray, np.ndarray, np.ndarray, int, EvalConfig, int], np.ndarray]
PROBES: Registry[Probe] = Registry("probe")


@PROBES.register("knn")
def knn(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    cfg: EvalConfig,
    seed: int,
) -> np.ndarray:
    return knn_predict(train_x, train_y, test_x, num_classes, cfg.knn_k, cfg.knn_temperature)


@PROBES.register("linear")
def linear(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    cfg: EvalConfig,
    seed: int,
) -> np.ndarray:
    return linear_predict(train_x, train_y, test_x, cfg.linear_c, cfg.linear_max_iter, seed)


@PROBES.register("fewshot")
def fewshot(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    cfg: EvalConfig,
    seed: int,
) -> np.ndarray:
    """The linear probe trained on a balanced k-shot subset of the pool (SDCLR's protocol)."""
    shots = balanced_shots(train_y, cfg.fewshot_fraction, seed)
    return linear(train_x[shots], train_y[shots], test_x, num_classes, cfg, seed)


def balanced_shots(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of k images per class, k = max(1, floor(fraction * smallest class)), seeded.

    Examples:
        >>> labels = np.repeat([0, 1], 300)
        >>> shots = balanced_shots(labels, 0.01, seed=0)
        >>> np.bincount(labels[shots]).tolist()
        [3, 3]
    """
    counts = np.bincount(labels)
    k = max(1, int(fraction * counts[counts > 0].min()))
    rng = np.random.default_rng([seed, 7])
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
        for c in np.flatnonzero(counts)
    ]
    return np.sort(np.concatenate(picked))


__all__ = ["PROBES", "Probe", "balanced_shots", "knn_predict", "linear_predict"]
