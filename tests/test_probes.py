import numpy as np
import pytest

from imbssl_bench.evaluation.probes import knn_predict, linear_predict


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Four well separated classes in 16 dimensions."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 16)) * 5
    y_train, y_test = np.repeat(np.arange(4), 50), np.repeat(np.arange(4), 20)
    x_train = centers[y_train] + rng.normal(size=(200, 16)) * 0.3
    x_test = centers[y_test] + rng.normal(size=(80, 16)) * 0.3
    return x_train.astype(np.float32), y_train, x_test.astype(np.float32), y_test


def test_knn_separable(blobs) -> None:
    x_train, y_train, x_test, y_test = blobs
    assert (knn_predict(x_train, y_train, x_test, 4, k=20) == y_test).all()


def test_knn_caps_k_at_bank_size(blobs) -> None:
    x_train, y_train, x_test, y_test = blobs
    pred = knn_predict(x_train[:30], y_train[:30], x_test, 4, k=200)
    assert pred.shape == y_test.shape


def test_knn_votes_are_similarity_weighted() -> None:
    bank = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    query = np.array([[1.0, 0.05]], dtype=np.float32)
    # two class-1 neighbours with similarity ~0.05 lose to one class-0 neighbour at ~1.0
    assert knn_predict(bank, labels, query, 2, k=3, temperature=0.1).tolist() == [0]


def test_linear_separable(blobs) -> None:
    x_train, y_train, x_test, y_test = blobs
    assert (linear_predict(x_train, y_train, x_test) == y_test).all()


def test_probes_fail_on_random_labels(blobs) -> None:
    x_train, _, x_test, y_test = blobs
    shuffled = np.random.default_rng(1).integers(0, 4, size=len(x_train))
    assert (knn_predict(x_train, shuffled, x_test, 4) == y_test).mean() < 0.7
    assert (linear_predict(x_train, shuffled, x_test) == y_test).mean() < 0.7


def test_fewshot_probe_uses_k_shots(blobs) -> None:
    from imbssl_bench.config import EvalConfig
    from imbssl_bench.evaluation.probes import PROBES, balanced_shots

    x_train, y_train, x_test, y_test = blobs
    shots = balanced_shots(y_train, 0.1, seed=0)
    assert np.bincount(y_train[shots]).tolist() == [5, 5, 5, 5]
    assert not np.array_equal(shots, balanced_shots(y_train, 0.1, seed=1))
    out = PROBES.get("fewshot")(x_train, y_train, x_test, 4, EvalConfig(fewshot_fraction=0.1), 0)
    assert (out.test == y_test).mean() > 0.95


def test_linear_probe_records_its_iterations_and_convergence(blobs) -> None:
    from imbssl_bench.evaluation.probes import fit_linear

    x_train, y_train, _, _ = blobs
    noisy = np.random.default_rng(1).integers(0, 4, size=len(x_train))  # not separable
    _, stopped = fit_linear(x_train, noisy, max_iter=1)
    assert stopped == {"C": 1.0, "n_iter": 1, "max_iter": 1, "converged": False}
    _, fit = fit_linear(x_train, y_train, c=0.5, max_iter=1000)
    assert fit["converged"] and 1 < fit["n_iter"] < 1000 and fit["C"] == 0.5


def test_linear_probe_chooses_c_on_the_validation_split(blobs) -> None:
    from imbssl_bench.config import EvalConfig
    from imbssl_bench.evaluation.probes import PROBES

    rng = np.random.default_rng(0)  # few images, one informative dimension of 50: C matters
    x = rng.normal(size=(240, 50)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=240) > 0).astype(int)
    (x_train, y_train), val = (x[:40], y[:40]), (x[40:], y[40:])
    linear = PROBES.get("linear")
    plain = linear(x_train, y_train, x[40:], 2, EvalConfig(linear_c=10.0), 0)
    assert plain.val is None and plain.info["C"] == 10.0 and "c_grid" not in plain.info
    cfg = EvalConfig(linear_c=10.0, linear_c_grid=(0.001, 0.01, 0.1, 1.0, 10.0))
    out = linear(x_train, y_train, x[40:], 2, cfg, 0, val)
    table = out.info["c_grid"]
    assert [row["C"] for row in table] == [0.001, 0.01, 0.1, 1.0, 10.0]
    scores = [row["val_top1"] for row in table]
    assert len(set(scores)) > 1 and out.info["C"] == table[scores.index(max(scores))]["C"]
    assert out.info["C"] != 10.0 and np.mean(out.val == val[1]) == max(scores)
