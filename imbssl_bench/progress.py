"""Progress reporting: library code talks to a `Reporter`; the CLI plugs in a rich one."""

from __future__ import annotations

from typing import Any, Protocol

import pytorch_lightning as pl


class Reporter(Protocol):
    def run_started(self, index: int, total: int, label: str) -> None: ...
    def stage(self, name: str, total: int | None = None) -> None: ...
    def advance(self, info: str = "") -> None: ...
    def run_finished(self, record: dict[str, Any]) -> None: ...


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


class ReporterCallback(pl.Callback):
    """Forwards Lightning's step and epoch events to a `Reporter`."""

    def __init__(self, reporter: Reporter, label: str = "train") -> None:
        self.reporter = reporter
        self.label = label

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reporter.stage(self.label, total=int(trainer.estimated_stepping_batches))

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        loss = trainer.callback_metrics.get("train_loss_step")
        loss_text = f" loss {float(loss):.3f}" if loss is not None else ""
        self.reporter.advance(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}{loss_text}")
