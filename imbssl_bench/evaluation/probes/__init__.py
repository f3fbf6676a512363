"""Probe registry: each probe maps frozen train features to predictions for the test split
(and the validation split, when there is one), with what its fit says about itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imbssl_bench.config import EvalConfig
from imbssl_bench.evaluation.probes.knn import knn_predict
from imbssl_bench.evaluation.probes.linear import (
    C_GRID,
    choose_backend,
    fit_linear,
    fit_probe,
    linear_predict,
    select_c,
)
from imbssl_bench.registry import Registry

Split = tuple[np.ndarray, np.ndarray]  # features, labels


@dataclass(frozen=True)
class ProbeOutput:
    test: np.ndarray  # predictions for the test split
    val: np.ndarray | None = None  # predictions for the validation split, when given
    info: dict[str, Any] = field(default_factory=dict)  # recorded as metrics.<probe>_probe


Probe = Callable[
    [np.ndarray, np.ndarray, np.ndarray, int, EvalConfig, int, Split | None], ProbeOutput
]
PROBES: Registry[Probe] = Registry("probe")


@PROBES.register("knn")
def knn(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    cfg: EvalConfig,
    seed: int,
    val: Split | None = None,
) -> ProbeOutput:
    queries = test_x if val is None else np.concatenate([test_x, val[0]])
    pred = knn_predict(train_x, train_y, queries, num_classes, cfg.knn_k, cfg.knn_temperature)
    return ProbeOutput(pred[: len(test_x)], None if val is None else pred[len(test_x) :])


@PROBES.register("linear")
def linear(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    cfg: EvalConfig,
    seed: int,
    val: Split | None = None,
) -> ProbeOutput:
    """Logistic regression at ``cfg.linear_c``; with a validation split, at the C of
    ``cfg.linear_c_grid`` that scores best on it; by scikit-learn or torch
    (``cfg.linear_backend``, `choose_backend`)."""
    backend = cfg.linear_backend
    if val is None:
        fit = fit_probe(train_x, train_y, cfg.linear_c, cfg.linear_max_iter, seed, backend)
        return ProbeOutput(fit[0].predict(test_x), None, fit[1])
    grid = cfg.linear_c_grid or C_GRID
    model, info = select_c(train_x, train_y, *val, grid, cfg.linear_max_iter, seed, backend)
    return ProbeOutput(model.predict(test_x), model.predict(val[0]), info)


@PROBES.register("fewshot")
def fewshot(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    cfg: EvalConfig,
    seed: int,
    val: Split | None = None,
) -> ProbeOutput:
    """The linear probe trained on a balanced k-shot subset of the pool (SDCLR's protocol)."""
    shots = balanced_shots(train_y, cfg.fewshot_fraction, seed)
    return linear(train_x[shots], train_y[shots], test_x, num_classes, cfg, seed, val)


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


__all__ = [
    "PROBES",
    "Probe",
    "ProbeOutput",
    "balanced_shots",
    "choose_backend",
    "fit_linear",
    "fit_probe",
    "knn_predict",
    "linear_predict",
    "select_c",
]
