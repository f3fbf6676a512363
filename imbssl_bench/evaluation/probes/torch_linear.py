"""The linear probe in torch, for features too many for scikit-learn: the same objective as
`fit_linear` (``LogisticRegression`` with lbfgs on ``StandardScaler``'d features), minimised
by full-batch L-BFGS (``torch.optim.LBFGS``, strong Wolfe line search) with the loss and its
gradient summed over chunks of the cached features, on the GPU when there is one.

The objective, as scikit-learn writes it divided by ``C * n`` (its ``l2_reg_strength``):
``mean_i CE_i + ||W||^2 / (2 C n)``, the intercept not penalised; all classes get a weight
row (multinomial), except with two classes: one row, as scikit-learn's binary model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

CHUNK = 65_536  # rows per chunk: bounds the memory of the logits and their gradient
TOL = 1e-4  # scikit-learn's `tol` (its L-BFGS `gtol`: max |gradient| of the objective)
FTOL = 64 * np.finfo(np.float64).eps  # scikit-learn's L-BFGS `ftol`


def standardize_stats(x: np.ndarray, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of the columns of `x` as ``StandardScaler``: population std, a zero (or
    near-zero) std replaced by 1; computed in float64 torch, chunk by chunk.

    Examples:
        >>> mean, scale = standardize_stats(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> mean.tolist(), scale.tolist()
        ([2.0, 5.0], [1.0, 1.0])
    """
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    for part in _chunks(x, chunk):
        total += part.double().sum(0)
    mean = total / len(x)
    squares = torch.zeros_like(mean)
    for part in _chunks(x, chunk):
        squares += (part.double() - mean).square().sum(0)
    scale = (squares / len(x)).sqrt()
    scale[scale < 10 * torch.finfo(torch.float64).eps] = 1.0  # as sklearn's _handle_zeros
    return mean.numpy(), scale.numpy()


@dataclass
class TorchLinearProbe:
    """A fitted probe: standardisation, weights (K rows, or 1 for two classes), labels."""

    mean: torch.Tensor
    scale: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    classes_: np.ndarray

    def decision_function(self, x: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
        scaler = (self.mean, self.scale)
        out = [_logits(part, self.weight, self.bias, scaler).cpu() for part in _chunks(x, chunk)]
        return torch.cat(out).numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(x).argmax(axis=1)]


Chunks = list[tuple[torch.Tensor, torch.Tensor]]  # (features, labels) in row order


def objective(
    weight: torch.Tensor,
    bias: torch.Tensor,
    chunks: Chunks,
    c: float,
    scaler: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> float:
    """The objective's value at (weight, bias) on the standardised features; its gradient is
    accumulated into ``weight.grad`` and ``bias.grad`` (reset first) one chunk at a time, so
    memory holds one chunk's logits, and a chunk on the host is moved to the device then."""
    weight.grad, bias.grad = None, None
    n = sum(len(y) for _, y in chunks)
    total = 0.0
    for x, y in chunks:
        logits = _logits(x, weight, bias, scaler)
        loss = F.cross_entropy(logits, y.to(weight.device, non_blocking=True), reduction="sum")
        (loss / n).backward()
        total += float(loss.detach()) / n
    penalty = weight.square().sum() / (2 * c * n)
    penalty.backward()
    return total + float(penalty.detach())


def fit_torch_linear(
    train_x: np.ndarray,
    train_y: np.ndarray,
    c: float = 1.0,
    max_iter: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
    chunk: int = CHUNK,
) -> tuple[TorchLinearProbe, dict[str, Any]]:
    """The fitted probe and its fit, as `fit_linear`'s plus ``backend``: ``{"C", "n_iter",
    "max_iter", "converged", "backend"}``. `device`: default the GPU when there is one. The
    start is zero weights (as scikit-learn's), so `seed` changes nothing.

    Examples:
        >>> x = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]])
        >>> model, fit = fit_torch_linear(x, np.array([0, 0, 1, 1]), device="cpu")
        >>> model.predict(x).tolist(), fit["converged"], fit["backend"]
        ([0, 0, 1, 1], True, 'torch')
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    classes, labels = np.unique(train_y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"the linear probe needs at least 2 classes, got {len(classes)}")
    mean, scale = (
        torch.as_tensor(s, dtype=torch.float32, device=device)
        for s in standardize_stats(train_x, chunk)
    )
    parts = zip(_chunks(train_x, chunk), _chunks(labels.astype(np.int64), chunk), strict=True)
    chunks, scaler = _place(list(parts), device, (mean, scale))
    rows = 1 if len(classes) == 2 else len(classes)
    weight = torch.zeros(rows, train_x.shape[1], device=device, requires_grad=True)
    bias = torch.zeros(rows, device=device, requires_grad=True)
    max_eval = max_iter * 2
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=max_iter,
        max_eval=max_eval,
        tolerance_grad=TOL,
        tolerance_change=FTOL,
        history_size=10,  # scipy's L-BFGS-B default (maxcor), which scikit-learn keeps
        line_search_fn="strong_wolfe",
    )
    optimizer.step(lambda: torch.tensor(objective(weight, bias, chunks, c, scaler)))
    state = optimizer.state[weight]
    n_iter = int(state["n_iter"])
    converged = n_iter < max_iter and state["func_evals"] < max_eval  # stopped by a tolerance
    probe = TorchLinearProbe(mean, scale, weight.detach(), bias.detach(), classes)
    fit = {"C": c, "n_iter": n_iter, "max_iter": max_iter, "converged": converged}
    return probe, {**fit, "backend": "torch"}


def _logits(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    scaler: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    x = x.to(weight.device, weight.dtype, non_blocking=True)
    if scaler is not None:
        x = (x - scaler[0]) / scaler[1]
    z = x @ weight.T + bias
    return torch.cat([torch.zeros_like(z), z], dim=1) if weight.shape[0] == 1 else z


def _place(
    chunks: Chunks, device: torch.device, scaler: tuple[torch.Tensor, torch.Tensor]
) -> tuple[Chunks, tuple[torch.Tensor, torch.Tensor] | None]:
    """The chunks standardised once on `device` (one float32 copy, as StandardScaler's
    transform makes) and no scaler left to apply; on a GPU only when they fill at most half
    of its free memory, else they stay raw on the host, moved and standardised at each
    evaluation (and the scaler is returned)."""
    if device.type != "cpu":
        size = sum(x.numel() * 4 + y.numel() * 8 for x, y in chunks)
        free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else 0
        if size > free / 2:
            return chunks, scaler
    mean, scale = scaler
    placed = [((x.to(device, torch.float32) - mean) / scale, y.to(device)) for x, y in chunks]
    return placed, None


def _chunks(x: np.ndarray, chunk: int) -> list[torch.Tensor]:
    """`x` as CPU tensors of at most `chunk` rows (views of `x`: nothing is copied)."""
    return [torch.as_tensor(part) for part in np.array_split(x, max(1, -(-len(x) // chunk)))]
