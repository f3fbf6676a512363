"""What ``imbssl-bench show`` reads: every run of a results folder with its curves (mean loss and
online kNN per epoch, by training stage), from the run's training log
(``logs/<run_id>/metrics.csv``, written after every step, so a run can be watched while it
trains) or, without a log, from its record (the stage that made the backbone)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbssl_bench.errors import UserError
from imbssl_bench.reporting.curves import Curve
from imbssl_bench.running.records import load_records

LOG_FILE = Path("logs") / "{run_id}" / "metrics.csv"
LOG_COLUMNS = (("loss_curve", "train_loss_epoch", 1.0), ("knn_curve", "knn_top1", 100.0))


@dataclass(frozen=True)
class RunView:
    """One run of a results folder: its record (None while it trains or after it stopped
    unfinished) and its curves, metric (``loss_curve``, ``knn_curve`` in %) -> stage -> curve."""

    run_id: str
    record: dict[str, Any] | None
    curves: dict[str, dict[str, Curve]]

    @property
    def status(self) -> str:
        return self.record["status"] if self.record else "no record (training or stopped)"

    def last(self, metric: str) -> tuple[str, float, float] | None:
        """(stage, epoch, value) of the last point of `metric` (the last stage's)."""
        stages = self.curves.get(metric, {})
        stage = next(reversed(stages), None)
        if stage is None or not stages[stage]:
            return None
        return (stage, *stages[stage][-1])


def log_curves(path: Path) -> dict[str, dict[str, Curve]]:
    """The curves in a run's ``metrics.csv``: the epoch rows' loss and kNN, by stage; epochs
    counted from 1, as in records. A short row (the one being written) is skipped."""
    curves: dict[str, dict[str, Curve]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if None in row.values():  # a short row: the one being written
                continue
            for metric, column, scale in LOG_COLUMNS:
                try:
                    point = (int(row["epoch"]) + 1, round(scale * float(row[column]), 6))
                except (KeyError, TypeError, ValueError):
                    continue
                curves.setdefault(metric, {}).setdefault(row.get("stage") or "", []).append(point)
    return curves


def record_curves(record: dict[str, Any]) -> dict[str, dict[str, Curve]]:
    """The curves a record keeps (``metrics.loss_curve``, ``metrics.knn_curve``)."""
    m = record.get("metrics") or {}
    stages = {
        "loss_curve": m.get("loss_stage"),
        "knn_curve": (m.get("knn_monitor") or {}).get("stage"),
    }
    return {
        metric: {stages[metric] or "?": [(e, round(scale * v, 6)) for e, v in m[metric]]}
        for metric, _, scale in LOG_COLUMNS
        if m.get(metric)
    }


def run_views(results: Path) -> list[RunView]:
    """Every run under `results`: those with a record and those with only a training log."""
    records = {r["run_id"]: r for r in load_records(results)}
    logs = {p.parent.name: p for p in Path(results).glob("**/" + str(LOG_FILE).format(run_id="*"))}
    views = []
    for run_id in sorted(records.keys() | logs.keys()):
        record = records.get(run_id)
        log = logs.get(run_id)
        curves = log_curves(log) if log else record_curves(record) if record else {}
        views.append(RunView(run_id, record, curves))
    return views


def find_run(views: list[RunView], run_id: str, results: Path) -> RunView:
    """The view of `run_id` (a unique prefix will do), or a one-line error."""
    hits = [v for v in views if v.run_id == run_id] or [
        v for v in views if v.run_id.startswith(run_id)
    ]
    if len(hits) == 1:
        return hits[0]
    what = "matches several runs" if hits else "is not a run"
    raise UserError(
        f"--run '{run_id}' {what} under {results}/; `imbssl-bench show {results}` lists them"
    )
