"""Linear probe: multinomial logistic regression on standardised frozen features.

Its fit says how many iterations it took, whether it converged (sklearn's
``ConvergenceWarning``) and which backend ran: scikit-learn, or past what it fits in about a
minute the same objective in torch (`torch_linear`); with a validation split, C is chosen on
it from a small grid.
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

from imbssl_bench.errors import UserError

# C candidates when a validation split exists (inverse L2 strength, log-spaced)
C_GRID = (0.01, 0.1, 1.0, 10.0)
BACKENDS = ("auto", "sklearn", "torch")
# auto: scikit-learn up to this many feature values (N x D), torch beyond. Measured with
# benchmarks/linear_probe.py on 2 CPU cores: scikit-learn fits 50,000 x 512 CIFAR-10 (JPEG)
# features (10 classes, C = 1) in 67 s, all 1000 iterations (benchmarks/RESULTS.md): about a
# minute at 25.6M values, so CIFAR-sized pools stay on scikit-learn (faster than torch on a
# CPU), and ImageNet-sized ones (1.28M x 2048: ~100x the work) go to torch and a GPU.
AUTO_MAX_VALUES = 50_000 * 512


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


def choose_backend(backend: str | None, n: int, d: int) -> str:
    """The backend that fits N x D features: `backend`, or for ``auto`` (``None``)
    scikit-learn up to `AUTO_MAX_VALUES` feature values and torch beyond.

    Examples:
        >>> choose_backend(None, 1000, 512), choose_backend("auto", 1_281_167, 2048)
        ('sklearn', 'torch')
    """
    backend = backend or "auto"
    if backend not in BACKENDS:
        raise UserError(f"--linear-backend must be one of {', '.join(BACKENDS)}, not '{backend}'")
    if backend != "auto":
        return backend
    return "sklearn" if n * d <= AUTO_MAX_VALUES else "torch"


def fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    c: float = 1.0,
    max_iter: int = 1000,
    seed: int = 0,
    backend: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """`fit_linear` or `fit_torch_linear` as `choose_backend` says; the fit names it
    (``backend``). The model has ``predict``."""
    if choose_backend(backend, *train_x.shape) == "torch":
        from imbssl_bench.evaluation.probes.torch_linear import fit_torch_linear

        return fit_torch_linear(train_x, train_y, c, max_iter, seed)
    model, fit = fit_linear(train_x, train_y, c, max_iter, seed)
    return model, {**fit, "backend": "sklearn"}


def select_c(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    grid: Sequence[float] = C_GRID,
    max_iter: int = 1000,
    seed: int = 0,
    backend: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The probe fit on (train_x, train_y) with the C of `grid` that scores best on the
    validation split (the first best: the strongest regularisation among ties), and its fit
    with ``c_grid``: each candidate's validation top-1 and convergence. Each candidate is
    fit on the whole train set, so the chosen one is the refit probe."""
    fits = [fit_probe(train_x, train_y, c, max_iter, seed, backend) for c in grid]
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
