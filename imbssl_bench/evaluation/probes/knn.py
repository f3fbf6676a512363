"""Weighted kNN probe (Wu et al. 2018, as in Lightly's benchmarks) with faiss exact search."""

from __future__ import annotations

import faiss
import numpy as np


def _normalized(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(x)
    return x


def knn_predict(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
) -> np.ndarray:
    """Predict by cosine-similarity kNN; each neighbour votes ``exp(sim / temperature)``.

    ``k`` is capped by the bank size.

    Examples:
        >>> bank = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> knn_predict(bank, np.array([0, 0, 1, 1]), np.array([[1.0, 0.2]]), 2, k=3).tolist()
        [0]
    """
    bank = _normalized(train_x)
    index = faiss.IndexFlatIP(bank.shape[1])
    index.add(bank)
    k = min(k, len(bank))
    sims, neighbours = index.search(_normalized(test_x), k)
    weights = np.exp(sims.astype(np.float64) / temperature)
    rows = np.repeat(np.arange(len(sims)), k) * num_classes
    cells = rows + np.asarray(train_y)[neighbours].ravel()
    votes = np.bincount(cells, weights=weights.ravel(), minlength=len(sims) * num_classes)
    return votes.reshape(len(sims), num_classes).argmax(axis=1)
