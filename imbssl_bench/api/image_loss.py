"""`PerImageLoss`: a method trained on its per-image losses, weighted, each image's loss of the
last epoch kept (what `PretrainContext.fit_stage` wraps a method in for `loss_weights` and
`image_losses`)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from imbssl_bench.api.wrapping import MethodWrapper
from imbssl_bench.errors import UserError
from imbssl_bench.methods.base import Method


class PerImageLoss(MethodWrapper):
    """Trains `method` with the loss ``mean(weights[i] * loss_i)`` over each batch (weights of
    mean 1 over the split keep the loss's scale; None: all 1, the plain loss) and keeps every
    image's mean loss over the last epoch in `last_losses` (NaN: not drawn in it). Weights and
    last losses are buffers, so an epoch checkpoint keeps them and a resumed stage has them;
    the current epoch's sums are not (DDP broadcasts buffers from rank 0 at every step, which
    would overwrite each process's own sums; a resumed epoch starts over anyway)."""

    def __init__(self, method: Method, n: int, weights: Tensor | None = None) -> None:
        super().__init__()
        if not isinstance(method, Method):
            raise TypeError(
                f"loss weights and per-image losses train a Method, not {type(method).__name__}"
                "; give fit_stage the method and let it wrap it"
            )
        if not method.has_per_example_loss():
            raise UserError(
                f"method '{method.name}' gives no per-image losses (Method.per_example_loss), "
                "which loss weights and per-image losses need; pick another method"
            )
        if weights is not None and tuple(weights.shape) != (n,):
            raise ValueError(
                f"loss_weights: one weight per image ({n}), not {tuple(weights.shape)}"
            )
        self.method = method
        self.register_buffer("weights", torch.ones(n) if weights is None else weights.float())
        self.loss_sum = torch.zeros(n, dtype=torch.float64)  # this process's, this epoch
        self.drawn = torch.zeros(n, dtype=torch.float64)
        self.register_buffer("last_losses", torch.full((n,), float("nan"), dtype=torch.float64))

    @property
    def wrapped(self) -> Method:
        return self.method

    def on_train_epoch_start(self) -> None:
        self.loss_sum = torch.zeros_like(self.last_losses)  # on the training device
        self.drawn = torch.zeros_like(self.last_losses)

    def training_step(self, batch: tuple[list[Tensor], Tensor, Tensor], batch_idx: int) -> Tensor:
        views, targets, index = batch
        losses = self.method.per_example_loss(views, targets)
        with torch.no_grad():
            self.loss_sum.index_add_(0, index, losses.detach().double())
            self.drawn.index_add_(0, index, torch.ones_like(losses, dtype=self.drawn.dtype))
        loss = (losses * self.weights[index]).mean()
        self.log("train_loss", loss, on_step=True, on_epoch=True, batch_size=len(targets))
        return loss

    def on_train_epoch_end(self) -> None:
        """Before the epoch checkpoint (Lightning saves after the module's hook): the epoch's
        losses of every process added up, then each image's mean."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(self.loss_sum)
            dist.all_reduce(self.drawn)
        mean = self.loss_sum / self.drawn.clamp(min=1)
        self.last_losses.copy_(torch.where(self.drawn > 0, mean, torch.nan))
