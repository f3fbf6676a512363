"""Where a grid's runs execute: in this process, in local worker processes, or on slurm.

- ``local`` with ``jobs=1``: one run after the other in this process; a run that trains on
  several devices (DDP) gets a worker process of its own, which Lightning's launcher joins.
- ``local`` with ``jobs=N``: N workers at once, each pinned to its own GPUs (or its share of
  the CPU threads).
- ``slurm``: one submitit job per run (``pip install "imbssl-bench[slurm]"``); a job with
  several devices gets one task per device, which Lightning reads from slurm's environment.

Every run writes its own record (`imbssl_bench.running.worker`); a worker that dies without
one gets a ``failed`` record here with the end of its log.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from imbssl_bench.errors import UserError
from imbssl_bench.progress import NullReporter, Reporter
from imbssl_bench.running.execute import checkpoint_dir, failed_record, run_here
from imbssl_bench.running.matching import follow_remedies
from imbssl_bench.running.plan import PlannedRun
from imbssl_bench.running.records import read_record, write_record
from imbssl_bench.running.worker import run_planned, write_payload
from imbssl_bench.training.checkpoints import remove_if_empty

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


def gpu_slice(visible: str | None, gpus: int, slot: int, per: int) -> str:
    """``CUDA_VISIBLE_DEVICES`` for worker `slot` with `per` GPUs: its slice of the GPUs this
    process sees (`visible`, the inherited ``CUDA_VISIBLE_DEVICES``, e.g. a slurm allocation;
    None: all `gpus` of the machine)."""
    ids = [v.strip() for v in visible.split(",")] if visible else [str(i) for i in range(gpus)]
    return ",".join(ids[slot * per : (slot + 1) * per])


def _pinned_env(slot: int, jobs: int, run: PlannedRun) -> dict[str, str]:
    env = dict(os.environ)
    if jobs == 1:
        return env
    env.pop("MASTER_PORT", None)  # each DDP worker's Lightning picks a free port of its own
    if gpus := _gpus(run):
        visible = env.get("CUDA_VISIBLE_DEVICES")
        env["CUDA_VISIBLE_DEVICES"] = gpu_slice(visible, gpus, slot, run.config.runtime.devices)
    else:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def _gpus(run: PlannedRun) -> int:
    """GPUs this machine gives the run's workers (0: the run trains on the CPU)."""
    if run.config.runtime.accelerator == "cpu" or not torch.cuda.is_available():
        return 0
    return torch.cuda.device_count()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the worker and the DDP ranks it started


class Workers:
    """The grid's worker processes (``python -m imbssl_bench.running.worker``), each in a
    process group of its own. `stop` (Ctrl+C) interrupts them all and writes no record for
    them, so the next run of the same command resumes them from their checkpoints."""

    GRACE_S = 20.0  # for Lightning's graceful shutdown before SIGKILL

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: set[subprocess.Popen[bytes]] = set()
        self.stopping = threading.Event()

    def run(self, run: PlannedRun, slot: int = 0, jobs: int = 1) -> dict[str, Any] | None:
        """The run's record, or None when the grid is stopping."""
        before = _stamp(run.path)
        payload = write_payload(run)
        log = payload.parent / LOG
        with open(log, "wb") as out:
            with self.lock:
                if self.stopping.is_set():
                    return None
                proc = subprocess.Popen(
                    [sys.executable, "-m", "imbssl_bench.running.worker", str(payload)],
                    env=_pinned_env(slot, jobs, run),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl+C reaches the grid, which stops the group
                )
                self.live.add(proc)
            try:
                code = proc.wait()
            except BaseException:
                self.stop()
                raise
            finally:
                with self.lock:
                    self.live.discard(proc)
        if self.stopping.is_set():
            return None
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        return _settle(run, before, f"worker exited with code {code}: {tail.strip()}")

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
            procs = list(self.live)
        for proc in procs:
            _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + self.GRACE_S
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)  # what the worker left behind, if anything
            proc.wait()


class _Serialized:
    """A reporter shared by the launcher's threads: one call at a time, and the grid's
    progress counts finished runs (they finish out of order)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter, self.lock, self.finished = reporter, threading.Lock(), 0

    def run_started(self, label: str, total: int) -> None:
        with self.lock:
            self.reporter.run_started(self.finished, total, label)

    def run_finished(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.finished += 1
            self.reporter.run_finished(record)


def _depends_on_base(run: PlannedRun) -> bool:
    """Runs that start from a `base` run's kept weights (cluster-distill's student...)."""
    return run.base_weights is not None and run.config.variant != "base"


def run_local(
    todo: list[PlannedRun],
    reporter: Reporter,
    jobs: int,
    in_process: Callable[[PlannedRun], dict[str, Any] | None],
) -> None:
    if any(run.config.runtime.num_nodes > 1 for run in todo):
        raise UserError("--num-nodes > 1 needs a cluster: use --launcher slurm")
    workers = Workers()
    # runs that start from a base run's weights wait for the base runs to finish
    waves = [[r for r in todo if not _depends_on_base(r)], [r for r in todo if _depends_on_base(r)]]
    if jobs == 1:
        for i, run in enumerate(waves[0] + waves[1]):
            reporter.run_started(i, len(todo), run.label)
            record = workers.run(run) if run.config.world_size > 1 else in_process(run)
            assert record is not None  # a stopping grid raised KeyboardInterrupt instead
            reporter.run_finished(record)
        return
    gpus = max((_gpus(run) for run in todo), default=0)
    devices = max(run.config.runtime.devices for run in todo)
    if gpus and jobs * devices > gpus:
        raise UserError(
            f"--jobs {jobs} x --devices {devices} needs {jobs * devices} GPUs but this machine "
            f"has {gpus}; lower --jobs"
        )
    shared = _Serialized(reporter)
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(jobs):
        slots.put(slot)

    def one(run: PlannedRun) -> None:
        slot = slots.get()
        try:
            if workers.stopping.is_set():
                return
            shared.run_started(run.label, len(todo))
            record = workers.run(run, slot, jobs)
            if record is not None:
                shared.run_finished(record)
        finally:
            slots.put(slot)

    for wave in waves:
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            for future in [pool.submit(one, run) for run in wave]:
                future.result()
        except BaseException:  # Ctrl+C: no new runs, the running ones stopped, no records
            pool.shutdown(wait=False, cancel_futures=True)
            workers.stop()
            raise
        pool.shutdown()


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
    if options.cluster is None and not on_slurm:
        raise UserError(
            "--launcher slurm: no slurm on this machine (srun is not on PATH); submit from a "
            "slurm login node, "
            "or use --launcher local"
        )
    executor.update_parameters(
        timeout_min=options.time_min,
        nodes=runtime.num_nodes,
        tasks_per_node=runtime.devices if on_slurm else 1,  # else Lightning starts the ranks
        cpus_per_task=options.cpus_per_task,
        **({"gpus_per_node": runtime.devices} if runtime.accelerator != "cpu" else {}),
        **({"slurm_partition": options.partition} if options.partition and on_slurm else {}),
    )
    started = time.perf_counter()
    submitted, base_jobs = [], {}
    order = [r for r in todo if not _depends_on_base(r)] + [r for r in todo if _depends_on_base(r)]
    for i, run in enumerate(order):
        reporter.run_started(i, len(todo), f"{run.label} (submitted)")
        after = base_jobs.get(run.base_weights) if _depends_on_base(run) else None
        executor.update_parameters(slurm_additional_parameters=_after(after))
        job = executor.submit(run_planned, run.to_dict())
        if run.config.variant == "base" and run.base_weights is not None:
            base_jobs[run.base_weights] = job.job_id
        submitted.append((run, _stamp(run.path), job))
    for n, (run, before, job) in enumerate(submitted):
        try:
            job.result()
            why = "the job ended without a record"
        except KeyboardInterrupt:  # cancel the rest: a rerun would submit them again
            for _, _, other in submitted[n:]:
                other.cancel(check=False)
            raise
        except Exception as exc:  # submitit's FailedJobState carries the job's traceback
            why = f"job {job.job_id} failed: {' '.join(str(exc).split())[-1500:]}"
        reporter.run_finished(_settle(run, before, why))
    reporter.note(f"{len(todo)} job(s) done in {time.perf_counter() - started:.0f} s")


def _after(job_id: str | None) -> dict[str, str]:
    """Slurm parameters of a job that starts from the weights base job `job_id` keeps: it
    starts once that job succeeded, and is cancelled if the job failed (its record says so;
    ``--retry-failed`` resubmits it). A base run that fails inside a job that ends normally
    keeps no valid weights: the variant then trains its base itself."""
    if job_id is None:
        return {}
    return {"dependency": f"afterok:{job_id}", "kill-on-invalid-dep": "yes"}


def run_grid(
    plan: list[PlannedRun],
    reporter: Reporter | None = None,
    retry_failed: bool = False,
    jobs: int = 1,
    launcher: str = "local",
    slurm: SlurmOptions | None = None,
) -> list[dict[str, Any]]:
    """Run every planned run without a record (and failed ones with `retry_failed`) with the
    `launcher` (see above); a run that raises gets a ``failed`` record and
    the grid goes on. Returns all records."""
    if launcher not in LAUNCHERS:
        raise UserError(f"unknown launcher '{launcher}'; valid: {', '.join(LAUNCHERS)}")
    if jobs < 1:
        raise UserError(f"--jobs {jobs} must be at least 1")
    reporter = reporter or NullReporter()
    follow_remedies(plan, reporter.note)
    todo = [r for r in plan if r.status == "todo" or (retry_failed and r.status == "failed")]
    if launcher == "slurm":
        run_slurm(todo, reporter, slurm or SlurmOptions())
    else:
        run_local(todo, reporter, jobs, lambda run: run_here(run, reporter))
    for folder in {checkpoint_dir(r).parent for r in todo}:
        remove_if_empty(folder)
    return [read_record(r.path) for r in plan]
