"""Linear probe: multinomial logistic regression on standardised frozen features.

Its fit says how many iterations it took and whether it converged (sklearn's
``ConvergenceWarning``); with a validation split, C is chosen on it from a small grid.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

# C candidates when a validation split exists (inverse L2 strength, log-spaced)
C_GRID = (0.01, 0.1, 1.0, 10.0)


def fit_linear(
    train_x: np.ndarray, train_y: np.ndarray, c: float = 1.0, max_iter: int = 1000, seed: int = 0
) -> tuple[Pipeline, dict[str, Any]]:
    """The fitted probe and its fit: ``{"C", "n_iter", "max_iter", "converged"}``.

    Examples:
        >>> x = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]])
        >>> model, fit = fit_linear(x, np.array([0, 0, 1, 1]))
        >>> fit["converged"], fit["n_iter"] < fit["max_iter"]
        (True, True)
    """
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(train_x, train_y)
    for w in caught:  # anything else is passed on
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    n_iter = int(np.max(model[-1].n_iter_))
    return model, {"C": c, "n_iter": n_iter, "max_iter": max_iter, "converged": converged}


def select_c(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    grid: Sequence[float] = C_GRID,
    max_iter: int = 1000,
    seed: int = 0,
) -> tuple[Pipeline, dict[str, Any]]:
    """The probe fit on (train_x, train_y) with the C of `grid` that scores best on the
    validation split (the first best: the strongest regularisation among ties), and its fit
    with ``c_grid``: each candidate's validation top-1 and convergence. Each candidate is
    fit on the whole train set, so the chosen one is the refit probe."""
    fits = [fit_linear(train_x, train_y, c, max_iter, seed) for c in grid]
    scores = [float(np.mean(model.predict(val_x) == val_y)) for model, _ in fits]
    best = int(np.argmax(scores))
    table = [
        {"C": fit["C"], "val_top1": score, "converged": fit["converged"]}
        for (_, fit), score in zip(fits, scores, strict=True)
    ]
    model, fit = fits[best]
    return model, {**fit, "c_grid": table}


def linear_predict(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    c: float = 1.0,
    max_iter: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Fit on (train_x, train_y), predict test_x.

    Examples:
        >>> x = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]])
        >>> linear_predict(x, np.array([0, 0, 1, 1]), np.array([[0.05, 1.0]])).tolist()
        [0]
    """
    return fit_linear(train_x, train_y, c, max_iter, seed)[0].predict(test_x)
