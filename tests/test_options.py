"""Each grid option is declared once (`imbssl_bench.running.options.OPTIONS`): the `run` flags, the
grid-file keys, `GridSpec` and the place in the resolved config all come from that entry."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from imbssl_bench.errors import UserError
from imbssl_bench.running.gridfile import build_spec, load_grid_file
from imbssl_bench.running.options import OPTIONS, GridSpec
from imbssl_bench.running.plan import template

from .conftest import TINY_FLAGS

SAMPLE = {int: 9, float: 0.5, str: "x", bool: True}  # a value of each scalar kind


def test_every_option_is_a_flag_a_grid_file_key_and_a_spec_field(cli, tmp_path: Path) -> None:
    help_text = cli("run", "--help").out
    fields = {f.name for f in dataclasses.fields(GridSpec)}
    for option in OPTIONS:
        assert option.name in fields, option.name
        assert option.flag in help_text, option.flag
        if option.kind in SAMPLE:  # a grid-file key of the option's TOML type
            path = tmp_path / f"{option.name}.toml"
            path.write_text(f"{option.name} = {json.dumps(SAMPLE[option.kind])}\n")
            assert load_grid_file(path) == {option.name: SAMPLE[option.kind]}


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.target], ids=lambda o: o.name)
def test_an_option_lands_where_its_target_says(option) -> None:
    value = SAMPLE[option.kind]
    spec = build_spec({}, {"methods": "simclr", option.name: value})
    section, key = option.target.split(".")
    expected = option.to_config(value) if option.to_config else value
    assert getattr(getattr(template(spec), section), key) == expected


def test_variant_args_flags_and_table_give_the_same_runs(cli, tmp_path: Path) -> None:
    grid = tmp_path / "g.toml"
    grid.write_text('variants = ["base", "sam"]\n[variant_args]\nsam_rho = 0.05\n')
    base = ["run", "--method", "simsiam", *TINY_FLAGS, "--ratios", "1", "--out", tmp_path]

    def run_ids(*args: str) -> list[str]:
        res = cli(*base, *args, "--dry-run", "--json")
        assert res.code == 0, res.err
        return [r["run_id"] for r in json.loads(res.out)["runs"]]

    from_file = run_ids("--config", str(grid))
    from_flags = run_ids("--variants", "base,sam", "--variant-arg", "sam_rho=0.05")
    default = run_ids("--variants", "base,sam")
    assert from_file == from_flags and from_file[0] == default[0] != default[1] != from_file[1]
    overridden = run_ids("--config", str(grid), "--variant-arg", "sam_rho=0.5")
    assert overridden == default  # a flag beats the file's table, key by key


def test_a_variant_option_at_the_top_of_a_grid_file_says_where_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text('methods = ["simclr"]\nrwsam_weights = "offline"\n')
    message = 'variant rwsam: write it under [variant_args] (rwsam_weights = "offline")'
    with pytest.raises(UserError, match=re.escape(message)):
        load_grid_file(path)
    path.write_text('methods = ["simclr"]\ntemperature = 0.2\n')
    with pytest.raises(UserError, match=r"option of method .* under \[method_args\]"):
        load_grid_file(path)
