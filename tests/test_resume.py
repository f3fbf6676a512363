"""Nothing finished is lost: epoch checkpoints resume a killed run, a killed grid reruns with
the same command, and a NaN loss gives a failed record while the grid goes on."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from subprocess import DEVNULL

import torch

from imbssl_bench.backbones import create_backbone
from imbssl_bench.checkpoints import checkpoint_epoch
from imbssl_bench.config import RunConfig, TrainConfig
from imbssl_bench.datasets import create_dataset
from imbssl_bench.grid import checkpoint_dir, plan_grid, run_grid
from imbssl_bench.methods import create_method
from imbssl_bench.progress import NullReporter
from imbssl_bench.training import FiniteLoss, fit
from tests.conftest import TINY_FLAGS, tiny_spec


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
    assert second.wall_s > elapsed + 0.5 * first.wall_s


def test_an_unreadable_checkpoint_is_named_in_one_line_and_the_stage_retrains(
    tmp_path: Path,
) -> None:
    split, cfg, method = tiny_stage(epochs=1)
    (tmp_path / "last.ckpt").write_bytes(b"not a checkpoint")
    notes = Notes()
    stats = fit(method(), split, cfg, 16, notes, checkpoint_dir=tmp_path)
    assert notes.lines == [
        f"checkpoint {tmp_path / 'last.ckpt'} is unreadable: training this stage from the start"
    ]
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

    monkeypatch.undo()
    plan, notes = plan_grid(spec, tmp_path), Notes()
    assert [p.status for p in plan] == ["failed"]
    (ok,) = run_grid(plan, notes, retry_failed=True)
    assert ok["status"] == "ok" and ok["train"]["resumed_from_epoch"] == 1
    assert len(notes.lines) == 1 and "resumed from its checkpoint after epoch 1/2" in notes.lines[0]
    assert not (tmp_path / "checkpoints").exists()  # deleted with the ok record, folder and all


def test_a_nan_loss_fails_its_run_and_the_grid_goes_on(tmp_path: Path, toy_plugin: str) -> None:
    spec = tiny_spec(methods=(toy_plugin, "simsiam"), method_args={"nan_at_step": 1}, epochs=2)
    toy, simsiam = run_grid(plan_grid(spec, tmp_path))
    assert toy["status"] == "failed" and "nan/inf at epoch 1/2, step 2" in toy["error"]
    assert simsiam["status"] == "ok" and simsiam["metrics"]["feature_std"] > 0
    assert not (tmp_path / "checkpoints").exists()  # no epoch finished: nothing to keep


def test_kill_9_then_the_same_command_resumes(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "imbssl_bench.cli", "run", "--method", "simsiam"]
    command += ["--ratios", "1,10,100", "--dataset", "digits", "--seeds", "0,1", *TINY_FLAGS]
    command += ["--epochs", "4", "--out", str(out)]
    proc = subprocess.Popen(command, stdout=DEVNULL, stderr=DEVNULL, start_new_session=True)
    # kill in the middle of a run's training, once an earlier run has its record
    killed = False
    deadline = time.monotonic() + 300
    while not killed and proc.poll() is None and time.monotonic() < deadline:
        ckpts = list((out / "checkpoints").glob("*/base/last.ckpt"))  # before the records:
        done = {p.stem for p in out.glob("*.json")}  # a run can finish in between, not start
        for ckpt in (c for c in ckpts if done and c.parent.parent.name not in done):
            epoch = checkpoint_epoch(ckpt)
            if not killed and epoch is not None and epoch <= 2:  # epochs 3-4 still to run
                time.sleep(random.uniform(0.0, 0.2))
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
        time.sleep(0.05)
    assert killed, "the grid finished or stalled before it could be killed"
    proc.wait()
    finished = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert 1 <= len(finished) < 6
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    log = " ".join(rerun.stderr.split())  # the console wraps long lines
    resumed = re.findall(r"resumed from its checkpoint after epoch (\d)/4", log)
    assert len(resumed) == 1 and 1 <= int(resumed[0]) < 4, rerun.stderr
    records = sorted(out.glob("*.json"))
    assert len(records) == 6 and not list(out.glob(".*.tmp"))
    assert all(finished[p.name] == p.read_bytes() for p in records if p.name in finished)
    assert not (out / "checkpoints").exists()
