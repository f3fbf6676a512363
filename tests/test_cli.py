"""The command line as a user meets it: listings, dry runs, bad input, leaderboard."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imbssl_bench.envinfo import code_version
from imbssl_bench.running.records import read_record, write_record

from .conftest import TINY_FLAGS


def test_listings(cli) -> None:
    methods = cli("methods", "--json")
    assert methods.code == 0
    names = {m["name"]: m for m in json.loads(methods.out)}
    assert {"simclr", "simsiam", "random"} <= set(names)
    assert names["simsiam"]["origin"] == "imbssl-bench" and names["simsiam"]["error"] is None
    variants = cli("variants", "--json")
    assert variants.code == 0
    found = {v["name"]: v for v in json.loads(variants.out)}
    assert {"base", "matched", "sam", "rwsam", "rwsam-oracle", "cluster-distill"} <= set(found)
    assert found["sam"]["origin"] == "imbssl-bench" and found["sam"]["args"]["sam_rho"] == 0.5
    assert found["sam"]["needs_per_example_loss"] is True and found["sam"]["error"] is None
    listed = cli("variants", "--args")
    assert listed.code == 0 and "sam_rho=0.5" in listed.out
    datasets = cli("datasets")
    assert datasets.code == 0
    for name in ("digits", "cifar10", "cifar100", "imagefolder"):
        assert name in datasets.out


def test_dry_run_json(cli, tmp_path: Path) -> None:
    res = cli(
        "run",
        "--method",
        "simsiam,simclr",
        "--ratios",
        "1,10,100",
        "--seeds",
        "0,1",
        "--out",
        tmp_path,
        "--dry-run",
        "--json",
    )
    assert res.code == 0, res.err
    runs = json.loads(res.out)["runs"]
    assert len(runs) == 12 and not list(tmp_path.iterdir())
    r100 = next(r for r in runs if r["ratio"] == 100 and r["method"] == "simsiam")
    counts = r100["class_counts"]
    assert counts == sorted(counts, reverse=True) and counts[-1] == max(1, counts[0] // 100)
    assert r100["n_train"] == sum(r100["class_counts"]) and r100["status"] == "todo"


def test_dry_run_prints_one_line_per_run(cli, tmp_path: Path) -> None:
    """In a pipe (80 columns to rich) each planned run stays on one line (issue 30)."""
    res = cli("run", "--method", "simclr", "--variants", "base,sam,matched", "--ratios", "1,100",
              "--out", tmp_path, "--dry-run")  # fmt: skip
    assert res.code == 0, res.err
    lines = res.out.strip().splitlines()
    assert lines[0] == "6 planned runs (n_train: images in the subset)"
    assert lines[1].split()[:3] == ["method", "variant", "ratio"] and len(lines) == 2 + 6
    matched = [x for x in lines if "matched ×2 (sam)" in x]
    assert len(matched) == 2 and matched[1].endswith(" todo    131 78 47 28 16 10 6 3 2 1")


BAD_INPUTS = [
    (["--ratios", "0"], ">= 1"),
    (["--ratios", "-5"], ">= 1"),
    (["--ratios", "abc"], "not a number"),
    (["--ratios", "1,,10"], "empty element"),
    (["--ratios", "1,inf"], ">= 1"),
    (["--method", "nosuch"], "unknown method 'nosuch'; valid: "),
    (["--dataset", "mnistx"], "unknown dataset 'mnistx'; valid: cifar10"),
    (["--variants", "magic"], "unknown variant 'magic'; valid: base"),
    (["--backbone", "resnet19"], "unknown backbone 'resnet19'"),
    (["--stem", "weird"], "unknown stem 'weird'"),
    (["--seeds", "0,x"], "not an integer"),
    (["--seeds", "1.5"], "not an integer"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "two"], "--epochs"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--dataset", "imagefolder", "--data-root", "/nonexistent/imgs"], "does not exist"),
    (["--dataset", "imagefolder"], "needs --data-root"),
    (["--n-max", "100000"], "n_max"),
    (["--seeds", "4294967296"], "out of range"),
    (["--lr", "inf"], "finite number > 0"),
    (["--lr", "0"], "finite number > 0"),
    (["--devices", "2", "--batch-size", "63"], "must divide among 2 training processes"),
    (["--strategy", "warp"], "strategy 'warp'"),
    (["--sync-batchnorm", "--accelerator", "cpu"], "--sync-batchnorm needs GPUs"),
    (["--launcher", "mars"], "--launcher must be one of local, slurm"),
    (["--jobs", "0"], "--jobs"),
    (["--accelerator", "tpu"], "Lightning rejects accelerator 'tpu'"),
    (["--precision", "fp7"], "precision 'fp7'"),
    (["--profile", "zipf"], "unknown profile 'zipf'"),
    (["--total", "3"], "one image per class"),
    (["--method-arg", "proj_dim=-5"], "method 'simsiam': option proj_dim = -5 must be > 0"),
    (["--method-arg", "min_scale=1.5"], "option min_scale = 1.5 must be in (0, 1]"),
    (["--variant-arg", "sam_rho=0.1"], "'sam_rho' (--variant-arg or [variant_args]) belongs"),
    (["--variants", "sam", "--variant-arg", "sam_rho=-1"], "sam_rho = -1.0 must be a finite"),
    (["--variants", "sam", "--variant-arg", "sam_rho"], "must look like key=value"),
    (["--sam-rho", "0.1"], "option of variant rwsam / rwsam-oracle / sam: pass --variant-arg sam_"),
    (["--temperature", "0.1"], "is an option of method "),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
def test_bad_input_is_one_line(cli, tmp_path: Path, args: list[str], message: str) -> None:
    argv = ["run", "--method", "simsiam", "--out", tmp_path, "--dry-run", *args]
    if "--method" in args:
        argv = ["run", "--out", tmp_path, "--dry-run", *args]
    res = cli(*argv)
    assert res.code == 2
    assert res.err.startswith("error: ") and res.err.count("\n") == 1, res.err
    assert message in res.err
    assert "Traceback" not in res.err + res.out


def test_a_message_with_brackets_is_printed_whole(cli, tmp_path: Path) -> None:
    res = cli("run", "--method", "random", "--method-arg", "x=1", "--out", tmp_path, "--dry-run")
    assert res.code == 2 and res.err == (
        "error: method option 'x' (--method-arg or [method_args]): no method of this grid has "
        "it (random: -)\n"
    )


def test_bad_input_through_the_console_script(tmp_path: Path) -> None:
    """No traceback and exit code 2 in a real process too."""
    exe = Path(sys.executable).with_name("imbssl-bench")
    res = subprocess.run(
        [str(exe), "run", "--method", "simsiam", "--ratios", "1,,10"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: --ratios '1,,10' has an empty element")
    assert "Traceback" not in res.stderr


def _write_corrupt(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_leaderboard_errors(cli, tmp_path: Path) -> None:
    res = cli("leaderboard", "--results", tmp_path / "missing", "--out", tmp_path / "lb.md")
    assert res.code == 2 and "does not exist" in res.err
    (tmp_path / "empty").mkdir()
    for check in ([], ["--check"]):
        res = cli("leaderboard", "--results", tmp_path / "empty", "--out", tmp_path, *check)
        assert res.code == 2 and "is a folder" in res.err
    _write_corrupt(tmp_path / "res", "x.json", '{"foo": 1}')
    res = cli("leaderboard", "--results", tmp_path / "res", "--out", tmp_path / "lb.md")
    assert res.code == 2 and "x.json" in res.err and res.err.count("\n") == 1
    _write_corrupt(tmp_path / "res", "x.json", "{broken")
    res = cli("leaderboard", "--results", tmp_path / "res", "--out", tmp_path / "lb.md")
    assert res.code == 2 and "corrupt record" in res.err and "x.json" in res.err


def test_run_then_leaderboard_and_check(cli, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = ["run", "--method", "simsiam,random", "--ratios", "1,10", "--out", runs, *TINY_FLAGS]
    res = cli(*args, "--json")
    assert res.code == 0, res.err
    results = json.loads(res.out)["results"]
    assert len(results) == 4 and all(r["status"] == "ok" for r in results)
    assert len(list(runs.glob("*.json"))) == 4

    rerun = cli(*args, "--json")
    assert "4 already have a record, 0 to run" in rerun.err
    assert "another version" not in rerun.err
    assert json.loads(rerun.out)["results"] == results
    first = read_record(next(runs.glob("*.json")))
    assert first["env"]["code"] == code_version() and first["env"]["plugins"] == {}

    board = tmp_path / "LEADERBOARD.md"
    assert cli("leaderboard", "--results", runs, "--out", board).code == 0
    text = board.read_text()
    assert "| simsiam | base |" in text and "| random | base |" in text and "ρ=10" in text
    ok = cli("leaderboard", "--results", runs, "--out", board, "--check")
    assert ok.code == 0, ok.out

    simsiam_r1 = next(r for r in results if "simsiam-base-r1-" in r["run_id"])
    number = f"{100 * simsiam_r1['linear_top1']:.1f}"
    assert number in text
    board.write_text(text.replace(number, "99.9" if number != "99.9" else "11.1", 1))
    stale = cli("leaderboard", "--results", runs, "--out", board, "--check")
    assert stale.code == 1 and "stale" in stale.err and number in stale.out

    paths = sorted(runs.glob("*.json"))  # records written by other versions are counted
    for path, code in zip(paths, [{"version": "0.0.1", "commit": None}, None], strict=False):
        write_record(path, {**read_record(path), "env": {"code": code}})
    old = cli(*args)
    assert "2 of the 4 skipped records were written by another version than" in old.err
    assert "(1 by 0.0.1, 1 by unknown)" in old.err


def test_unwritable_out_fails_before_training(cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    res = cli("run", "--method", "simsiam", "--out", blocker / "runs", *TINY_FLAGS)
    assert res.code == 2 and "cannot write" in res.err and res.err.count("\n") == 1
    res = cli("run", "--method", "simsiam", "--out", blocker, *TINY_FLAGS)
    assert res.code == 2 and "is a file" in res.err


LISTING = (
    "import sys; from imbssl_bench.cli import main; main({argv!r}); print('torch' in sys.modules)"
)


@pytest.mark.parametrize("kind", ["methods", "variants"])
def test_a_listing_imports_torch_only_when_the_code_changed(kind: str, tmp_path: Path) -> None:
    """The first listing imports the plugins (and torch) and caches its rows under a hash of
    their code; the next one answers from the cache (issue 30)."""
    env = {**os.environ, "IMBSSL_BENCH_CACHE": str(tmp_path)}
    code = LISTING.format(argv=[kind, "--json"])
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    (first, torch_first), (again, torch_again) = (r.stdout.rsplit("\n", 2)[:2] for r in runs)
    assert (torch_first, torch_again) == ("True", "False"), runs[1].stderr
    rows = json.loads(first)
    assert rows == json.loads(again) and len(rows) >= 6 and all(r["error"] is None for r in rows)


def test_the_listing_cache_key_follows_a_plugins_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    import imbssl_bench.registry as registry
    from imbssl_bench.cli.plugin_cache import _code_key

    package = tmp_path / "listed_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = [EntryPoint("x", "listed_plugin:X", registry.GROUPS["variant"])]
    real = registry.entry_points
    monkeypatch.setattr(
        registry, "entry_points", lambda group: fake if "variants" in group else real(group=group)
    )
    before = _code_key("variant")
    (package / "__init__.py").write_text("X = 2\n")
    assert before is not None and _code_key("variant") not in (None, before)
