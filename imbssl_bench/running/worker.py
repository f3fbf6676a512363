"""One planned run in a process of its own: ``python -m imbssl_bench.running.worker RUN.json``.

The grid starts workers for runs that train on several devices (Lightning's DDP launcher
re-runs this same command for the other ranks) and when it runs several runs at once
(``--jobs``); the slurm launcher calls `run_planned` on the cluster. Rank 0 writes the run's
record, ``ok`` or ``failed``, and removes its checkpoints after an ``ok`` one; the other ranks
write nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from imbssl_bench.running.execute import checkpoint_dir, run_here
from imbssl_bench.running.plan import PlannedRun

PAYLOAD = "run.json"  # in the run's checkpoint folder, for the worker to read


class LineReporter:
    """Plain lines on stderr (a worker's log): stages and notes, no bars."""

    def run_started(self, index: int, total: int, label: str) -> None:
        print(f"run {label}", file=sys.stderr, flush=True)

    def stage(self, name: str, total: int | None = None) -> None:
        print(f"  {name}", file=sys.stderr, flush=True)

    def advance(self, info: str = "") -> None:
        pass

    def run_finished(self, record: dict[str, Any]) -> None:
        pass

    def note(self, message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)


def run_planned(payload: dict[str, Any]) -> str | None:
    """Execute the run; rank 0 writes its record and returns its status (others: None)."""
    record = run_here(PlannedRun.from_dict(payload), LineReporter(), record_user_errors=True)
    return None if record is None else str(record["status"])


def write_payload(run: PlannedRun) -> Path:
    folder = checkpoint_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PAYLOAD
    path.write_text(json.dumps(run.to_dict()))
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m imbssl_bench.running.worker RUN.json", file=sys.stderr)
        return 2
    run_planned(json.loads(Path(args[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
