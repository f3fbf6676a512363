"""Training logs: Lightning's loggers, one log per run under ``<out>/logs/<run_id>/``.

``csv`` (the default) is Lightning's `CSVLogger` writing ``metrics.csv``: every stage of a
variant appends its rows with a ``stage`` column, rows reach the file after every step, and a
resumed stage keeps the rows of the epochs its checkpoint holds and drops those it trains again
(Lightning's own writer deletes an existing file). ``tensorboard`` and ``wandb`` are Lightning's
loggers too (optional extras), one log per stage named by the run id; ``none`` logs nothing.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from imbssl_bench.errors import UserError
from imbssl_bench.files import write_text_atomic

LOGS = "logs"  # beside the records
LOGGERS = ("csv", "tensorboard", "wandb", "none")
EXTRA = {"tensorboard": "tensorboard", "wandb": "wandb"}  # logger -> the package it needs


def check_logger(kind: str, here: bool = True) -> None:
    """A `UserError` for an unknown logger, or (`here`: runs execute on this machine) one
    whose package is not installed."""
    if kind not in LOGGERS:
        raise UserError(f"--logger must be one of {', '.join(LOGGERS)}, not '{kind}'")
    package = EXTRA.get(kind)
    if here and package and importlib.util.find_spec(package) is None:
        raise UserError(
            f"--logger {kind} needs the {package} package: pip install 'imbssl-bench[{kind}]' "
            "(or pass --logger csv)"
        )


class _StageWriter(ExperimentWriter):
    """Lightning's CSV writer, appending to the run's file: rows carry the `stage`; the rows of
    this stage from epoch `keep_epochs` on (to be trained again) are dropped first."""

    def __init__(self, log_dir: str, stage: str, keep_epochs: int) -> None:
        self.stage, self.keep_epochs = stage, keep_epochs
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes the file
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = [r for r in reader if self._keeps(r)]
            self.metrics_keys = list(reader.fieldnames or [])
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(path, out.getvalue())

    def _keeps(self, row: dict[str, str]) -> bool:
        if row.get("stage") != self.stage:
            return True
        epoch = row.get("epoch") or ""
        return epoch != "" and float(epoch) < self.keep_epochs

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        super().log_metrics({**metrics_dict, "stage": self.stage}, step)  # type: ignore[dict-item]


class StageCSVLogger(CSVLogger):
    """`CSVLogger` writing ``<run_dir>/metrics.csv`` for one stage of the run (see module)."""

    def __init__(self, run_dir: Path, stage: str, keep_epochs: int) -> None:
        # flushed every step: a kill loses no finished step's row
        super().__init__(
            str(run_dir.parent), name=run_dir.name, version="", flush_logs_every_n_steps=1
        )
        self._stage, self._keep = stage, keep_epochs

    @property
    @rank_zero_experiment
    def experiment(self) -> _StageWriter:
        if self._experiment is None:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = _StageWriter(self.log_dir, self._stage, self._keep)
        return self._experiment

    def log_hyperparams(self, params: Any = None) -> None:
        """Nothing: the record holds the resolved config."""


@dataclass(frozen=True)
class RunLogging:
    """Where and how a run logs its training stages."""

    kind: str  # one of LOGGERS
    folder: Path  # <out>/logs/<run_id>
    run_id: str

    def loggers(self, stage: str, resumed_epochs: int) -> list[Logger]:
        """The loggers of one training stage, resumed after `resumed_epochs` epochs."""
        if self.kind == "csv":
            return [StageCSVLogger(self.folder, stage, resumed_epochs)]
        if self.kind == "tensorboard":
            from pytorch_lightning.loggers import TensorBoardLogger

            root = str(self.folder.parent)
            return [TensorBoardLogger(root, name=self.run_id, version=stage)]
        if self.kind == "wandb":
            from pytorch_lightning.loggers import WandbLogger

            run, folder = f"{self.run_id}-{stage}", str(self.folder)
            return [
                WandbLogger(name=run, id=run, group=self.run_id, save_dir=folder, resume="allow")
            ]
        return []
