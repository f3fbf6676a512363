"""The Pareto profile (ImageNet-LT's): its counts, its option, and run ids that stay."""

import json
import math
from pathlib import Path

import pytest

from imbssl_bench.data import ImbalancedDataset, create_dataset
from imbssl_bench.data.imbalance import PARETO_SHAPE, class_counts, pareto_profile
from imbssl_bench.errors import UserError
from imbssl_bench.running.gridfile import build_spec, load_grid_file
from imbssl_bench.running.plan import plan_grid

from .conftest import tiny_spec


@pytest.mark.parametrize(
    ("n_max", "ratio", "classes", "shape"),
    [(1280, 256, 1000, 6), (5000, 100, 10, 6), (500, 10, 100, 1.5), (45, 7, 3, 20), (9, 1, 4, 6)],
)
def test_pareto_counts_run_from_n_max_to_n_max_over_rho(
    n_max: int, ratio: float, classes: int, shape: float
) -> None:
    counts = pareto_profile(n_max, ratio, classes, shape)
    assert len(counts) == classes and counts[0] == n_max
    assert counts[-1] == math.floor(n_max / ratio)
    assert counts == sorted(counts, reverse=True)


def test_imagenet_lt_like_case() -> None:
    counts = pareto_profile(1280, 256, 1000)  # ImageNet-LT: 115,846 images, 1280 .. 5
    assert (counts[0], counts[-1], sum(counts)) == (1280, 5, 104_345)


def test_the_shape_sets_the_curve_between_the_ends() -> None:
    totals = [sum(pareto_profile(5000, 100, 10, s)) for s in (0.5, 1, 3, 6, 20)]
    assert totals == sorted(totals)  # a smaller shape: fewer classes near n_max
    assert class_counts([5000] * 10, 100, 5000, "pareto") == pareto_profile(5000, 100, 10)


@pytest.mark.parametrize("shape", [0, -1, math.nan, math.inf])
def test_a_bad_shape_is_a_user_error(shape: float) -> None:
    with pytest.raises(UserError, match="--pareto-shape must be a finite number > 0"):
        class_counts([100] * 4, 10, 100, "pareto", pareto_shape=shape)


def test_a_shape_without_the_pareto_profile_is_an_error() -> None:
    """Refused, not ignored: a forgotten --profile pareto must not run an exponential grid."""
    with pytest.raises(UserError, match="applies to the pareto profile, not 'exponential'"):
        class_counts([100] * 4, 10, 100, pareto_shape=3)


def test_dry_run_plans_the_pareto_counts(cli, tmp_path: Path) -> None:
    args = ["run", "-m", "simsiam", "--ratios", "10", "--out", tmp_path, "--dry-run", "--json"]
    res = cli(*args, "--profile", "pareto", "--pareto-shape", "3")
    assert res.code == 0, res.err
    counts = json.loads(res.out)["runs"][0]["class_counts"]
    n_max = min(create_dataset("digits").pool_counts())
    assert counts == pareto_profile(n_max, 10, 10, 3) and counts[-1] == n_max // 10
    bad = cli(*args, "--pareto-shape", "3")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "--profile pareto" in bad.err
    bad = cli(*args, "--profile", "pareto", "--pareto-shape", "0")
    assert bad.code == 2 and "must be a finite number > 0" in bad.err


def test_grid_file_pareto_resolves_the_shape_and_keeps_exponential_ids(tmp_path: Path) -> None:
    grid = tmp_path / "g.toml"
    grid.write_text('methods = ["simsiam"]\nratios = [10]\nprofile = "pareto"\n')
    spec = build_spec(load_grid_file(grid), {})
    (run,) = plan_grid(spec, tmp_path)
    assert run.config.imbalance.pareto_shape == PARETO_SHAPE  # resolved, so it is hashed
    assert run.class_counts == pareto_profile(run.class_counts[0], 10, 10)
    exponential = plan_grid(tiny_spec(), tmp_path)[0].config
    assert exponential.imbalance.pareto_shape is None
    assert "pareto_shape" not in exponential.identity()["imbalance"]  # old run ids stay


def test_the_wrapper_takes_the_shape() -> None:
    labels = [c for c in range(4) for _ in range(100)]
    lt = ImbalancedDataset(list(range(400)), 10, "pareto", labels=labels, pareto_shape=2)
    assert lt.class_counts == pareto_profile(100, 10, 4, 2) and len(lt) == sum(lt.class_counts)


def test_tables_name_the_shape_and_plot_files_stay_plain() -> None:
    from imbssl_bench.reporting.rows import plot_name, profile_name, table_key

    config = {
        "imbalance": {"n_max": 10, "class_order": "index", "pareto_shape": 2.0},
        "data": {"image_size": 8},
        "eval": {},
        "model": {"backbone": "b", "stem": "cifar"},
        "preset": "tiny",
    }
    record = {"dataset": "digits", "profile": "pareto", "config": config}
    assert profile_name(record) == "pareto (shape 2)"
    assert plot_name(table_key(record)).startswith("plots/digits-pareto-")
