"""Where a grid's runs execute: in this process, in local worker processes, or on slurm.

- ``local`` with ``jobs=1``: one run after the other in this process; a run that trains on
  several devices (DDP) gets a worker process of its own, which Lightning's launcher joins.
- ``local`` with ``jobs=N``: N workers at once, each pinned to its own GPUs (or its share of
  the CPU threads).
- ``slurm``: one submitit job per run (``pip install "imbssl-bench[slurm]"``); a job with
  several devices gets one task per device, which Lightning reads from slurm's environment.

Every run writes its own record (`imbssl_bench.worker`); a worker that dies without one gets a
``failed`` record here with the end of its log.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from imbssl_bench.errors import UserError
from imbssl_bench.grid import PlannedRun, failed_record
from imbssl_bench.progress import Reporter
from imbssl_bench.records import read_record, write_record
from imbssl_bench.worker import run_planned, write_payload

LAUNCHERS = ("local", "slurm")
LOG = "worker.log"


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time_min: int = 240
    cpus_per_task: int = 8
    cluster: str | None = None  # submitit's: None = slurm when available, "local" for tests


class WorkerDied(RuntimeError):
    pass


def _stamp(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def _settle(run: PlannedRun, before: int | None, why: str) -> dict[str, Any]:
    """The record the worker wrote, or a ``failed`` one when it wrote none."""
    if _stamp(run.path) == before:
        write_record(run.path, failed_record(run, WorkerDied(why), 0.0))
    return read_record(run.path)


def _pinned_env(slot: int, jobs: int, run: PlannedRun) -> dict[str, str]:
    env = dict(os.environ)
    if jobs == 1:
        return env
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus and run.config.runtime.accelerator != "cpu":
        per = run.config.runtime.devices
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str((slot * per + i) % gpus) for i in range(per))
    else:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def run_worker(run: PlannedRun, slot: int = 0, jobs: int = 1) -> dict[str, Any]:
    """Execute `run` in ``python -m imbssl_bench.worker`` and return its record."""
    before = _stamp(run.path)
    payload = write_payload(run)
    log = payload.parent / LOG
    with open(log, "wb") as out:
        code = subprocess.run(
            [sys.executable, "-m", "imbssl_bench.worker", str(payload)],
            env=_pinned_env(slot, jobs, run),
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    return _settle(run, before, f"worker exited with code {code}: {tail.strip()}")


def run_local(
    todo: list[PlannedRun],
    reporter: Reporter,
    jobs: int,
    in_process: Callable[[PlannedRun], dict[str, Any]],
) -> None:
    def label(run: PlannedRun) -> str:
        c = run.config
        return f"{c.method}/{c.variant} ratio {c.imbalance.ratio:g} seed {c.seed}"

    if jobs == 1:
        for i, run in enumerate(todo):
            reporter.run_started(i, len(todo), label(run))
            multi = run.config.world_size > 1
            reporter.run_finished(run_worker(run) if multi else in_process(run))
        return
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(jobs):
        slots.put(slot)

    def one(i: int, run: PlannedRun) -> dict[str, Any]:
        slot = slots.get()
        try:
            reporter.run_started(i, len(todo), label(run))
            record = run_worker(run, slot, jobs)
            reporter.run_finished(record)
            return record
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(one, i, run) for i, run in enumerate(todo)]:
            future.result()


def run_slurm(todo: list[PlannedRun], reporter: Reporter, options: SlurmOptions) -> None:
    try:
        import submitit
    except ImportError:
        raise UserError(
            '--launcher slurm needs submitit: pip install "imbssl-bench[slurm]"'
        ) from None
    if not todo:
        return
    out = todo[0].path.parent / "slurm"
    executor = submitit.AutoExecutor(folder=out / "%j", cluster=options.cluster)
    runtime = todo[0].config.runtime
    on_slurm = executor.cluster == "slurm"
    executor.update_parameters(
        timeout_min=options.time_min,
        nodes=runtime.num_nodes,
        tasks_per_node=runtime.devices if on_slurm else 1,  # else Lightning starts the ranks
        cpus_per_task=options.cpus_per_task,
        **({"gpus_per_node": runtime.devices} if runtime.accelerator != "cpu" else {}),
        **({"slurm_partition": options.partition} if options.partition and on_slurm else {}),
    )
    started = time.perf_counter()
    submitted = []
    for i, run in enumerate(todo):
        c = run.config
        reporter.run_started(i, len(todo), f"{c.method}/{c.variant} ratio "
                             f"{c.imbalance.ratio:g} seed {c.seed} (submitted)")  # fmt: skip
        submitted.append((run, _stamp(run.path), executor.submit(run_planned, run.to_dict())))
    for run, before, job in submitted:
        try:
            job.result()
            why = "the job ended without a record"
        except Exception as exc:  # submitit's FailedJobState carries the job's traceback
            why = f"job {job.job_id} failed: {' '.join(str(exc).split())[-1500:]}"
        reporter.run_finished(_settle(run, before, why))
    reporter.note(f"{len(todo)} job(s) done in {time.perf_counter() - started:.0f} s")
