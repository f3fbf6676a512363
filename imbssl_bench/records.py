"""Result records: one JSON file per run, written atomically, named by the run id."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError

SCHEMA = "imbssl-bench/record/v1"
REQUIRED = (
    "schema",
    "run_id",
    "status",
    "method",
    "variant",
    "dataset",
    "ratio",
    "seed",
    "class_counts",
    "n_train",
    "config",
    "metrics",
    "wall_s",
    "env",
)
METRIC_KEYS = ("knn_top1", "linear_top1", "per_class_acc", "group_acc", "per_class_std")


def record_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / f"{run_id}.json"


def _clean(obj: Any) -> Any:
    """JSON has no NaN: store non-finite floats as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename: never a partial file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(
            f"cannot write '{path}' ({exc.strerror}); choose a writable folder"
        ) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(folder: Path) -> None:
    """Fail before any training when records could not be written to `folder`."""
    write_text_atomic(Path(folder) / ".write-check", "")
    (Path(folder) / ".write-check").unlink()


def write_record(path: Path, record: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(_clean(record), indent=2, allow_nan=False) + "\n")


def read_record(path: Path) -> dict[str, Any]:
    """Load and check one record; a corrupt or foreign file is a `UserError` naming it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"corrupt record '{path}' ({type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0]}); delete it or move it out of the "
            "results folder"
        ) from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise UserError(
            f"'{path}' is not an imbssl-bench record (expected schema '{SCHEMA}'); "
            "move it out of the results folder"
        )
    missing = [k for k in REQUIRED if k not in record]
    if record.get("status") == "ok":
        metrics = record.get("metrics")
        metrics = metrics if isinstance(metrics, dict) else {}
        missing += [f"metrics.{k}" for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise UserError(
            f"record '{path}' lacks {', '.join(missing)}; it is corrupt: delete it "
            "and rerun that run"
        )
    try:
        RunConfig.from_dict(record["config"])
    except (TypeError, AttributeError) as exc:
        raise UserError(
            f"record '{path}' has an invalid config ({exc}); it is corrupt or from a newer "
            "imbssl-bench: delete it or upgrade"
        ) from None
    return record


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """All records under `results_dir` (recursively), sorted by run id."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(
            f"results folder '{results_dir}' does not exist; run `imbssl-bench run "
            "--out DIR` first or pass --results DIR"
        )
    records = [read_record(p) for p in sorted(results_dir.rglob("*.json"))]
    return sorted(records, key=lambda r: r["run_id"])
