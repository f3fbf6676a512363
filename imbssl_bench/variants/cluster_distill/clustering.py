"""Offline clustering of frozen features: faiss k-means, small-cluster merging, and label-based
diagnostics (labels are used for the diagnostics only)."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def kmeans(
    features: np.ndarray, k: int, seed: int, iters: int = 20, redo: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """(assignments, centroids) of spherical k-means on L2-normalised `features`, seeded;
    the best of `redo` random initialisations."""
    x = np.array(features, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(x)
    k = min(k, len(x))
    km = faiss.Kmeans(
        x.shape[1], k, niter=iters, nredo=redo, seed=seed, spherical=True, verbose=False
    )
    km.cp.min_points_per_centroid = 1  # small subsets are fine; no warning
    km.train(x)
    _, assign = km.index.search(x, 1)
    return assign.ravel().astype(np.int64), km.centroids.copy()


def merge_small(assign: np.ndarray, centroids: np.ndarray, min_size: int) -> np.ndarray:
    """Merge every cluster smaller than `min_size` into the cluster of its nearest centroid
    (smallest first, until all are large enough or one is left); the clusters left are
    relabelled 0..K'-1 in their original order.

    Examples:
        >>> assign = np.array([0, 0, 0, 1, 2, 2, 2])
        >>> centroids = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> merge_small(assign, centroids, min_size=2).tolist()
        [0, 0, 0, 0, 1, 1, 1]
    """
    assign = assign.copy()
    alive = set(np.unique(assign).tolist())
    while len(alive) > 1:
        sizes = {c: int((assign == c).sum()) for c in alive}
        small = min(alive, key=lambda c: (sizes[c], c))
        if sizes[small] >= min_size:
            break
        others = sorted(alive - {small})
        nearest = others[int(np.argmax(centroids[others] @ centroids[small]))]
        assign[assign == small] = nearest
        alive.remove(small)
    _, relabelled = np.unique(assign, return_inverse=True)
    return relabelled.astype(np.int64)


def cluster_diagnostics(assign: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Cluster sizes, and NMI and purity against the true classes.

    Examples:
        >>> d = cluster_diagnostics(np.array([0, 0, 1, 1]), np.array([3, 3, 5, 4]))
        >>> d["cluster_sizes"], d["purity"]
        ([2, 2], 0.75)
    """
    table = contingency_matrix(labels, assign)  # classes x clusters
    return {
        "cluster_sizes": np.bincount(assign).tolist(),
        "nmi": float(normalized_mutual_info_score(labels, assign)),
        "purity": float(table.max(axis=0).sum() / len(assign)),
    }
