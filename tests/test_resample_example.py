"""examples/resample-remedy, a remedy written against `imbssl_bench.api` alone: installed from
its own package, run beside `base` and `matched`, and paired with them in the leaderboard."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from imbssl_bench.reporting import leaderboard as lb
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from tests.conftest import tiny_spec
from tests.examples import on_path, pip_install
from tests.test_draws import only_record

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed with pip once for this module's tests."""
    return pip_install(EXAMPLES / "resample-remedy", tmp_path_factory.mktemp("resample"))


def test_the_examples_import_only_the_public_api() -> None:
    for path in EXAMPLES.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.startswith("imbssl_bench"):
                    assert name == "imbssl_bench.api", f"{path}: imports {name}"


def test_a_plugin_remedy_stands_beside_its_controls(site: Path, tmp_path: Path) -> None:
    with on_path(site, "imbssl_resample"):
        spec = tiny_spec(methods=("simclr",), variants=("base", "density-resample", "matched"))
        plan = plan_grid(spec, tmp_path / "runs")
        records = run_grid(plan)
    assert [r["status"] for r in records] == ["ok"] * 3, [r.get("error") for r in records]
    by_variant = {r["variant"]: r for r in records}
    remedy, matched = by_variant["density-resample"], by_variant["matched"]
    assert remedy["config"]["plugins"]["variant"]["dist"] == "imbssl-bench-resample"
    assert remedy["config"]["variant_args"] == {
        "resample_epochs": 1, "resample_k": 10, "resample_power": 1.0
    }  # fmt: skip
    assert remedy["compute"]["passes_vs_base"] == 2.0
    assert matched["diagnostics"]["matched"]["to"] == [remedy["run_id"]]
    resampled = remedy["diagnostics"]["density_resample"]
    assert resampled["base_reused"] is True  # the grid ran base first and kept its weights
    assert 0 < resampled["last_epoch_images_drawn"] < remedy["n_train"]  # with replacement
    md = lb.render(records)
    assert "plugin=" not in md
    assert "| simclr | density-resample | 1 + 1 × 64 |" in md  # its two stages (reused base)
    table = md[md.index("Remedies vs controls") :].split("\n\n")[1].splitlines()
    row = next(x for x in table if x.startswith("| simclr | density-resample |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # passes, wall, matched passes, then the differences to base and matched: numbers
    assert cells[2] == "2.00" and cells[4] == "2.00", row
    for delta in cells[5:7]:
        float(delta)  # a dash (unpaired) fails here


def test_a_resampled_stage_resumed_mid_epoch_equals_the_uninterrupted_run(
    site: Path, tmp_path: Path, monkeypatch
) -> None:
    """The sampler hook (weights from the model as each epoch starts) and the per-image losses
    (buffers in the epoch checkpoint): a resume replays nothing."""
    from tests.test_draws import numbers, only_record, resumed_record

    with on_path(site, "imbssl_resample"):
        spec = tiny_spec(
            methods=("simclr",),
            variants=("density-resample",),
            variant_args={"resample_epochs": 3},
            epochs=2,
        )
        whole = only_record(spec, tmp_path / "whole")
        resumed = resumed_record(spec, tmp_path / "resumed", monkeypatch, ("resample", 2, 1))
    assert resumed["train"]["resumed_from_epoch"] == 2
    assert numbers(resumed) == numbers(whole)
    assert resumed["diagnostics"] == whole["diagnostics"]


def test_per_image_losses_add_up_over_ddp_processes(
    site: Path, tmp_path: Path, repo_root: Path, monkeypatch
) -> None:
    """Two processes draw the global batches a single one draws and each trains its share:
    the per-image losses of the last epoch cover the same images (each process's sums are its
    own until the epoch ends; DDP broadcasts buffers from rank 0 at every step)."""
    import os

    path = [str(site), str(repo_root), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))  # the DDP processes find it too
    with on_path(site, "imbssl_resample"):
        spec = tiny_spec(  # power 0: the same weights whatever the model (DDP trains another)
            methods=("simclr",),
            variants=("density-resample",),
            variant_args={"resample_power": 0.0},
            accelerator="cpu",
        )
        one = only_record(spec, tmp_path / "one")
        two = only_record(dataclasses.replace(spec, devices=2), tmp_path / "two")
    assert (one["train"]["processes"], two["train"]["processes"]) == (1, 2)
    drawn = [r["diagnostics"]["density_resample"]["last_epoch_images_drawn"] for r in (one, two)]
    assert drawn[0] == drawn[1], drawn
