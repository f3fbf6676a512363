"""Weighted kNN probe (Wu et al. 2018, as in Lightly's benchmarks) with faiss exact search,
over the queries in chunks so that memory stays bounded (k neighbours of one chunk at a time)."""

from __future__ import annotations

import faiss
import numpy as np

CHUNK = 10_000  # queries searched at once


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
    chunk: int = CHUNK,
) -> np.ndarray:
    """Predict by cosine-similarity kNN; each neighbour votes ``exp(sim / temperature)``.

    ``k`` is capped by the bank size; the queries are searched `chunk` at a time.

    Examples:
        >>> bank = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> knn_predict(bank, np.array([0, 0, 1, 1]), np.array([[1.0, 0.2]]), 2, k=3).tolist()
        [0]
    """
    bank = _normalized(train_x)
    index = faiss.IndexFlatIP(bank.shape[1])
    index.add(bank)
    k = min(k, len(bank))
    labels = np.asarray(train_y)
    out = [
        _vote(
            *index.search(_normalized(test_x[start : start + chunk]), k),
            labels,
            num_classes,
            temperature,
        )
        for start in range(0, len(test_x), chunk)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _vote(
    sims: np.ndarray,
    neighbours: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    temperature: float,
) -> np.ndarray:
    """Each query's class with the largest sum of ``exp(sim / temperature)`` over its
    neighbours."""
    k = sims.shape[1]
    weights = np.exp(sims.astype(np.float64) / temperature)
    rows = np.repeat(np.arange(len(sims)), k) * num_classes
    cells = rows + labels[neighbours].ravel()
    votes = np.bincount(cells, weights=weights.ravel(), minlength=len(sims) * num_classes)
    return votes.reshape(len(sims), num_classes).argmax(axis=1)
