"""Progress reporting: library code talks to a `Reporter`; the CLI plugs in a rich one."""

from __future__ import annotations

from typing import Any, Protocol

import pytorch_lightning as pl


class Reporter(Protocol):
    def run_started(self, index: int, total: int, label: str) -> None: ...
    def stage(self, name: str, total: int | None = None) -> None: ...
    def advance(self, info: str = "") -> None: ...
    def run_finished(self, record: dict[str, Any]) -> None: ...
    def note(self, message: str) -> None: ...


class NullReporter:
    """Reports nothing (library use, tests)."""

    def run_started(self, index: int, total: int, label: str) -> None:
        pass

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, info: str = "") -> None:
        pass

    def run_finished(self, record: dict[str, Any]) -> None:
        pass

    def note(self, message: str) -> None:
        pass


LOSS_EVERY = 25  # steps between loss readings shown in the progress line


class ReporterCallback(pl.Callback):
    """Forwards Lightning's step and epoch events to a `Reporter`."""

    def __init__(self, reporter: Reporter, label: str = "train") -> None:
        self.reporter = reporter
        self.label = label

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reporter.stage(self.label, total=int(trainer.estimated_stepping_batches))

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        loss_text = ""
        if trainer.global_step % LOSS_EVERY == 0:  # reading the loss waits for the device
            loss = trainer.callback_metrics.get("train_loss_step")
            loss_text = f" loss {float(loss):.3f}" if loss is not None else ""
            self._loss_text = loss_text
        text = loss_text or getattr(self, "_loss_text", "")
        self.reporter.advance(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}{text}")
