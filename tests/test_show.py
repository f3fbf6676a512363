"""Pictures of runs (issue 18): ``imbssl-bench show`` lists a folder's runs and draws each run's
curves, also while it trains (from its log); the leaderboard draws one curves plot per table and
``--knn best`` shows the best online kNN (Lightly's convention) in place of the final probe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imbssl_bench.reporting import leaderboard as lb
from imbssl_bench.reporting.curves import mean_curve, write_curve_plots
from imbssl_bench.reporting.show import log_curves
from tests.test_leaderboard import RECORDS, record
from tests.test_leaderboard_ci import BLOCKER


def is_png(path: Path) -> bool:
    return path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000


def test_show_lists_the_runs_and_draws_their_curves(cli, watched_run, tmp_path: Path) -> None:
    out, record = watched_run
    res = cli("show", out, "--plots", tmp_path)
    assert res.code == 0, res.err
    (line,) = res.out.splitlines()
    m = record["metrics"]
    assert line.startswith(record["run_id"]) and "  ok  " in line
    assert f"linear {100 * m['linear_top1']:.1f}" in line
    assert f"best online kNN {100 * m['knn_top1_best']:.1f}" in line and "@4" in line
    assert is_png(tmp_path / f"{record['run_id']}.png")
    one = cli("show", out, "--run", record["run_id"][:20], "--plots", tmp_path)
    assert one.code == 0, one.err
    assert "simsiam + base, digits" in one.out and "4 epochs x batch" in one.out
    logged = log_curves(out / "logs" / record["run_id"] / "metrics.csv")["loss_curve"]["base"]
    assert [e for e, _ in logged] == [e for e, _ in m["loss_curve"]]  # show reads the log
    loss = ", ".join(f"{e}: {v:.4g}" for e, v in logged)
    assert f"loss, stage base, by epoch: {loss}" in one.out


def test_show_follows_a_run_without_a_record_from_its_log(cli, watched_run, tmp_path: Path) -> None:
    """A run still training has only its log: show reads the curves from it."""
    out, record = watched_run
    shutil.copytree(out / "logs", tmp_path / "results" / "logs")
    res = cli("show", tmp_path / "results", "--run", record["run_id"])
    assert res.code == 0, res.err
    assert "no record (training or stopped)" in res.out
    knn = ", ".join(f"{e}: {100 * v:.4g}" for e, v in record["metrics"]["knn_curve"])
    assert f"online kNN (%), stage base, by epoch: {knn}" in res.out
    assert is_png(tmp_path / "results" / "curves" / f"{record['run_id']}.png")


def test_show_needs_no_torch(watched_run, tmp_path: Path) -> None:
    """Watching a run from another shell: `show` imports no training library."""
    out, record = watched_run
    for args in ([], ["--run", record["run_id"]]):
        cmd = [sys.executable, "-c", BLOCKER, "show", str(out), "--plots", str(tmp_path), *args]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    assert is_png(tmp_path / f"{record['run_id']}.png")


def test_show_refuses_an_unknown_run_and_a_missing_folder(cli, watched_run, tmp_path: Path) -> None:
    out, _ = watched_run
    res = cli("show", out, "--run", "nope")
    assert res.code == 2 and "--run 'nope' is not a run" in res.err and "Traceback" not in res.err
    res = cli("show", tmp_path / "missing")
    assert res.code == 2 and "does not exist" in res.err


def test_log_curves_skip_the_row_being_written(tmp_path: Path) -> None:
    log = tmp_path / "metrics.csv"
    log.write_text(
        "epoch,knn_top1,stage,step,train_loss_epoch,train_loss_step\n"
        "0,,base,0,,2.0\n0,0.5,base,1,1.5,\n1,,base,2,1.25,\n0,,student,3,0.5,\n1,0."
    )
    assert log_curves(log) == {
        "loss_curve": {"base": [(1, 1.5), (2, 1.25)], "student": [(1, 0.5)]},
        "knn_curve": {"base": [(1, 50.0)]},
    }


def with_curves(r: dict, knn: list[list[float]] | None) -> dict:
    m = {**r["metrics"], "loss_curve": [[1, 2.0], [2, 1.0]]}
    if knn:
        m |= {"knn_curve": knn, "knn_top1_best": max(t for _, t in knn)}
        m["knn_monitor"] = {"stage": "base", "every": 1, "bank_images": 10, "test_images": 20}
    return {**r, "metrics": m}


def test_the_leaderboard_draws_one_curves_plot_per_table(tmp_path: Path) -> None:
    records = [with_curves(r, [[1, 0.2], [2, 0.3]]) for r in RECORDS]
    text = lb.render(records)
    (link,) = [x for x in lb.plot_links(text) if x.endswith("-curves.png")]
    (plot,) = write_curve_plots(records, tmp_path)
    assert plot == tmp_path / link and is_png(plot)
    assert "-curves.png" not in lb.render(RECORDS)  # records without curves: no plot
    assert "of the backbone after its last epoch" in text


def test_knn_best_shows_the_best_online_knn_and_leaves_out_runs_without_one() -> None:
    curved = [with_curves(record("simsiam", x, s, 0.8, knn=0.4), [[1, 0.3], [2, 0.6], [3, 0.5]])
              for x in (1, 10) for s in (0, 1)]  # fmt: skip
    plain = [record("supervised", x, 0, 0.9) for x in (1, 10)]
    best = lb.render(curved + plain, "best")
    assert "| simsiam | base | 10 × 64 | 80.0 ± 0.0 / 60.0 ± 0.0 |" in best
    assert "2 record(s) without a curve are left out" in best and "| supervised" not in best
    assert "kNN: the best online kNN over epochs (10 bank / 20 test images)" in best
    final = lb.render(curved + plain)
    assert "80.0 ± 0.0 / 40.0 ± 0.0" in final and "| supervised" in final
    with pytest.raises(Exception, match="--knn must be final or best"):
        lb.render(curved, "last")


def test_mean_curve_keeps_the_epochs_every_seed_has() -> None:
    assert mean_curve([[[1, 1.0], [3, 3.0]], [[1, 2.0], [2, 9.0], [3, 5.0]]]) == [
        (1, 1.5),
        (3, 4.0),
    ]


def test_show_tells_the_results_compute_from_this_runs_wall_time() -> None:
    """A remedy on a reused base: its compute counts the base's training, which this run's
    processes did not spend (issue 30)."""
    from imbssl_bench.cli.show import _compute_line

    stages = [{"stage": "base", "reused": True}, {"stage": "resample", "reused": False}]
    record = {
        "wall_s": 41.2,
        "compute": {"passes": 80.0, "passes_vs_base": 2.0, "wall_s": 75.4, "stages": stages},
    }
    assert _compute_line(record) == [
        "compute: 80 forward-backward passes (2.00x base), 75 s of training (reused: base); "
        "this run took 41 s wall"
    ]
