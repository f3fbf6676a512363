"""Per-example weights for re-weighted SAM: rare (low-density) examples weigh more.

Liu et al. (ICLR 2022) weight each example by a kernel density estimate on the learned
representations. Here: a Gaussian KDE over each example's k nearest neighbours (faiss exact
search on L2-normalised features), bandwidth = the median neighbour distance, weight =
density^(-alpha), normalised to mean 1, then clipped. Labels are never used (except by the
oracle control, `class_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np


def knn_density(features: np.ndarray, k: int, bandwidth: float | None = None) -> np.ndarray:
    """Gaussian KDE of each row over its k nearest other rows (cosine geometry)."""
    x = np.array(features, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(x)
    k = max(1, min(k, len(x) - 1))
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    sq_dist, _ = index.search(x, k + 1)  # the first neighbour is the row itself
    sq_dist = np.maximum(sq_dist[:, 1:].astype(np.float64), 0.0)
    h = bandwidth if bandwidth else float(np.median(np.sqrt(sq_dist)))
    h = max(h, 1e-6)
    return np.exp(-sq_dist / (2 * h * h)).mean(axis=1)


def normalise(weights: np.ndarray, clip: tuple[float, float]) -> np.ndarray:
    """Scale to mean 1, then clip to [lo, hi]."""
    w = weights / weights.mean()
    return np.clip(w, clip[0], clip[1])


def density_weights(
    features: np.ndarray, k: int, alpha: float, clip: tuple[float, float]
) -> np.ndarray:
    """weight = density^(-alpha), normalised to mean 1 and clipped.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> dense = rng.normal([1, 0, 0], 0.05, size=(90, 3))
        >>> sparse = rng.normal([0, 1, 0], 0.5, size=(10, 3))
        >>> w = density_weights(np.vstack([dense, sparse]), k=10, alpha=1.0, clip=(0.1, 10))
        >>> bool(w[90:].mean() > w[:90].mean())
        True
    """
    density = knn_density(features, k)
    return normalise(np.maximum(density, 1e-12) ** (-alpha), clip)


def class_weights(targets: np.ndarray, class_counts: Sequence[int]) -> np.ndarray:
    """The oracle control: weight = 1 / (count of the example's class), normalised to mean 1."""
    counts = np.asarray(class_counts, dtype=np.float64)
    w = 1.0 / counts[np.asarray(targets)]
    return w / w.mean()
