"""Nothing finished is lost: epoch checkpoints resume a killed run, a killed grid reruns with
the same command, and a NaN loss gives a failed record while the grid goes on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from subprocess import DEVNULL

import torch

from imbssl_bench.backbones import create_backbone
from imbssl_bench.config import RunConfig, TrainConfig
from imbssl_bench.datasets import create_dataset
from imbssl_bench.grid import plan_grid, run_grid
from imbssl_bench.methods import create_method
from imbssl_bench.training import fit
from tests.conftest import TINY_FLAGS, tiny_spec, wait_for_pauses


def test_a_stage_resumes_from_its_last_epoch_checkpoint(tmp_path: Path) -> None:
    split = create_dataset("digits").load().train.subset(torch.arange(64).numpy())
    cfg = RunConfig(method="simsiam", train=TrainConfig(epochs=2, batch_size=32, lr=0.05))

    def method():  # type: ignore[no-untyped-def]
        backbone, dim = create_backbone("test_resnet", "cifar")
        return create_method("simsiam", backbone, dim, {}, cfg.train, 10)

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


def test_a_nan_loss_fails_its_run_and_the_grid_goes_on(tmp_path: Path, toy_plugin: str) -> None:
    spec = tiny_spec(methods=(toy_plugin, "simsiam"), method_args={"nan_at_step": 1}, epochs=2)
    toy, simsiam = run_grid(plan_grid(spec, tmp_path))
    assert toy["status"] == "failed" and "nan/inf at epoch 1/2, step 2" in toy["error"]
    assert simsiam["status"] == "ok" and simsiam["metrics"]["feature_std"] > 0
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


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
    assert not any((out / "checkpoints").iterdir())
