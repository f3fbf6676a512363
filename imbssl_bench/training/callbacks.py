"""The Lightning callbacks of every training stage: the stage's own time and loss across
resumes, per-epoch losses, per-process augmentation seeds, frozen parameters, finite losses."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from imbssl_bench.envinfo import code_label
from imbssl_bench.methods.base import frozen_parameters_of
from imbssl_bench.progress import LOSS_EVERY


class StageStats(pl.Callback):
    """The stage's wall time and last epoch loss, saved in its checkpoints, so that a resumed
    stage reports the time and loss of all its epochs, not only of those it ran itself."""

    def __init__(self, start: float) -> None:
        self.earlier_wall_s = 0.0  # spent before the checkpoint this process resumed from
        self.earlier_code: tuple[str, ...] = ()  # the code that wrote that checkpoint
        self.loss: float | None = None
        self._start = start  # `time.perf_counter()` when this process began the stage

    def trained_by(self) -> tuple[str, ...]:
        mine = code_label()
        return (
            self.earlier_code if self.earlier_code[-1:] == (mine,) else (*self.earlier_code, mine)
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train_loss_epoch")  # one read per epoch
        self.loss = float(loss) if loss is not None else self.loss

    def state_dict(self) -> dict[str, Any]:
        wall = self.earlier_wall_s + time.perf_counter() - self._start
        return {"wall_s": wall, "loss": self.loss, "trained_by": list(self.trained_by())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier_wall_s = float(state_dict["wall_s"])
        self.loss = state_dict["loss"]
        self.earlier_code = tuple(state_dict.get("trained_by", ("unknown",)))


class EpochLosses(pl.Callback):
    """Each epoch's mean training loss (``train_loss_epoch``), kept in the stage's
    checkpoints so that a resumed stage still knows its first epochs'."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train_loss_epoch")
        if loss is not None:
            self.losses.append(float(loss))

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.losses = list(state_dict["losses"])


class RankAugmentation(pl.Callback):
    """Gives each DDP process its own augmentation stream: every process starts from the
    run's seed, so without this the i-th image of each process's batch would get the same
    crop, flip and jitter. At the start of training, processes other than rank 0 reseed
    torch, numpy and `random` from the state they share and their rank; rank 0 (and a single
    process) draws exactly as before. DataLoader workers are seeded per rank by Lightning."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == 0:
            return
        shared = int(torch.randint(2**31, ()))  # the same in every process
        seed = int(np.random.SeedSequence([shared, trainer.global_rank]).generate_state(1)[0])
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)


class FrozenGradients(pl.Callback):
    """Drops the gradients of the methods' `frozen_parameters` before each optimiser step
    (after DDP has averaged them), so those parameters stay as they are."""

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        for p in frozen_parameters_of(pl_module):
            p.grad = None


class FiniteLoss(pl.Callback):
    """Stops training at the first non-finite loss with a `FloatingPointError` that says the
    epoch and step. The check stays on the device; the flag is read every `LOSS_EVERY` steps
    and at the end of each epoch, so the step itself never waits for it."""

    def __init__(self) -> None:
        self.bad_step: Tensor | None = None  # first step with a non-finite loss, -1: none

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor):
            return
        if self.bad_step is None:
            self.bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
        step = trainer.global_step - 1  # the step that just ran (optimizer steps count)
        first = (self.bad_step < 0) & ~torch.isfinite(loss.detach()).all()
        self.bad_step = torch.where(first, torch.full_like(self.bad_step, step), self.bad_step)
        if trainer.global_step % LOSS_EVERY == 0:
            self._check(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        step = -1 if self.bad_step is None else int(self.bad_step)
        # every DDP process checks at the same steps, so all of them stop together
        if not trainer.strategy.reduce_boolean_decision(step >= 0, all=False):
            return
        if step < 0:
            raise FloatingPointError("training loss became nan/inf in another DDP process")
        per_epoch = max(1, int(trainer.num_training_batches))
        raise FloatingPointError(
            f"training loss became nan/inf at epoch {step // per_epoch + 1}/{trainer.max_epochs}, "
            f"step {step + 1} (of {int(trainer.estimated_stepping_batches)}); lower --lr, or "
            "try --precision 32-true"
        )


class LogLearningRate(pl.Callback):
    """The learning rate of every step, logged with the loss (``lr``)."""

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        if lr is not None:
            pl_module.log("lr", float(lr), on_step=True, on_epoch=False, batch_size=1)
