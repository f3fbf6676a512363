"""Same run id, same numbers: a run interrupted at any point of any stage and resumed, or run
with another worker count, writes the record an uninterrupted run writes (training/draws.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.training.callbacks import StageStats
from tests.conftest import tiny_spec

NUMBERS = ("linear_top1", "knn_top1", "fewshot_top1", "feature_std", "loss_curve")


class Interrupted(RuntimeError):
    """Stands for a kill: the run fails there, its checkpoints stay."""


def numbers(record: dict[str, Any]) -> dict[str, Any]:
    """What must not move when a run is resumed or run with other workers."""
    metrics = {k: record["metrics"].get(k) for k in NUMBERS}
    train = record["train"]
    return {**metrics, "final_loss": train["final_loss"], "steps": train["steps"]}


def interrupt_at(patch: pytest.MonkeyPatch, stage: str, epoch: int, batch: int | None) -> None:
    """Fail the run when `stage` starts `epoch` (0-based; its checkpoint after `epoch` epochs
    is written), or at `batch` of that epoch (mid-epoch: the work since the checkpoint is lost)."""

    def here(trainer: Any) -> bool:
        folder = Path(trainer.checkpoint_callback.dirpath)
        return folder.name == stage and trainer.current_epoch == epoch

    def at_epoch(self: StageStats, trainer: Any, module: Any) -> None:
        if batch is None and here(trainer):
            raise Interrupted(f"{stage} epoch {epoch}")

    def at_batch(self: StageStats, trainer: Any, module: Any, data: Any, index: int) -> None:
        if batch is not None and index == batch and here(trainer):
            raise Interrupted(f"{stage} epoch {epoch} batch {batch}")

    patch.setattr(StageStats, "on_train_epoch_start", at_epoch, raising=False)
    patch.setattr(StageStats, "on_train_batch_start", at_batch, raising=False)


def resumed_record(spec: Any, out: Path, monkeypatch: pytest.MonkeyPatch, where: tuple) -> dict:
    """The record of `spec`'s single run interrupted `where` and then retried."""
    with monkeypatch.context() as patch:
        interrupt_at(patch, *where)
        (failed,) = run_grid(plan_grid(spec, out))
    assert failed["status"] == "failed" and "Interrupted" in failed["error"], failed["error"]
    (record,) = run_grid(plan_grid(spec, out), retry_failed=True)
    assert record["status"] == "ok"
    return record


def only_record(spec: Any, out: Path) -> dict[str, Any]:
    (record,) = run_grid(plan_grid(spec, out))
    assert record["status"] == "ok"
    return record


BASE = dict(epochs=3, n_max=24, batch_size=32, logger="none", monitor_every=0)


@pytest.mark.parametrize("draws", ["keyed", "stream"])
@pytest.mark.parametrize("batch", [None, 1], ids=["between-epochs", "mid-epoch"])
def test_a_resumed_base_run_equals_the_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, draws: str, batch: int | None
) -> None:
    spec = tiny_spec(methods=("simclr",), ratios=(10.0,), draws=draws, **BASE)
    whole = only_record(spec, tmp_path / "whole")
    resumed = resumed_record(spec, tmp_path / "resumed", monkeypatch, ("base", 2, batch))
    assert resumed["run_id"] == whole["run_id"]
    assert resumed["train"]["resumed_from_epoch"] == 2
    assert numbers(resumed) == numbers(whole)


def test_keyed_draws_give_the_same_numbers_with_any_worker_count(tmp_path: Path) -> None:
    spec = tiny_spec(methods=("simclr",), ratios=(10.0,), augment="pil", **BASE)
    none = only_record(spec, tmp_path / "w0")
    two = only_record(dataclasses.replace(spec, num_workers=2), tmp_path / "w2")
    assert two["run_id"] == none["run_id"] and numbers(two) == numbers(none)


def test_stream_draws_take_no_workers(tmp_path: Path) -> None:
    from imbssl_bench.errors import UserError

    spec = tiny_spec(draws="stream", num_workers=2)
    with pytest.raises(UserError, match=r"--draws stream .* pass --num-workers 0"):
        plan_grid(spec, tmp_path)
