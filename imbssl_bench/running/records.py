"""Result records: one JSON file per run, written atomically, named by the run id."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError
from imbssl_bench.files import write_text_atomic

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
CONFIG_SECTIONS = ("data", "imbalance", "model", "train", "eval")
METRIC_KEYS = ("knn_top1", "linear_top1", "per_class_acc", "group_acc", "per_class_std")


def record_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / f"{run_id}.json"


def _clean(obj: Any) -> Any:
    """JSON-safe values: numpy/torch scalars and arrays become Python, NaN/inf become null."""
    if hasattr(obj, "tolist") and not isinstance(obj, (list, tuple, str)):
        obj = obj.tolist()  # numpy and torch values from plugins
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def check_writable(folder: Path) -> None:
    """Fail before any training when records could not be written to `folder`."""
    write_text_atomic(Path(folder) / ".write-check", "")
    (Path(folder) / ".write-check").unlink()


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of the record's JSON (keys sorted, ``digest`` left out): `write_record` stores it,
    so a record edited after the harness wrote it no longer matches (``leaderboard
    --validate``). A check against slips and hand edits, not a signature: anyone can recompute
    it."""
    body = {k: v for k, v in record.items() if k != "digest"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write `record` (JSON-safe, with its `record_digest`) atomically to `path`."""
    clean = _clean(record)
    clean["digest"] = record_digest(clean)
    write_text_atomic(path, json.dumps(clean, indent=2, allow_nan=False) + "\n")


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
    problem = _problem(record)
    if problem:
        raise UserError(f"record '{path}' {problem}; it is corrupt: delete it and rerun that run")
    return record


def _problem(record: dict[str, Any]) -> str | None:
    """What is wrong with a record that has our schema tag, or None."""
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        return f"lacks {', '.join(missing)}"
    types = {
        "run_id": str,
        "method": str,
        "variant": str,
        "dataset": str,
        "status": str,
        "seed": int,
        "ratio": (int, float),
        "class_counts": list,
        "config": dict,
    }
    wrong = [k for k, t in types.items() if not isinstance(record[k], t)]
    if wrong:
        return f"has a wrong type for {', '.join(wrong)}"
    if record["status"] not in ("ok", "failed"):
        return f"has status '{record['status']}' (expected ok or failed)"
    absent = [s for s in CONFIG_SECTIONS if not isinstance(record["config"].get(s), dict)]
    if absent:
        return f"has no config section(s) {', '.join(absent)}"
    try:
        RunConfig.from_dict(record["config"])
    except (TypeError, AttributeError) as exc:
        return f"has an invalid config ({exc})"
    if record["status"] == "ok":
        m = record["metrics"] if isinstance(record["metrics"], dict) else {}
        missing = [f"metrics.{k}" for k in METRIC_KEYS if k not in m]
        if missing:
            return f"lacks {', '.join(missing)}"
        bad = [
            k
            for k in ("knn_top1", "linear_top1")
            if not (isinstance(m[k], (int, float)) and 0 <= m[k] <= 1)
        ]
        if bad or not isinstance(m["group_acc"], dict):
            return f"has invalid metrics ({', '.join(bad) or 'group_acc'})"
    return None


def record_version(record: dict[str, Any]) -> str:
    """The package version that wrote `record` (``env.code.version``), or "unknown"."""
    code = record.get("env", {}).get("code") or {}
    return code.get("version") or "unknown"


def other_versions(paths: list[Path], current: str) -> Counter[str]:
    """How many of the records at `paths` a package version other than `current` wrote, by
    version ("unknown" for records without ``env.code``)."""
    versions = Counter(record_version(read_record(p)) for p in paths)
    versions.pop(current, None)
    return versions


# The harness's own folders beside the records: epoch checkpoints (with a worker's run.json, kept
# by a failed run for --retry-failed), kept base weights, slurm logs, training logs. Never records.
WORK_FOLDERS = ("checkpoints", "weights", "slurm", "logs")


def record_files(results_dir: Path) -> list[Path]:
    """The ``*.json`` files under `results_dir` (recursively), outside `WORK_FOLDERS`."""
    return [
        p
        for p in sorted(Path(results_dir).rglob("*.json"))
        if not set(p.relative_to(results_dir).parts[:-1]) & set(WORK_FOLDERS)
    ]


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """All records under `results_dir` (recursively), sorted by run id."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(
            f"results folder '{results_dir}' does not exist; run `imbssl-bench run "
            "--out DIR` first or pass --results DIR"
        )
    records = [read_record(p) for p in record_files(results_dir)]
    return sorted(records, key=lambda r: r["run_id"])
