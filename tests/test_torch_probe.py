"""The torch linear probe: scikit-learn's objective, chunked, chosen by size; chunked kNN."""

from pathlib import Path

import numpy as np
import pytest
import torch

from imbssl_bench.config import EvalConfig
from imbssl_bench.errors import UserError
from imbssl_bench.evaluation.probes import PROBES, choose_backend, fit_linear, knn_predict
from imbssl_bench.evaluation.probes.linear import AUTO_MAX_VALUES
from imbssl_bench.evaluation.probes.torch_linear import (
    fit_torch_linear,
    objective,
    standardize_stats,
)
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid

from .conftest import tiny_spec


@pytest.fixture(scope="module")
def overlapping() -> tuple[np.ndarray, np.ndarray]:
    """Three classes in 12 dimensions, overlapping enough that C matters, one column constant."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    x = rng.normal(size=(3, 12))[y] + rng.normal(size=(180, 12)) * 1.5 + 4.0
    x[:, 5] = 2.0  # std 0: scaled by 1, as StandardScaler does
    return x.astype(np.float32), y


def _sklearn_objective(model, x: np.ndarray, y: np.ndarray, c: float) -> float:  # type: ignore[no-untyped-def]
    scaler, logreg = model[0], model[-1]
    z = ((x - scaler.mean_) / scaler.scale_) @ logreg.coef_.T + logreg.intercept_
    if z.shape[1] == 1:
        z = np.concatenate([np.zeros_like(z), z], axis=1)
    z = z - z.max(axis=1, keepdims=True)
    ce = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]
    return float(ce.mean() + np.square(logreg.coef_).sum() / (2 * c * len(y)))


@pytest.mark.parametrize("classes", [2, 3])
def test_torch_probe_matches_sklearn(overlapping, classes: int) -> None:
    x, y = overlapping
    keep = y < classes
    x, y = x[keep], y[keep]
    sk, sk_fit = fit_linear(x, y, c=0.5)
    tp, fit = fit_torch_linear(x, y, c=0.5, chunk=50, device="cpu")
    assert set(fit) == set(sk_fit) | {"backend"} and fit["converged"] and fit["backend"] == "torch"
    assert np.mean(tp.predict(x) == sk.predict(x)) >= 0.98
    mean, scale = tp.mean, tp.scale
    x64 = torch.as_tensor(x, dtype=torch.float64)
    z = ((x64 - mean.double()) / scale.double()) @ tp.weight.double().T + tp.bias.double()
    if classes == 2:
        z = torch.cat([torch.zeros_like(z), z], dim=1)
    ce = torch.nn.functional.cross_entropy(z, torch.as_tensor(y), reduction="mean")
    ours = float(ce + tp.weight.double().square().sum() / (2 * 0.5 * len(y)))
    assert ours == pytest.approx(_sklearn_objective(sk, x, y, 0.5), rel=1e-4)


def test_standardisation_is_standard_scalers(overlapping) -> None:
    from sklearn.preprocessing import StandardScaler

    x, _ = overlapping
    mean, scale = standardize_stats(x, chunk=37)
    reference = StandardScaler().fit(x)
    np.testing.assert_allclose(mean, reference.mean_, rtol=1e-6)
    np.testing.assert_allclose(scale, reference.scale_, rtol=1e-6)
    assert scale[5] == 1.0


def test_chunked_gradient_equals_unchunked(overlapping) -> None:
    x, y = overlapping
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 12, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    whole = objective(weight, bias, [(xt, yt)], 0.7)
    grads = weight.grad.clone(), bias.grad.clone()
    chunks = list(zip(xt.split(7), yt.split(7), strict=True))
    assert objective(weight, bias, chunks, 0.7) == pytest.approx(whole, rel=1e-12)
    torch.testing.assert_close((weight.grad, bias.grad), grads, rtol=1e-10, atol=1e-12)


def test_auto_picks_sklearn_for_small_and_torch_for_large() -> None:
    assert choose_backend(None, 50_000, 512) == "sklearn" == choose_backend("auto", 10, 10)
    assert choose_backend(None, AUTO_MAX_VALUES // 512 + 1, 512) == "torch"
    assert choose_backend("torch", 10, 10) == "torch"
    with pytest.raises(UserError, match="--linear-backend must be one of auto, sklearn"):
        choose_backend("cuml", 10, 10)


def test_select_c_and_fewshot_work_with_torch(overlapping) -> None:
    x, y = overlapping
    val = (x[::3], y[::3])
    cfg = EvalConfig(linear_backend="torch", linear_c_grid=(0.01, 1.0), fewshot_fraction=0.2)
    out = PROBES.get("linear")(x, y, x, 3, cfg, 0, val)
    assert out.info["backend"] == "torch" and [r["C"] for r in out.info["c_grid"]] == [0.01, 1.0]
    few = PROBES.get("fewshot")(x, y, x, 3, cfg, 0)
    assert few.info["backend"] == "torch" and few.test.shape == y.shape


def test_knn_in_chunks_is_the_same_as_at_once() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    bank = (rng.normal(size=(5, 16))[y] + rng.normal(size=(300, 16))).astype(np.float32)
    queries = rng.normal(size=(95, 16)).astype(np.float32)
    at_once = knn_predict(bank, y, queries, 5, k=20, chunk=10_000)
    np.testing.assert_array_equal(knn_predict(bank, y, queries, 5, k=20, chunk=30), at_once)
    assert knn_predict(bank, y, queries[:0], 5, k=20).shape == (0,)


def test_a_digits_run_with_the_torch_backend_records_it(tmp_path: Path) -> None:
    spec = tiny_spec(methods=("random",), linear_backend="torch", val_per_class=20)
    (run,) = plan_grid(spec, tmp_path)
    assert run.config.eval.linear_backend == "torch"
    assert (
        run.run_id
        != plan_grid(tiny_spec(methods=("random",), val_per_class=20), tmp_path)[0].run_id
    )
    (record,) = run_grid([run])
    probe = record["metrics"]["linear_probe"]
    assert probe["backend"] == "torch" and probe["C"] in (0.01, 0.1, 1.0, 10.0)
    assert {"linear_top1", "fewshot_top1"} <= set(record["metrics"])
    auto = plan_grid(tiny_spec(methods=("random",), linear_backend="auto"), tmp_path)[0]
    assert auto.config.eval.linear_backend is None  # auto is the default: the same run id
    assert "linear_backend" not in auto.config.identity()["eval"]
