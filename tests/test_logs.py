"""Watching a run: Lightning's CSV log per run (every stage, resumes append) and the online kNN
curve in the record, which changes no number of the run (issue 18)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from imbssl_bench.training.logs import StageCSVLogger
from tests.conftest import WATCHED_FLAGS


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def run_digits(cli, out: Path, *flags: str) -> dict:
    res = cli("run", *WATCHED_FLAGS, "--out", out, *flags)
    assert res.code == 0, res.err
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


def test_a_run_logs_its_losses_and_its_knn_curve(watched_run) -> None:
    out, record = watched_run
    log = rows(out / "logs" / record["run_id"] / "metrics.csv")
    per_epoch = [r for r in log if r["train_loss_epoch"]]
    assert [int(r["epoch"]) for r in per_epoch] == [0, 1, 2, 3]
    assert {r["stage"] for r in log} == {"base"}
    steps = [r for r in log if r["train_loss_step"]]
    assert len(steps) == record["train"]["steps"] and all(float(r["lr"]) > 0 for r in steps)
    monitored = [r for r in log if r["knn_top1"]]
    assert len(monitored) == 4 and all(r["feature_std_x_sqrt_dim"] for r in monitored)
    m = record["metrics"]
    assert [e for e, _ in m["knn_curve"]] == [1, 2, 3, 4]  # 4 epochs: every epoch
    assert m["knn_top1_best"] == max(t for _, t in m["knn_curve"])
    assert [round(float(r["knn_top1"]), 4) for r in monitored] == [t for _, t in m["knn_curve"]]
    assert m["knn_monitor"]["stage"] == "base" and m["knn_monitor"]["every"] == 1
    assert m["knn_monitor"]["bank_images"] == 1000  # 100 per class of the probe pool
    losses = [[int(r["epoch"]) + 1, round(float(r["train_loss_epoch"]), 5)] for r in per_epoch]
    assert m["loss_curve"] == losses and m["loss_stage"] == "base"  # the log's, per epoch


def test_curves_resume_from_checkpoints_of_earlier_versions() -> None:
    """Lightning keys a callback's checkpointed state by its `state_key`: the curves keep the
    key they were saved under before the callback was renamed (OnlineKNN)."""
    from imbssl_bench.evaluation.monitor import StageCurves

    assert StageCurves(None).state_key == "OnlineKNN"


def test_watching_changes_no_number(cli, watched_run, tmp_path: Path) -> None:
    watched = watched_run[1]  # the default monitor: every epoch of its 4
    plain = run_digits(cli, tmp_path / "b", "--monitor-every", "0", "--logger", "none")
    assert watched["run_id"] == plain["run_id"]  # the same experiment
    for key in ("linear_top1", "knn_top1", "fewshot_top1", "per_class_acc"):
        assert watched["metrics"][key] == plain["metrics"][key], key
    assert watched["train"]["final_loss"] == plain["train"]["final_loss"]
    assert "knn_curve" not in plain["metrics"] and not (tmp_path / "b" / "logs").exists()
    assert plain["metrics"]["loss_curve"] == watched["metrics"]["loss_curve"]  # kept unwatched


def test_a_resumed_stage_keeps_the_rows_of_its_finished_epochs(tmp_path: Path) -> None:
    log = tmp_path / "run" / "metrics.csv"
    log.parent.mkdir()
    log.write_text(
        "epoch,stage,step,train_loss_step\n"
        "0,base,0,1.0\n1,base,1,0.9\n2,base,2,0.8\n0,student,0,2.0\n"
    )
    logger = StageCSVLogger(tmp_path / "run", "base", keep_epochs=2)  # resumed after 2 epochs
    logger.log_metrics({"train_loss_step": 0.7, "epoch": 2}, step=2)
    logger.save()
    got = [(r["stage"], r["epoch"], r["train_loss_step"]) for r in rows(log)]
    assert got == [
        ("base", "0", "1.0"),
        ("base", "1", "0.9"),
        ("student", "0", "2.0"),
        ("base", "2", "0.7"),
    ]


def test_logger_mistakes_are_one_line(cli, tmp_path: Path) -> None:
    common = ("run", "--method", "simsiam", "--ratios", "10", "--dataset", "digits",
              "--out", tmp_path, "--dry-run")  # fmt: skip
    res = cli(*common, "--logger", "mlflow")
    assert res.code == 2 and "--logger must be one of csv, tensorboard, wandb, none" in res.err
    res = cli(*common, "--monitor-every", "-1")
    assert res.code == 2 and "--monitor-every" in res.err
    if importlib.util.find_spec("tensorboard") is None:
        res = cli(*common, "--logger", "tensorboard")
        assert res.code == 2 and "pip install 'imbssl-bench[tensorboard]'" in res.err


@pytest.mark.parametrize("every", [None, 3])
def test_the_default_is_about_ten_points(every: int | None) -> None:
    from imbssl_bench.evaluation.monitor import resolve_every

    assert resolve_every(30, every) == 3 and resolve_every(95, None) == 10
