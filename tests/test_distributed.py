"""Scale-out: DDP within a run (2 CPU processes over gloo), several runs at once (--jobs),
and the slurm launcher through submitit's local executor. Each run writes its own record."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from lightly.transforms import SimCLRTransform
from PIL import Image
from torch import Tensor

from imbssl_bench.data import create_dataset
from imbssl_bench.errors import UserError
from imbssl_bench.running import launchers
from imbssl_bench.running.launchers import SlurmOptions, run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.running.records import load_records
from imbssl_bench.training.augment import batched_views
from imbssl_bench.training.callbacks import RankAugmentation
from tests.conftest import TINY_FLAGS, tiny_spec, wait_for_pauses


@pytest.mark.parametrize("augment", ["pil", "batched"])
def test_ddp_on_two_cpu_processes_keeps_the_global_batch(cli, tmp_path: Path, augment: str) -> None:  # type: ignore[no-untyped-def]
    common = ["run", "--method", "simclr", "--dataset", "digits", "--ratios", "10", *TINY_FLAGS]
    common += ["--accelerator", "cpu", "--augment", augment]
    single = cli(*common, "--out", str(tmp_path / "one"))
    ddp = cli(*common, "--devices", "2", "--out", str(tmp_path / "two"))
    assert single.code == 0 and ddp.code == 0, ddp.err
    (one,) = [json.loads(p.read_text()) for p in (tmp_path / "one").glob("*.json")]
    (two,) = [json.loads(p.read_text()) for p in (tmp_path / "two").glob("*.json")]  # rank 0's
    assert two["status"] == "ok", two.get("error")
    assert two["train"]["processes"] == 2 and one["train"]["processes"] == 1
    assert two["train"]["steps"] == one["train"]["steps"]  # 64 = 2 x 32 per process
    # the same global batches and views (keyed draws), but batch norm sees each process's
    # share: another experiment, another run id
    assert two["run_id"] != one["run_id"] and two["config"]["runtime"]["devices"] == 2
    assert not (tmp_path / "two" / "checkpoints").exists()


def test_ddp_trains_every_method_with_a_teacher_queue_bank_or_prototypes(tmp_path: Path) -> None:
    """One grid, two runs at once, each on 2 gloo processes: state that DDP must keep in step
    (momentum teachers, queues, memory banks, DINO's centre, SwAV's frozen prototypes)."""
    command = [sys.executable, "-m", "imbssl_bench.cli", "run", "--dataset", "digits"]
    command += ["--method", "byol,moco,nnclr,dino,swav", "--ratios", "1", *TINY_FLAGS]
    command += ["--n-max", "13", "--probe-per-class", "20", "--accelerator", "cpu"]
    command += ["--devices", "2", "--jobs", "2", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert sorted(r["method"] for r in records) == ["byol", "dino", "moco", "nnclr", "swav"]
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    assert all(r["train"]["processes"] == 2 and r["train"]["steps"] == 2 for r in records)


def test_a_batch_that_does_not_divide_among_processes_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    got = cli("run", "--method", "simclr", "--dataset", "digits", *TINY_FLAGS,
              "--batch-size", "63", "--devices", "2", "--accelerator", "cpu",
              "--out", str(tmp_path))  # fmt: skip
    assert got.code == 2 and "must divide among 2 training processes" in got.err


def test_jobs_run_at_once_each_writing_its_record(tmp_path: Path, installed_toy: str) -> None:
    pause = tmp_path / "go"
    spec = tiny_spec(
        methods=(installed_toy,), ratios=(10.0, 100.0), epochs=2,
        method_args={"pause_file": str(pause)},
    )  # fmt: skip
    plan = plan_grid(spec, tmp_path / "runs")
    with ThreadPoolExecutor(1) as pool:
        grid = pool.submit(run_grid, plan, jobs=2)
        try:
            wait_for_pauses(pause, 2, lambda: not grid.done())  # both runs are training at once
        finally:
            pause.touch()
        records = grid.result()
    assert [r["status"] for r in records] == ["ok"] * 2, [r.get("error") for r in records]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2


def test_a_worker_that_dies_without_a_record_gets_a_failed_one(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(launchers.sys, "executable", "false")  # exits 1 at once, writes nothing
    (run,) = plan_grid(tiny_spec(), tmp_path)
    record = launchers.Workers().run(run)
    assert record is not None and record["status"] == "failed"
    assert "worker exited with code 1" in record["error"]
    # its payload (checkpoints/<run id>/run.json) stays for --retry-failed and is no record
    assert list((tmp_path / "checkpoints").rglob("run.json"))
    assert [r["run_id"] for r in load_records(tmp_path)] == [run.run_id]


def test_more_jobs_than_gpus_and_several_nodes_are_refused(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plan = plan_grid(tiny_spec(ratios=(1.0, 10.0), accelerator="cpu"), tmp_path)
    monkeypatch.setattr(launchers, "_gpus", lambda run: 1)
    with pytest.raises(UserError, match="needs 2 GPUs but this machine has 1"):
        run_grid(plan, jobs=2)
    nodes = plan_grid(tiny_spec(num_nodes=2, accelerator="cpu"), tmp_path)
    with pytest.raises(UserError, match="--launcher slurm"):
        run_grid(nodes)
    assert not list(tmp_path.glob("*.json"))


def test_ctrl_c_with_jobs_stops_the_workers_and_the_rerun_resumes(
    tmp_path: Path, installed_toy: str
) -> None:
    out, pause = tmp_path / "runs", tmp_path / "go"
    command = [sys.executable, "-m", "imbssl_bench.cli", "run", "--method", installed_toy]
    command += ["--ratios", "10,100", "--dataset", "digits", *TINY_FLAGS, "--epochs", "2"]
    command += ["--method-arg", f"pause_file={pause}", "--jobs", "2", "--out", str(out)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl+C as a terminal delivers it, also when pytest runs in the background (a shell
        # starts background jobs with SIGINT ignored, and Python then never raises on it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for_pauses(pause, 2, lambda: proc.poll() is None)  # in epoch 2: cannot finish
    proc.send_signal(signal.SIGINT)  # Ctrl+C (workers have their own sessions)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in " ".join(err.split())  # the console wraps
    assert not list(out.glob("*.json"))  # interrupted, not failed
    for payload in (out / "checkpoints").glob("*/run.json"):  # no worker left running
        ps = subprocess.run(["pgrep", "-f", str(payload)], capture_output=True, text=True)
        assert not ps.stdout.strip(), ps.stdout
    pause.touch()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted(r["status"] for r in records) == ["ok", "ok"]
    assert [r["train"]["resumed_from_epoch"] for r in records] == [1, 1]


def test_slurm_launcher_through_submitits_local_executor(tmp_path: Path) -> None:
    spec = tiny_spec(ratios=(100.0,))
    records = run_grid(
        plan_grid(spec, tmp_path), launcher="slurm", slurm=SlurmOptions(cluster="local")
    )
    assert [r["status"] for r in records] == ["ok"], [r.get("error") for r in records]
    assert list((tmp_path / "slurm").iterdir())  # submitit's job folders and logs


@pytest.mark.parametrize("augment", ["pil", "batched"])
def test_each_rank_draws_its_own_augmentations(augment: str) -> None:
    images = create_dataset("digits").load().train.images[:8]
    transform = SimCLRTransform(input_size=16)
    batched = batched_views(transform, 16)

    def views(rank: int | None) -> Tensor:  # the first view of the 8 images, as `rank` sees it
        pl.seed_everything(0, verbose=False)  # every process starts from the run's seed
        if rank is not None:
            trainer = SimpleNamespace(global_rank=rank)
            RankAugmentation().on_train_start(trainer, None)  # type: ignore[arg-type]
        if augment == "batched":
            return batched(images)[0]
        hwc = images.permute(0, 2, 3, 1).numpy()
        return torch.stack([transform(Image.fromarray(x))[0] for x in hwc])

    assert torch.equal(views(0), views(None))  # rank 0 and single processes: as before
    assert not torch.equal(views(1), views(0))
    assert torch.equal(views(1), views(1))  # and reproducible


def test_jobs_take_their_gpus_from_the_visible_ones(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (run,) = plan_grid(tiny_spec(), tmp_path)
    monkeypatch.setattr(launchers, "_gpus", lambda run: 3)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,7")  # e.g. a slurm allocation
    pinned = [launchers._pinned_env(slot, 3, run)["CUDA_VISIBLE_DEVICES"] for slot in range(3)]
    assert pinned == ["4", "6", "7"]
    assert [launchers.gpu_slice("4,6,7,1", 4, slot, 2) for slot in range(2)] == ["4,6", "7,1"]
    assert [launchers.gpu_slice(None, 4, slot, 2) for slot in range(2)] == ["0,1", "2,3"]
    assert launchers.gpu_slice("GPU-a1, GPU-b2", 2, 1, 1) == "GPU-b2"  # UUIDs too
