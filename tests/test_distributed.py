"""Scale-out: DDP within a run (2 CPU processes over gloo), several runs at once (--jobs),
and the slurm launcher through submitit's local executor. Each run writes its own record."""

from __future__ import annotations

import json
from pathlib import Path

from imbssl_bench.grid import plan_grid, run_grid
from imbssl_bench.launchers import SlurmOptions
from tests.conftest import TINY_FLAGS, tiny_spec


def test_ddp_on_two_cpu_processes_keeps_the_global_batch(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    common = ["run", "--method", "simclr", "--dataset", "digits", "--ratios", "10", *TINY_FLAGS]
    common += ["--accelerator", "cpu"]
    single = cli(*common, "--out", str(tmp_path / "one"))
    ddp = cli(*common, "--devices", "2", "--out", str(tmp_path / "two"))
    assert single.code == 0 and ddp.code == 0, ddp.err
    (one,) = [json.loads(p.read_text()) for p in (tmp_path / "one").glob("*.json")]
    (two,) = [json.loads(p.read_text()) for p in (tmp_path / "two").glob("*.json")]  # rank 0's
    assert two["status"] == "ok", two.get("error")
    assert two["train"]["processes"] == 2 and one["train"]["processes"] == 1
    assert two["train"]["steps"] == one["train"]["steps"]  # 64 = 2 x 32 per process
    assert two["run_id"] == one["run_id"]  # the same experiment, run on two devices
    assert not any((tmp_path / "two" / "checkpoints").iterdir())


def test_a_batch_that_does_not_divide_among_processes_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    got = cli("run", "--method", "simclr", "--dataset", "digits", *TINY_FLAGS,
              "--batch-size", "63", "--devices", "2", "--accelerator", "cpu",
              "--out", str(tmp_path))  # fmt: skip
    assert got.code == 2 and "must divide among 2 training processes" in got.err


def test_jobs_run_at_once_each_writing_its_record(tmp_path: Path) -> None:
    spec = tiny_spec(ratios=(1.0, 10.0, 100.0))
    records = run_grid(plan_grid(spec, tmp_path), jobs=2)
    assert [r["status"] for r in records] == ["ok"] * 3, [r.get("error") for r in records]
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_slurm_launcher_through_submitits_local_executor(tmp_path: Path) -> None:
    spec = tiny_spec(ratios=(1.0, 10.0))
    records = run_grid(
        plan_grid(spec, tmp_path), launcher="slurm", slurm=SlurmOptions(cluster="local")
    )
    assert [r["status"] for r in records] == ["ok", "ok"], [r.get("error") for r in records]
    assert list((tmp_path / "slurm").iterdir())  # submitit's job folders and logs
