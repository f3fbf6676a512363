import json
from pathlib import Path

import pytest

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError
from imbssl_bench.running.records import SCHEMA, load_records, read_record, write_record


def make_record(run_id: str = "r1", **kw: object) -> dict:
    record = {
        "schema": SCHEMA,
        "run_id": run_id,
        "status": "ok",
        "method": "simsiam",
        "variant": "base",
        "dataset": "digits",
        "ratio": 10.0,
        "seed": 0,
        "class_counts": [5, 3, 1],
        "n_train": 9,
        "config": RunConfig("simsiam").to_dict(),
        "metrics": {
            "knn_top1": 0.5,
            "linear_top1": 0.6,
            "per_class_acc": [0.7, 0.6, None],
            "group_acc": {"many": 0.7, "medium": 0.6, "few": None},
            "per_class_std": 0.05,
        },
        "wall_s": 1.5,
        "env": {"device": "cpu"},
    }
    record.update(kw)
    return record


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r1.json"
    write_record(path, make_record())
    record = read_record(path)
    assert record.pop("digest").startswith("sha256:")  # write_record adds it
    assert record == make_record()
    assert [p.name for p in path.parent.iterdir()] == ["r1.json"]  # no temp file left


def test_nan_is_stored_as_null(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_record(path, make_record(wall_s=float("nan")))
    assert json.loads(path.read_text())["wall_s"] is None


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "corrupt record"),
        ('{"hello": 1}', "not an imbssl-bench record"),
        ("[1, 2]", "not an imbssl-bench record"),
        ("", "corrupt record"),
    ],
)
def test_corrupt_or_foreign_file_is_named(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=match) as info:
        read_record(path)
    assert "bad.json" in str(info.value)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    record = make_record()
    del record["metrics"]["knn_top1"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"metrics\.knn_top1"):
        read_record(path)


def test_load_records_sorted_and_missing_folder(tmp_path: Path) -> None:
    write_record(tmp_path / "b.json", make_record("b"))
    write_record(tmp_path / "a.json", make_record("a"))
    assert [r["run_id"] for r in load_records(tmp_path)] == ["a", "b"]
    with pytest.raises(UserError, match="does not exist"):
        load_records(tmp_path / "nope")


def _broken(**kw: object) -> dict:
    record = make_record()
    for key, value in kw.items():
        if key.startswith("metrics_"):
            record["metrics"][key[len("metrics_") :]] = value
        elif key.startswith("config_"):
            record["config"][key[len("config_") :]] = value
        else:
            record[key] = value
    return record


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (_broken(config={"method": "x"}), "no config section"),
        (_broken(config_train={"epohcs": 3}), "invalid config"),
        (_broken(metrics_linear_top1=None), "invalid metrics"),
        (_broken(metrics_knn_top1="high"), "invalid metrics"),
        (_broken(metrics_group_acc=None), "invalid metrics"),
        (_broken(ratio="10"), "wrong type for ratio"),
        (_broken(seed="a", run_id=5), "wrong type for run_id, seed"),
        (_broken(status="maybe"), "status 'maybe'"),
    ],
)
def test_malformed_records_are_named(tmp_path: Path, record: dict, match: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    with pytest.raises(UserError, match=match) as info:
        read_record(path)
    assert "r.json" in str(info.value)


def test_records_are_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_record(path, make_record())
    assert path.stat().st_mode & 0o044  # not mkstemp's 0600


def test_committed_records_keep_their_run_ids() -> None:
    """Adding a config option must not silently change the ids of published records."""
    results = Path(__file__).parent.parent / "leaderboard" / "results"
    for r in load_records(results):
        cfg = RunConfig.from_dict(r["config"])
        assert (cfg.config_hash(), cfg.run_id()) == (r["config_hash"], r["run_id"]), r["run_id"]


def test_new_options_enter_the_hash_only_when_set() -> None:
    from dataclasses import replace

    from imbssl_bench.config import EvalConfig

    cfg = RunConfig("simsiam")
    assert "probe_per_class" not in cfg.identity()["eval"]
    assert replace(cfg, eval=EvalConfig(probe_per_class=10)).config_hash() != cfg.config_hash()


def test_plugins_enter_the_identity_and_built_ins_do_not(tmp_path: Path, toy_plugin: str) -> None:
    from dataclasses import replace
    from types import SimpleNamespace

    from imbssl_bench.registry import plugin_source
    from imbssl_bench.running.plan import plan_grid

    from .conftest import tiny_spec

    toy, simsiam = (p.config for p in plan_grid(tiny_spec(methods=("toy", "simsiam")), tmp_path))
    source = toy.plugins["method"].pop("source")  # a hash of the plugin's code (test_identity)
    assert toy.plugins == {"method": {"name": "toy", "dist": None, "version": None}} and source
    assert simsiam.plugins == {} and "plugins" not in simsiam.identity()
    ep = SimpleNamespace(dist=SimpleNamespace(name="imbssl_bench", version="9"))
    assert plugin_source(ep, "simclr") is None  # type: ignore[arg-type]
    ep.dist.name = "toy-plugin"
    source = plugin_source(ep, "toy")  # type: ignore[arg-type]
    assert source == {"name": "toy", "dist": "toy-plugin", "version": "9"}
    newer = replace(toy, plugins={"method": {**source, "version": "10"}})
    assert replace(toy, plugins={"method": source}).run_id() != newer.run_id()


def test_code_version_names_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    from imbssl_bench import envinfo

    code = envinfo.code_version()  # the checkout's version, even if the install is older
    pyproject = Path(envinfo.__file__).parents[1] / "pyproject.toml"
    assert code["version"] == tomllib.loads(pyproject.read_text())["project"]["version"]
    commit = envinfo.git_commit()
    assert commit is not None and len(commit.removesuffix("-dirty")) == 40
    monkeypatch.setenv("PATH", "")  # no git: silently no commit
    assert envinfo.git_commit() is None
