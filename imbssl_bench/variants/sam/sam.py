"""Sharpness-aware minimisation with a re-weighted perturbation (rwSAM, Liu et al. ICLR 2022).

One step: (a) gradient of the *weighted* per-example loss; (b) move the parameters by
e = rho * T^2 g / ||T g|| (T = |p| in the adaptive form of ASAM, as in the reference code, else
1); (c) gradient of the *plain* loss there; (d) restore the parameters exactly and let the
base optimizer step with that gradient. With all weights 1 this is SAM; with rho = 0 it is the
base optimizer's step.

The loss runs twice per step, so the method's state that the loss advances (batch-norm
statistics, memory banks, DINO's centre: its buffers) is handled by `buffers_as_before`: both
passes see the state from before the step, and afterwards it is what the unperturbed pass left.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

from imbssl_bench.api import Method, MethodWrapper, trainable_parameters


@torch.no_grad()
def perturbation(params: Sequence[nn.Parameter], rho: float, adaptive: bool) -> list[Tensor]:
    """e for every parameter, from the gradients they hold (zeros where there is none)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    scaled = [p.abs() * g if adaptive else g for p, g in zip(params, grads, strict=True)]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in scaled]))
    if not torch.isfinite(norm):  # e.g. an overflowing fp16 step: do not perturb
        return [torch.zeros_like(p) for p in params]
    scale = rho / (norm + 1e-12)
    return [(p * p if adaptive else 1.0) * g * scale for p, g in zip(params, grads, strict=True)]


def buffer_snapshot(module: nn.Module) -> dict[str, Tensor]:
    """A copy of every buffer of `module` (batch-norm statistics, memory banks, centres)."""
    return {name: b.detach().clone() for name, b in module.named_buffers()}


def _restore(module: nn.Module, snapshot: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for name, saved in snapshot.items():
            module.get_buffer(name).copy_(saved)


@contextlib.contextmanager
def buffers_as_before(module: nn.Module, before: dict[str, Tensor]) -> Iterator[None]:
    """Inside: `module`'s buffers as in `before`; on exit: as they were on entry."""
    entry = buffer_snapshot(module)
    _restore(module, before)
    try:
        yield
    finally:
        _restore(module, entry)


def sam_step(
    params: Sequence[nn.Parameter],
    weighted_loss: Callable[[], Tensor],
    plain_loss: Callable[[], Tensor],
    optimizer: Any,
    rho: float,
    adaptive: bool,
    backward: Callable[[Tensor], None] = Tensor.backward,
    perturbed_context: Callable[[], AbstractContextManager] = contextlib.nullcontext,
) -> Tensor:
    """One rwSAM step (see the module docstring); returns the plain loss at the perturbed point.
    The perturbed forward and backward run inside `perturbed_context()` (`SAMModule` passes
    `buffers_as_before`: the method's state advances once, by the unperturbed pass)."""
    optimizer.zero_grad()
    backward(weighted_loss())
    saved = [p.detach().clone() for p in params]
    eps = perturbation(params, rho, adaptive)
    with torch.no_grad():
        for p, e in zip(params, eps, strict=True):
            p.add_(e)
    optimizer.zero_grad()
    with perturbed_context():
        loss = plain_loss()
        backward(loss)
    with torch.no_grad():
        for p, s in zip(params, saved, strict=True):
            p.copy_(s)
    optimizer.step()
    optimizer.zero_grad()
    return loss.detach()


class SAMModule(MethodWrapper):
    """Trains a `Method` with (rw)SAM steps; `weights` holds one weight per subset image."""

    def __init__(self, method: Method, weights: Tensor, rho: float, adaptive: bool) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.method = method
        self.register_buffer("weights", weights.float())  # in checkpoints: resumes keep them
        self.rho = rho
        self.adaptive = adaptive

    @property
    def wrapped(self) -> Method:
        return self.method

    def training_step(self, batch: tuple[list[Tensor], Tensor, Tensor], batch_idx: int) -> Tensor:
        views, targets, index = batch
        w = self.weights[index]
        params = trainable_parameters(self)  # not perturbed: the frozen ones (SwAV's prototypes)
        before = buffer_snapshot(self.method)
        unperturbed: list[Tensor] = []

        def weighted() -> Tensor:
            losses = self.method.per_example_loss(views, targets)
            unperturbed.append(losses.detach().mean())  # logged: comparable with `base`
            return (losses * w).mean()

        def plain() -> Tensor:
            return self.method.per_example_loss(views, targets).mean()

        perturbed = sam_step(
            params,
            weighted,
            plain,
            self.optimizers(),
            self.rho,
            self.adaptive,
            self.manual_backward,
            lambda: buffers_as_before(self.method, before),
        )
        n = len(targets)
        self.log("train_loss", unperturbed[0], on_step=True, on_epoch=True, batch_size=n)
        self.log("perturbed_loss", perturbed, on_step=False, on_epoch=True, batch_size=n)
        return unperturbed[0]

    def on_train_epoch_end(self) -> None:
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()  # type: ignore[union-attr]
