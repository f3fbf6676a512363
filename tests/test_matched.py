"""`matched`: the compute-matched control, its factor resolved at planning time."""

from pathlib import Path

import pytest

from imbssl_bench.api import Compute
from imbssl_bench.api.compute import compute_section
from imbssl_bench.config import RunConfig, TrainConfig
from imbssl_bench.errors import UserError
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid

from .conftest import TINY_FLAGS, tiny_spec


def test_planning_matches_the_costliest_other_variant(tmp_path: Path) -> None:
    spec = tiny_spec(variants=("base", "sam", "matched"), seeds=(0, 1), epochs=3)
    plan = plan_grid(spec, tmp_path)
    matched = [p for p in plan if p.config.variant == "matched"]
    assert len(matched) == 2 and all(p.config.train.epochs == 3 for p in matched)
    for p in matched:
        assert p.config.variant_args == {"matched_factor": 2.0, "matched_epochs": 6}
        (sam,) = [q for q in plan if q.config.variant == "sam" and q.config.seed == p.config.seed]
        assert p.matched_to == (sam.run_id,)  # the runs it controls, not a variant name
    assert [p.run_id for p in plan_grid(spec, tmp_path)] == [p.run_id for p in plan]  # stable
    given = plan_grid(
        tiny_spec(variants=("base", "matched"), variant_args={"matched_factor": 2}, epochs=3),
        tmp_path,
    )
    assert given[1].run_id == matched[0].run_id and given[1].matched_to == ()


def test_matched_without_a_costlier_variant_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"add a remedy .* or give --variant-arg matched_factor=X"):
        plan_grid(tiny_spec(variants=("base", "matched")), tmp_path)
    with pytest.raises(UserError, match=r"matched_factor = 0\.0 must be"):
        plan_grid(tiny_spec(variants=("matched",), variant_args={"matched_factor": 0.0}), tmp_path)


def test_a_factor_that_rounds_away_is_refused_with_the_epochs_that_match(tmp_path: Path) -> None:
    # 1.2 x 1 epoch rounds to 1 epoch: it would train exactly base while saying 1.2
    with pytest.raises(UserError, match=r"trains 1 epoch.*--epochs 4 would match \(5 epochs"):
        plan_grid(
            tiny_spec(variants=("matched",), variant_args={"matched_factor": 1.2}, epochs=1),
            tmp_path,
        )
    (ok,) = plan_grid(
        tiny_spec(variants=("matched",), variant_args={"matched_factor": 1.2}, epochs=4), tmp_path
    )
    assert ok.config.variant_args["matched_epochs"] == 5  # x1.25: within 5%


def test_dry_run_shows_the_factor_and_a_missing_remedy_is_one_line(cli, tmp_path: Path) -> None:
    flags = ["run", "--method", "simsiam", *TINY_FLAGS, "--ratios", "1", "--out", tmp_path]
    res = cli(*flags, "--variants", "base,rwsam,matched", "--dry-run")
    assert res.code == 0, res.err
    assert "matched ×2 (rwsam)" in res.out
    res = cli(*flags, "--variants", "base,matched")
    assert res.code == 2 and res.err.count("\n") == 1 and "matched_factor=X" in res.err


def test_matched_trains_base_for_the_factor_and_states_its_compute(tmp_path: Path) -> None:
    spec = tiny_spec(variants=("matched",), variant_args={"matched_factor": 2.0})
    (rec,) = run_grid(plan_grid(spec, tmp_path))
    assert rec["status"] == "ok", rec.get("error")
    assert rec["train"]["epochs"] == 2 and rec["config"]["train"]["epochs"] == 1
    c = rec["compute"]
    assert c["steps"] == 2 * c["base_steps"] == rec["train"]["steps"]
    assert c["steps_vs_base"] == c["passes_vs_base"] == 2.0 and c["wall_s"] > 0
    assert rec["diagnostics"]["matched"] == {"factor": 2.0, "epochs": 2, "achieved": 2.0, "to": []}


def test_compute_is_relative_to_the_planned_base_and_never_guessed() -> None:
    cfg = RunConfig("simsiam", train=TrainConfig(epochs=3, batch_size=64))
    small = compute_section(Compute(3, 3 * 40 / 64, 1.0), {"steps": 3}, cfg, 40)  # batch capped
    assert small is not None and small["base_steps"] == 3 and small["passes_vs_base"] == 1.0
    assert compute_section(Compute(6, 12.0, 1.0), {}, cfg, 130)["passes_vs_base"] == 2.0
    assert compute_section(None, {"steps": 5}, cfg, 130) is None  # trained, but not stated
