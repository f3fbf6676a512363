"""Same run id, same numbers: a run interrupted at any point of any stage and resumed, or run
with another worker count, writes the record an uninterrupted run writes (training/draws.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning_fabric.utilities.data import _set_sampler_epoch

from imbssl_bench.data import create_dataset
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


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The record of a spec's uninterrupted run, trained once per module."""
    done: dict[str, dict[str, Any]] = {}

    def record(spec: Any) -> dict[str, Any]:
        key = repr(spec)
        if key not in done:
            done[key] = only_record(spec, tmp_path_factory.mktemp("whole"))
        return done[key]

    return record


BASE = dict(epochs=3, n_max=24, batch_size=32, logger="none", monitor_every=0, probe_per_class=20)


@pytest.mark.parametrize(
    ("draws", "augment", "batch"),
    [("keyed", "batched", None), ("keyed", "pil", 1), ("stream", "pil", 1)],
    ids=["keyed-batched-between-epochs", "keyed-pil-mid-epoch", "stream-pil-mid-epoch"],
)  # fmt: skip
def test_a_resumed_base_run_equals_the_uninterrupted_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted,
    draws: str,
    augment: str,
    batch: int | None,
) -> None:
    spec = tiny_spec(methods=("simclr",), ratios=(10.0,), draws=draws, augment=augment, **BASE)
    whole = uninterrupted(spec)
    resumed = resumed_record(spec, tmp_path / "resumed", monkeypatch, ("base", 2, batch))
    assert resumed["run_id"] == whole["run_id"]
    assert resumed["train"]["resumed_from_epoch"] == 2
    assert numbers(resumed) == numbers(whole)


def test_keyed_draws_give_the_same_numbers_with_any_worker_count(tmp_path: Path) -> None:
    spec = tiny_spec(methods=("simclr",), ratios=(10.0,), augment="pil", **BASE)
    none = only_record(spec, tmp_path / "w0")
    two = only_record(dataclasses.replace(spec, num_workers=2), tmp_path / "w2")
    assert two["run_id"] == none["run_id"] and numbers(two) == numbers(none)


@pytest.mark.parametrize(
    ("flags", "fix"), [({"num_workers": 2}, "pass --num-workers 0"), ({"devices": 2}, "one device")]
)
def test_stream_draws_take_no_workers_and_one_process(
    tmp_path: Path, flags: dict, fix: str
) -> None:
    from imbssl_bench.errors import UserError

    with pytest.raises(UserError, match=rf"--draws stream .*{fix}"):
        plan_grid(tiny_spec(draws="stream", **flags), tmp_path)


@pytest.mark.parametrize("augment", ["pil", "batched"])
def test_each_epoch_draws_another_order_and_other_views(augment: str) -> None:
    """Through Lightning, as training sees them: the batches of epochs 0 and 1 differ (the
    loader's sampler learns each epoch), and epoch 1's are the same in a fresh loader that
    starts at epoch 1 (a resumed stage's)."""
    from imbssl_bench.config import RunConfig, TrainConfig
    from imbssl_bench.methods import create_method
    from imbssl_bench.methods.backbones import create_backbone
    from imbssl_bench.training.loaders import DeviceViewsData, train_data

    split = create_dataset("digits").load().train.subset(np.arange(48))
    train = TrainConfig(epochs=2, batch_size=16, augment=None if augment == "pil" else augment)
    cfg = RunConfig(method="simclr", train=train)
    backbone, dim = create_backbone("test_resnet", "cifar")
    method = create_method("simclr", backbone, dim, {}, cfg.train, 10)

    def first_batch(start: int, epoch: int) -> torch.Tensor:
        data = train_data(split, method, cfg, 16, stage="base", epoch=start)
        if isinstance(data, DeviceViewsData):
            loader = data.train_dataloader()
            _set_sampler_epoch(loader, epoch)
            batch = data.on_after_batch_transfer(next(iter(loader)), 0)
        else:
            _set_sampler_epoch(data, epoch)
            batch = next(iter(data))
        views, _, index = batch
        return torch.cat([index.float(), views[0].flatten()])

    epoch0, epoch1 = first_batch(0, 0), first_batch(0, 1)
    assert not torch.equal(epoch0, epoch1)
    assert torch.equal(epoch1, first_batch(1, 1))


CD = {"clusters": 2, "min_cluster_size": 8, "expert_steps": 4, "student_epochs": 2}
STAGES = [  # (draws, variant, its options, the stage interrupted, epoch, batch)
    ("keyed", "sam", {}, "sam", 1, 1),
    ("keyed", "rwsam", {"rwsam_warmup": 1, "rwsam_refresh": 1}, "rwsam", 2, None),
    ("keyed", "cluster-distill", CD, "expert-1", 1, None),
    ("keyed", "cluster-distill", CD, "student", 1, 1),
    # stream: a finished stage restored from its checkpoint sets the streams back too
    ("stream", "cluster-distill", CD, "expert-1", 1, None),
    ("stream", "sam", {}, "sam", 1, 1),
]


@pytest.mark.parametrize(("draws", "variant", "options", "stage", "epoch", "batch"), STAGES)
def test_a_variant_resumed_in_any_stage_equals_the_uninterrupted_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted,
    draws: str,
    variant: str,
    options: dict,
    stage: str,
    epoch: int,
    batch: int | None,
) -> None:
    spec = tiny_spec(
        methods=("simclr",), ratios=(10.0,), variants=(variant,), variant_args=options,
        draws=draws, **BASE,
    )  # fmt: skip
    whole = uninterrupted(spec)
    resumed = resumed_record(spec, tmp_path / "resumed", monkeypatch, (stage, epoch, batch))
    assert numbers(resumed) == numbers(whole)
    assert resumed["diagnostics"] == whole["diagnostics"] or _same_but_time(resumed, whole)


def _same_but_time(a: dict, b: dict) -> bool:
    """Diagnostics equal except wall times (`*_s`) and whether a stage was resumed."""

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if not _timing(k)}
        return [strip(v) for v in x] if isinstance(x, list) else x

    assert strip(a["diagnostics"]) == strip(b["diagnostics"])
    return True


def _timing(key: str) -> bool:
    timing = ("wall", "resumed_from_epoch", "trained_by", "weights_fraction")
    return key.endswith("_s") or key in timing


def test_sampler_weights_draw_with_replacement_keyed_by_the_epoch() -> None:
    from imbssl_bench.training.draws import epoch_order

    weights = torch.tensor([0.0, 1.0, 3.0, 0.0])
    first = epoch_order(4, 0, "resample", 0, weights)
    assert torch.equal(first, epoch_order(4, 0, "resample", 0, lambda epoch: weights))
    drawn = torch.cat([epoch_order(4, 0, "resample", e, weights) for e in range(50)])
    assert set(drawn.tolist()) == {1, 2}  # never an image of weight 0
    assert 2.2 < (drawn == 2).sum() / (drawn == 1).sum() < 4.0  # about 3 to 1
    with pytest.raises(ValueError, match="4 finite values"):
        epoch_order(4, 0, "resample", 0, torch.tensor([1.0, float("nan"), 1.0, 1.0]))


def test_sampler_weights_refuse_stream_draws() -> None:
    from imbssl_bench.config import RunConfig, TrainConfig
    from imbssl_bench.errors import UserError
    from imbssl_bench.training.loaders import train_data

    cfg = RunConfig("simclr", train=TrainConfig(draws="stream"))
    with pytest.raises(UserError, match="--draws keyed"):
        train_data(None, None, cfg, 16, weights=torch.ones(4))  # type: ignore[arg-type]
