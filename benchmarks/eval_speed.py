"""Evaluation speed on cached features, side by side: the harness's kNN probe vs a bare faiss
flat search (the compute floor) vs scikit-learn's KNeighborsClassifier, and the harness's
linear probe vs scikit-learn's LogisticRegression, on the same arrays.

Features: `--train` x `--dim` and `--test` x `--dim` float32 from a 10-class Gaussian mixture
(seeded), or `--features FILE.npz` with arrays train_x, train_y, test_x, test_y. Each timing is
the median of `--repeats`. Prints JSON.

Usage: python benchmarks/eval_speed.py [--train 50000] [--test 10000] [--dim 512] [--repeats 3]
Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import faiss
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from imbssl_bench.evaluation.probes.knn import knn_predict
from imbssl_bench.evaluation.probes.linear import linear_predict

K, T = 200, 0.1  # the harness's kNN defaults


def mixture(n: int, dim: int, classes: int, rng: np.random.Generator, means: np.ndarray):
    y = rng.integers(0, classes, n)
    x = means[y] + rng.standard_normal((n, dim)).astype(np.float32)
    return x.astype(np.float32), y


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    seconds, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), out


def bare_faiss(train_x: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    index = faiss.IndexFlatIP(train_x.shape[1])
    index.add(train_x)
    return index.search(test_x, K)[1]


def sklearn_knn(train_x, train_y, test_x) -> np.ndarray:  # type: ignore[no-untyped-def]
    model = KNeighborsClassifier(
        n_neighbors=K,
        metric="cosine",
        algorithm="brute",
        weights=lambda d: np.exp((1.0 - d) / T),  # the same exp(similarity / T) votes
    )
    return model.fit(train_x, train_y).predict(test_x)


def sklearn_linear(train_x, train_y, test_x) -> np.ndarray:  # type: ignore[no-untyped-def]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return model.fit(train_x, train_y).predict(test_x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=50_000)
    p.add_argument("--test", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--features", help="an .npz with train_x, train_y, test_x, test_y")
    p.add_argument("--skip-linear", action="store_true")
    a = p.parse_args()
    if a.features:
        f = np.load(a.features)
        train_x, train_y, test_x, test_y = (
            f[k] for k in ("train_x", "train_y", "test_x", "test_y")
        )
    else:
        rng = np.random.default_rng(0)
        means = 0.15 * rng.standard_normal((10, a.dim)).astype(np.float32)
        train_x, train_y = mixture(a.train, a.dim, 10, rng, means)
        test_x, test_y = mixture(a.test, a.dim, 10, rng, means)
    unit_train, unit_test = train_x.copy(), test_x.copy()
    faiss.normalize_L2(unit_train)
    faiss.normalize_L2(unit_test)
    result: dict[str, Any] = {
        "shape": {"train": list(train_x.shape), "test": list(test_x.shape)},
        "faiss_threads": faiss.omp_get_max_threads(),
    }
    floor, _ = timed(lambda: bare_faiss(unit_train, unit_test), a.repeats)
    ours, pred = timed(lambda: knn_predict(train_x, train_y, test_x, 10, K, T), a.repeats)
    theirs, pred_sk = timed(lambda: sklearn_knn(train_x, train_y, test_x), a.repeats)
    result["knn"] = {
        "bare_faiss_s": round(floor, 3),
        "harness_s": round(ours, 3),
        "sklearn_s": round(theirs, 3),
        "harness_over_floor": round(ours / floor, 3),
        "speedup_vs_sklearn": round(theirs / ours, 2),
        "harness_acc": round(float((pred == test_y).mean()), 4),
        "sklearn_acc": round(float((pred_sk == test_y).mean()), 4),
    }
    if not a.skip_linear:
        ours, pred = timed(lambda: linear_predict(train_x, train_y, test_x), 1)
        theirs, pred_sk = timed(lambda: sklearn_linear(train_x, train_y, test_x), 1)
        result["linear"] = {
            "harness_s": round(ours, 2),
            "sklearn_s": round(theirs, 2),
            "harness_acc": round(float((pred == test_y).mean()), 4),
            "sklearn_acc": round(float((pred_sk == test_y).mean()), 4),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
