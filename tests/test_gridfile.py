"""Grid files: shipped grids parse and plan; every mistake in a file names the key."""

import json
from pathlib import Path

import pytest

from imbssl_bench.errors import UserError
from imbssl_bench.gridfile import build_spec, load_grid_file

GRIDS = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "grids").glob("*.toml"))


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.stem)
def test_shipped_grids_parse(path: Path) -> None:
    spec = build_spec(load_grid_file(path), {})
    assert spec.methods and spec.ratios and spec.seeds


def test_tiny_grid_plans_36_equal_size_runs(cli, repo_root: Path, tmp_path: Path) -> None:
    res = cli(
        "run",
        "--config",
        repo_root / "benchmarks/grids/tiny.toml",
        "--out",
        tmp_path,
        "--dry-run",
        "--json",
    )
    assert res.code == 0, res.err
    runs = json.loads(res.out)["runs"]
    assert len(runs) == 36 and len({r["n_train"] for r in runs}) == 1


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text('methods = ["simclr"]\nratios = [1, 10]\nepochs = 3\nsame_size = true\n')
    spec = build_spec(load_grid_file(path), {"epochs": 5, "methods": "simsiam"})
    assert spec.methods == ("simsiam",) and spec.epochs == 5
    assert spec.ratios == (1.0, 10.0) and spec.same_size is True


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('methods = ["simclr"]\nepoch = 3\n', "unknown key 'epoch'"),
        ('methods = ["simclr"]\nepochs = "three"\n', "'epochs' = 'three' has the wrong type"),
        ('methods = ["simclr"]\nsame_size = 1\n', "'same_size' = 1 has the wrong type"),
        ('methods = ["simclr"]\nepochs = true\n', "'epochs' = True has the wrong type"),
        ('methods = "simclr"\n', "'methods' must be a non-empty list"),
        ('methods = ["simclr"]\nratios = [1, 0]\n', ">= 1"),
        ("methods = [simclr\n", "not valid TOML"),
        ("ratios = [1]\n", "no method given"),
    ],
)
def test_bad_grid_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        build_spec(load_grid_file(path), {})


def test_bad_grid_file_on_the_command_line(cli, tmp_path: Path) -> None:
    res = cli("run", "--config", tmp_path / "missing.toml", "--dry-run")
    assert res.code == 2 and "does not exist" in res.err and res.err.count("\n") == 1
    path = tmp_path / "g.toml"
    path.write_text('methods = ["simclr"]\nlearning_rate = 0.1\n')
    res = cli("run", "--config", path, "--dry-run")
    assert res.code == 2 and "'learning_rate'" in res.err and res.err.count("\n") == 1
