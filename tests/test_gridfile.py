"""Grid files: shipped grids parse and plan; every mistake in a file names the key."""

import json
from pathlib import Path

import pytest

from imbssl_bench.errors import UserError
from imbssl_bench.running.gridfile import (
    build_spec,
    grid_description,
    load_grid_file,
    packaged_grids,
)

GRIDS = packaged_grids()


@pytest.mark.parametrize("name", GRIDS)
def test_shipped_grids_parse(name: str) -> None:
    spec = build_spec(load_grid_file(GRIDS[name]), {})
    assert spec.methods and spec.ratios and spec.seeds
    assert not spec.same_size or spec.total, "a same-size grid pins its N: state `total`"
    assert grid_description(name, GRIDS[name].read_text()), "lead with `# NAME: what it runs`"


def test_the_paper_grids_run_the_papers_remedies() -> None:
    def spec(name: str):  # type: ignore[no-untyped-def]
        return build_spec(load_grid_file(GRIDS[name]), {})

    for name in ("liu2022", "liu2022-step", "liu2022-cpu"):
        assert spec(name).variants == ("base", "sam", "rwsam", "matched"), name
    assert (spec("liu2022").profile, spec("liu2022-step").profile) == ("exponential", "step")
    for name in ("chang2022", "chang2022-cpu"):
        assert spec(name).variants == ("base", "cluster-distill", "matched"), name
    design = ("dataset", "total", "n_max", "epochs", "batch_size", "lr", "backbone", "stem")
    cpu = spec("cifar10-lt-cpu")
    for name in ("liu2022-cpu", "chang2022-cpu"):  # the CPU study's design, its seeds and ratios
        s = spec(name)
        assert [getattr(s, k) for k in design] == [getattr(cpu, k) for k in design], name
        assert (s.ratios, s.seeds, s.probe_per_class) == (cpu.ratios, cpu.seeds, 1000)


def test_grids_lists_the_packaged_grids_one_line_each(cli) -> None:
    res = cli("grids")
    assert res.code == 0 and [line.split()[0] for line in res.out.splitlines()] == list(GRIDS)
    rows = json.loads(cli("grids", "--json").out)
    assert [r["name"] for r in rows] == list(GRIDS) and all(r["description"] for r in rows)
    liu = next(r for r in rows if r["name"] == "liu2022")
    assert liu["description"].startswith("Liu et al. (ICLR 2022)")


def test_an_unknown_grid_name_is_one_line_with_the_names(cli) -> None:
    res = cli("run", "--config", "liu2021", "--dry-run")
    assert res.code == 2 and res.err.count("\n") == 1
    assert "not a packaged grid" in res.err and "liu2022-cpu" in res.err


def test_a_path_that_exists_wins_over_a_packaged_name(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny").write_text('methods = ["random"]\nratios = [1]\n')
    res = cli("run", "--config", "tiny", "--out", tmp_path, "--dry-run", "--json")
    assert res.code == 0 and len(json.loads(res.out)["runs"]) == 1, res.err


def test_tiny_grid_plans_36_equal_size_runs(cli, tmp_path: Path) -> None:
    res = cli(
        "run",
        "--config",
        "tiny",  # by name: the packaged grid
        "--out",
        tmp_path,
        "--dry-run",
        "--json",
    )
    assert res.code == 0, res.err
    runs = json.loads(res.out)["runs"]
    assert len(runs) == 36 and {r["n_train"] for r in runs} == {322} and not res.err


def test_one_cell_of_a_shipped_grid_gets_the_committed_run_id(
    cli, repo_root: Path, tmp_path: Path
) -> None:
    grid = repo_root / "imbssl_bench/grids/tiny.toml"  # by path
    cell = ["--method", "simsiam", "--ratios", "1", "--seeds", "0"]
    res = cli("run", "--config", grid, *cell, "--out", tmp_path, "--dry-run", "--json")
    assert res.code == 0 and not res.err, res.err
    (run,) = json.loads(res.out)["runs"]
    assert (repo_root / "leaderboard" / "results" / f"{run['run_id']}.json").is_file()


def test_a_derived_same_size_n_is_said_in_one_line(cli, tmp_path: Path) -> None:
    res = cli(
        "run", "--method", "random", "--same-size", "--ratios", "1,10,100", "--out", tmp_path,
        "--dry-run", "--json",
    )  # fmt: skip
    assert res.code == 0 and {r["n_train"] for r in json.loads(res.out)["runs"]} == {322}
    assert res.err == (
        "same size: N=322 derived from the smallest subset of ratios 1,10,100; pass --total 322 "
        "to reproduce it when re-running a part of this grid\n"
    )


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
        ('methods = ["simclr"]\nexpert_epochs = 3\n', "'expert_epochs' is gone; write expert_"),
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


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('methods = ["simclr"]\nepochs = 0\n', "epochs = 0 must be >= 1"),
        ('methods = ["simclr"]\nbatch_size = 1\n', "batch_size = 1 must be >= 2"),
        ('methods = ["simclr"]\nnum_workers = -1\n', "num_workers = -1 must be >= 0"),
        ('methods = ["simclr"]\nval_per_class = -3\n', "val_per_class = -3 must be >= 1"),
        ('methods = ["simclr"]\ntotal = 0\n', "total = 0 must be >= 1"),
    ],
)
def test_grid_file_values_get_the_cli_range_checks(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        build_spec(load_grid_file(path), {})


def test_int_and_float_lr_give_one_run_id(tmp_path: Path) -> None:
    from imbssl_bench.running.plan import plan_grid

    path = tmp_path / "g.toml"
    path.write_text('methods = ["random"]\nratios = [1]\nlr = 1\n')
    from_file = plan_grid(build_spec(load_grid_file(path), {}), tmp_path)[0].run_id
    from_flag = plan_grid(
        build_spec({}, {"methods": "random", "ratios": "1", "lr": 1.0}), tmp_path
    )[0].run_id
    assert from_file == from_flag


def test_no_same_size_flag_beats_a_total_in_the_file(tmp_path: Path) -> None:
    from imbssl_bench.running.plan import plan_grid

    path = tmp_path / "g.toml"
    path.write_text('methods = ["random"]\nratios = [1, 10]\ntotal = 200\n')
    sized = plan_grid(build_spec(load_grid_file(path), {}), tmp_path)
    assert {p.n_train for p in sized} == {200}
    plain = plan_grid(build_spec(load_grid_file(path), {"same_size": False}), tmp_path)
    assert len({p.n_train for p in plain}) == 2


def test_dataset_label_does_not_change_the_run_id(tmp_path: Path) -> None:
    from imbssl_bench.running.plan import plan_grid

    plain = plan_grid(build_spec({}, {"methods": "random", "ratios": "1"}), tmp_path)[0]
    named = plan_grid(
        build_spec({}, {"methods": "random", "ratios": "1", "dataset_label": "Digits!"}), tmp_path
    )[0]
    assert plain.run_id == named.run_id and named.config.data.label == "Digits!"


def test_method_args_table_merges_with_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(
        'methods = ["simclr"]\nratios = [1]\n[method_args]\ntemperature = 0.3\nout_dim = 64\n'
    )
    spec = build_spec(load_grid_file(path), {"method_args": {"out_dim": 32}})
    assert spec.method_args == {"temperature": 0.3, "out_dim": 32}
    path.write_text('methods = ["simclr"]\nmethod_args = 3\n')
    with pytest.raises(UserError, match=r"must be a table \[method_args\]"):
        load_grid_file(path)
