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


__all__ = ["PROBES", "Probe", "knn_predict", "linear_predict"]
