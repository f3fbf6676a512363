"""Nothing finished is lost: epoch checkpoints resume a killed run, a killed grid reruns with
the same command, and a NaN loss gives a failed record while the grid goes on."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from subprocess import DEVNULL

import pytest
import torch

from imbssl_bench.config import RunConfig, TrainConfig
from imbssl_bench.data import create_dataset
from imbssl_bench.envinfo import code_label
from imbssl_bench.methods import create_method
from imbssl_bench.methods.backbones import create_backbone
from imbssl_bench.progress import NullReporter
from imbssl_bench.running.execute import checkpoint_dir, log_dir
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.training.callbacks import FiniteLoss
from imbssl_bench.training.checkpoints import checkpoint_epoch
from imbssl_bench.training.trainer import fit
from tests.conftest import TINY_FLAGS, tiny_spec, wait_for_pauses


class Notes(NullReporter):
    """Keeps the lines the harness logs."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, message: str) -> None:
        self.lines.append(message)


def tiny_stage(epochs: int) -> tuple:  # type: ignore[type-arg]
    split = create_dataset("digits").load().train.subset(torch.arange(64).numpy())
    cfg = RunConfig(method="simsiam", train=TrainConfig(epochs=epochs, batch_size=32, lr=0.05))

    def method():  # type: ignore[no-untyped-def]
        backbone, dim = create_backbone("test_resnet", "cifar")
        return create_method("simsiam", backbone, dim, {}, cfg.train, 10)

    return split, cfg, method


def test_a_stage_resumes_from_its_last_epoch_checkpoint(tmp_path: Path) -> None:
    split, cfg, method = tiny_stage(epochs=2)
    first = fit(method(), split, cfg, 16, checkpoint_dir=tmp_path)
    assert (tmp_path / "last.ckpt").is_file() and first.resumed_from_epoch is None
    assert not list(tmp_path.glob("*.tmp"))
    again, start = method(), time.perf_counter()
    second = fit(again, split, cfg, 16, checkpoint_dir=tmp_path)  # finished: restores, no steps
    elapsed = time.perf_counter() - start
    assert second.resumed_from_epoch == 2 and second.steps == first.steps
    assert second.final_loss == first.final_loss  # and the time includes the first process's:
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"]["StageStats"]
    assert saved["wall_s"] - 1e-3 <= second.wall_s <= saved["wall_s"] + elapsed + 1e-3
    assert saved["wall_s"] <= first.wall_s + 1e-3


def test_an_unreadable_checkpoint_is_named_in_one_line_and_the_stage_retrains(
    tmp_path: Path,
) -> None:
    split, cfg, method = tiny_stage(epochs=1)
    (tmp_path / "last.ckpt").write_bytes(b"not a checkpoint")
    notes = Notes()
    stats = fit(method(), split, cfg, 16, notes, checkpoint_dir=tmp_path)
    assert notes.lines == [
        f"checkpoint {tmp_path / 'last.ckpt'} is unreadable (kept as last.ckpt.unreadable): "
        "training this stage from the start"
    ]
    assert (tmp_path / "last.ckpt.unreadable").read_bytes() == b"not a checkpoint"
    assert stats.resumed_from_epoch is None and stats.steps == 2
    assert checkpoint_epoch(tmp_path / "last.ckpt") == 1


def test_a_failed_run_keeps_its_checkpoint_and_the_retry_resumes_it(
    tmp_path: Path, monkeypatch
) -> None:
    spec = tiny_spec(epochs=2, n_max=20)
    real = FiniteLoss.on_train_epoch_end

    def transient(self, trainer, module):  # type: ignore[no-untyped-def]
        if trainer.current_epoch == 1:  # the second epoch, before its checkpoint
            raise OSError("transient: the file system went away")
        real(self, trainer, module)

    monkeypatch.setattr(FiniteLoss, "on_train_epoch_end", transient)
    (run,) = plan_grid(spec, tmp_path)
    (failed,) = run_grid([run])
    assert failed["status"] == "failed" and "transient" in failed["error"]
    assert checkpoint_epoch(checkpoint_dir(run) / "base" / "last.ckpt") == 1

    saved = torch.load(checkpoint_dir(run) / "base" / "last.ckpt", weights_only=False)
    earlier = saved["callbacks"]["StageStats"]["wall_s"]  # the failed process's epoch 1

    monkeypatch.undo()
    plan, notes = plan_grid(spec, tmp_path), Notes()
    assert [p.status for p in plan] == ["failed"]
    (ok,) = run_grid(plan, notes, retry_failed=True)
    assert ok["status"] == "ok" and ok["train"]["resumed_from_epoch"] == 1
    # the record's wall time counts the epoch the earlier process trained
    assert ok["timing"]["earlier_processes_s"] == pytest.approx(earlier, abs=1e-3)
    assert ok["wall_s"] >= earlier + ok["timing"]["pretrain_s"]
    assert ok["train"]["trained_by"] == [code_label()]  # one code, two processes
    assert len(notes.lines) == 1 and "resumed from its checkpoint after epoch 1/2" in notes.lines[0]
    assert not (tmp_path / "checkpoints").exists()  # deleted with the ok record, folder and all
    # the log appended: each epoch and step once (the failed attempt's epoch-2 rows dropped)
    with (log_dir(run) / "metrics.csv").open(newline="") as f:
        log = list(csv.DictReader(f))
    assert [r["epoch"] for r in log if r["train_loss_epoch"]] == ["0", "1"]
    steps = [int(r["step"]) for r in log if r["train_loss_step"]]
    assert steps == list(range(ok["train"]["steps"]))
    assert [e for e, _ in ok["metrics"]["knn_curve"]] == [1, 2]  # epoch 1's from the checkpoint
    assert [e for e, _ in ok["metrics"]["loss_curve"]] == [1, 2]  # so is its loss


def test_a_nan_loss_fails_its_run_and_the_grid_goes_on(tmp_path: Path, toy_plugin: str) -> None:
    spec = tiny_spec(methods=(toy_plugin, "simsiam"), method_args={"nan_at_step": 1}, epochs=2)
    toy, simsiam = run_grid(plan_grid(spec, tmp_path))
    assert toy["status"] == "failed" and "nan/inf at epoch 1/2, step 2" in toy["error"]
    assert simsiam["status"] == "ok" and simsiam["metrics"]["feature_std"] > 0
    assert not (tmp_path / "checkpoints").exists()  # no epoch finished: nothing to keep


def test_kill_9_then_the_same_command_resumes(tmp_path: Path, installed_toy: str) -> None:
    out, pause = tmp_path / "runs", tmp_path / "go"
    command = [sys.executable, "-m", "imbssl_bench.cli", "run"]
    command += ["--method", f"simsiam,{installed_toy}", "--ratios", "10,100"]
    command += ["--dataset", "digits", *TINY_FLAGS, "--epochs", "2"]
    command += ["--method-arg", f"pause_file={pause}", "--out", str(out)]
    proc = subprocess.Popen(command, stdout=DEVNULL, stderr=DEVNULL, start_new_session=True)
    # the simsiam runs finish, then the first toy run pauses in its second epoch: kill it there
    wait_for_pauses(pause, 1, lambda: proc.poll() is None)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert len(finished) == 2
    pause.touch()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    log = " ".join(rerun.stderr.split())  # the console wraps long lines
    assert re.findall(r"resumed from its checkpoint after epoch (\d)/2", log) == ["1"], log
    records = sorted(out.glob("*.json"))
    assert len(records) == 4 and not list(out.glob(".*.tmp"))
    assert all(finished[p.name] == p.read_bytes() for p in records if p.name in finished)
    assert not (out / "checkpoints").exists()


def test_a_stage_says_which_code_trained_it() -> None:
    from imbssl_bench.envinfo import code_label
    from imbssl_bench.training.callbacks import StageStats

    fresh = StageStats(time.perf_counter())
    assert fresh.trained_by() == (code_label(),)
    resumed = StageStats(time.perf_counter())  # from a checkpoint written before 0.2.0
    resumed.load_state_dict({"wall_s": 1.0, "loss": 0.5})
    assert resumed.trained_by() == ("unknown", code_label())
    again = StageStats(time.perf_counter())  # the same code resuming twice: said once
    again.load_state_dict(resumed.state_dict())
    assert again.trained_by() == ("unknown", code_label())
