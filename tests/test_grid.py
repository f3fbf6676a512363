"""End-to-end: plan -> train -> evaluate -> record, on tiny digits runs."""

from pathlib import Path

import numpy as np
import pytest
import torch

from imbssl_bench.config import RunConfig
from imbssl_bench.data import create_dataset
from imbssl_bench.errors import UserError
from imbssl_bench.methods import get_method
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.running.records import read_record

from .conftest import tiny_spec


def test_plan_resolves_config_and_counts(tmp_path: Path) -> None:
    plan = plan_grid(tiny_spec(ratios=(1.0, 10.0), seeds=(0, 1)), tmp_path)
    assert len(plan) == 4 and {p.status for p in plan} == {"todo"}
    cfg = plan[0].config
    assert cfg.train.lr == pytest.approx(0.06)  # SimSiam: not scaled with the batch
    assert cfg.imbalance.n_max == min(create_dataset("digits").pool_counts())
    assert cfg.method_args["proj_dim"] == 2048
    assert len({p.run_id for p in plan}) == 4
    r10 = next(p for p in plan if p.config.imbalance.ratio == 10)
    assert r10.class_counts[0] / r10.class_counts[-1] == pytest.approx(10, rel=0.1)


def test_grid_writes_records_and_skips_on_rerun(tmp_path: Path) -> None:
    spec = tiny_spec(methods=("simsiam", "random"), ratios=(1.0, 10.0))
    records = run_grid(plan_grid(spec, tmp_path))
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    for r in records:
        m = r["metrics"]
        assert 0 <= m["linear_top1"] <= 1 and 0 <= m["knn_top1"] <= 1
        assert len(m["per_class_acc"]) == 10 and set(m["group_acc"]) == {"many", "medium", "few"}
        assert r["n_train"] == sum(r["class_counts"]) and r["env"]["packages"]["torch"]
        assert r["config"]["model"]["stem"] == "cifar"
        assert RunConfig.from_dict(r["config"]).run_id() == r["run_id"]  # self-describing
    random_rec = next(r for r in records if r["method"] == "random")
    assert random_rec["config"]["train"]["epochs"] == 0 and random_rec["train"]["steps"] == 0
    assert random_rec["compute"] == {
        "steps": 0,
        "passes": 0.0,
        "wall_s": 0.0,
        "base_steps": 0,
        "base_passes": 0.0,
        "steps_vs_base": 0.0,
        "passes_vs_base": 0.0,
    }
    trained = next(r for r in records if r["method"] == "simsiam")
    assert trained["train"]["steps"] >= 1 and trained["train"]["final_loss"] is not None
    c = trained["compute"]  # the planned base steps: epochs x (subset // batch), drop_last
    assert c["steps"] == c["base_steps"] == trained["n_train"] // 64 == trained["train"]["steps"]
    assert c["passes"] == c["steps"] and c["steps_vs_base"] == c["passes_vs_base"] == 1.0

    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")}
    plan = plan_grid(spec, tmp_path)
    assert {p.status for p in plan} == {"ok"}
    assert run_grid(plan) == records
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")} == mtimes


def test_a_crashing_run_gets_a_failed_record_and_the_grid_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    simsiam = get_method("simsiam")

    def boom(self, views, targets):  # type: ignore[no-untyped-def]
        raise RuntimeError("injected failure")

    monkeypatch.setattr(simsiam, "training_loss", boom)
    records = run_grid(plan_grid(tiny_spec(methods=("simsiam", "random")), tmp_path))
    by_method = {r["method"]: r for r in records}
    assert by_method["simsiam"]["status"] == "failed"
    assert "injected failure" in by_method["simsiam"]["error"]
    assert by_method["random"]["status"] == "ok"
    failed_path = next(p.path for p in plan_grid(tiny_spec(), tmp_path))
    assert read_record(failed_path)["status"] == "failed"

    monkeypatch.undo()
    plan = plan_grid(tiny_spec(), tmp_path)
    assert run_grid(plan)[0]["status"] == "failed"  # skipped: the failed record stays
    assert run_grid(plan, retry_failed=True)[0]["status"] == "ok"


def test_same_config_same_numbers(tmp_path: Path) -> None:
    a = run_grid(plan_grid(tiny_spec(), tmp_path / "a"))[0]
    b = run_grid(plan_grid(tiny_spec(), tmp_path / "b"))[0]
    assert a["run_id"] == b["run_id"] and a["metrics"] == b["metrics"]
    assert a["train"]["final_loss"] == b["train"]["final_loss"]


def test_ctrl_c_during_training_writes_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(self, views, targets):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(get_method("simsiam"), "training_loss", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_grid(plan_grid(tiny_spec(), tmp_path))
    assert not list(tmp_path.glob("*.json"))


def test_same_size_grid_has_equal_n(tmp_path: Path) -> None:
    plan = plan_grid(tiny_spec(ratios=(1.0, 10.0, 100.0), same_size=True), tmp_path)
    sizes = {p.n_train for p in plan}
    assert sizes == {plan[-1].config.imbalance.total} and len(sizes) == 1
    r100 = plan_grid(tiny_spec(ratios=(100.0,)), tmp_path)[0]
    assert sizes == {r100.n_train}  # N = the most imbalanced subset
    assert len({p.run_id for p in plan}) == 3
    explicit = plan_grid(tiny_spec(ratios=(1.0, 10.0), total=200), tmp_path)
    assert {p.n_train for p in explicit} == {200}


def test_validation_split_is_held_out_of_the_pool(tmp_path: Path) -> None:
    from imbssl_bench.data.imbalance import holdout_split

    targets = create_dataset("digits").train_targets()
    pool_idx, val_idx = holdout_split(targets, 20)
    assert np.bincount(targets[val_idx]).tolist() == [20] * 10
    assert not set(pool_idx) & set(val_idx) and len(pool_idx) + len(val_idx) == len(targets)
    (run,) = plan_grid(tiny_spec(val_per_class=20), tmp_path)
    assert run.config.imbalance.n_max == min(np.bincount(targets)) - 20
    (record,) = run_grid([run])
    assert record["n_pool"] == len(pool_idx)
    assert {"val_linear_top1", "val_knn_top1", "fewshot_top1"} <= set(record["metrics"])
    probe = record["metrics"]["linear_probe"]  # C chosen on the validation split, recorded
    assert run.config.eval.linear_c_grid == (0.01, 0.1, 1.0, 10.0)
    assert [row["C"] for row in probe["c_grid"]] == [0.01, 0.1, 1.0, 10.0]
    assert probe["C"] in (0.01, 0.1, 1.0, 10.0) and isinstance(probe["converged"], bool)
    assert probe["backend"] == "sklearn"  # auto, on a few hundred features


def test_probes_fit_on_a_fixed_balanced_share_of_the_pool(tmp_path: Path, monkeypatch) -> None:
    import imbssl_bench.running.execute as grid

    pools = []

    def spy(backbone, pool, *args, **kwargs):
        pools.append(pool)
        return real(backbone, pool, *args, **kwargs)

    real = grid.evaluate
    monkeypatch.setattr(grid, "evaluate", spy)
    spec = tiny_spec(methods=("random",), seeds=(0, 1), probe_per_class=30, val_per_class=20)
    records = run_grid(plan_grid(spec, tmp_path))
    assert [r["n_probe"] for r in records] == [300, 300]
    assert np.bincount(pools[0].targets.numpy()).tolist() == [30] * 10
    assert torch.equal(pools[0].images, pools[1].images)  # one draw shared by every seed
    with pytest.raises(UserError, match="--probe-per-class 500 exceeds"):
        plan_grid(tiny_spec(probe_per_class=500), tmp_path)


def test_a_plugin_variant_shares_the_base_run_of_its_config(tmp_path: Path) -> None:
    """Its run id names the plugin's version; the base run it starts from does not."""
    import dataclasses

    from imbssl_bench.running.plan import base_run_id

    (base,) = plan_grid(tiny_spec(), tmp_path)
    source = {"name": "mine", "dist": "my-remedies", "version": "1.0"}
    mine = dataclasses.replace(
        base.config, variant="mine", variant_args={"x": 1}, plugins={"variant": source}
    )
    assert mine.run_id() != base.run_id and base_run_id(mine) == base.run_id
