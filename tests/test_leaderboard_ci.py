"""The hosted leaderboard: `leaderboard --validate`, the workflow's script in a temporary git
repository, and the leaderboard running without torch (issue 19)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from imbssl_bench.running.records import read_record, record_digest, write_record

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "leaderboard" / "results"
SCRIPT = ROOT / "scripts" / "leaderboard_ci.py"
HEAVY = ("torch", "torchvision", "lightly", "timm", "pytorch_lightning", "lightning", "faiss",
         "kornia", "sklearn", "scipy")  # fmt: skip


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("leaderboard_ci", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digits_records(folder: Path) -> list[Path]:
    """The committed digits records, copied to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, folder)) for p in sorted(RESULTS.glob("digits-*.json"))]


def edit(path: Path, change, *, redigest: bool) -> None:
    """Change a record in place: as the harness would write it (`redigest`), or by hand."""
    record = json.loads(path.read_text())
    change(record)
    if redigest:
        write_record(path, record)
    else:
        path.write_text(json.dumps(record, indent=2))


def test_committed_records_are_valid(cli) -> None:
    res = cli("leaderboard", "--results", RESULTS, "--validate")
    assert res.code == 0, res.err
    assert "are valid" in res.err


def test_written_records_carry_their_digest(tmp_path: Path) -> None:
    path = digits_records(tmp_path)[0]
    record = read_record(path)
    assert record["digest"] == record_digest(record)
    edit(path, lambda r: r["metrics"].update(knn_top1=0.5), redigest=True)
    assert read_record(path)["digest"] == record_digest(read_record(path)) != record["digest"]


def _set_method(r: dict) -> None:
    r["config"]["method"] = r["method"] = "mystery"


def _move_an_image(r: dict) -> None:
    """Same total, other per-class counts: not what the config's profile gives."""
    r["class_counts"][0] -= 1
    r["class_counts"][-1] += 1


@pytest.mark.parametrize(
    ("change", "redigest", "expected"),
    [
        (lambda r: r["metrics"].update(linear_top1=0.99), False, "does not match its digest"),
        (lambda r: r.pop("digest"), False, "has no digest"),
        (lambda r: r["metrics"]["per_class_acc"].__setitem__(0, 97.0), True, "outside [0, 1]"),
        (lambda r: r.update(seed=5), True, "says seed 5 but its config says 0"),
        (lambda r: r["config"].update(seed=5), True, "run id does not match its config"),
        (lambda r: r["class_counts"].__setitem__(0, 1), True, "not n_train"),
        (_set_method, True, "method 'mystery' is not built in"),
        (_move_an_image, True, "but its config gives"),
    ],
)
def test_validate_names_the_file_of_each_problem(
    cli, tmp_path: Path, change, redigest: bool, expected: str
) -> None:
    paths = digits_records(tmp_path / "res")
    target = next(p for p in paths if "-s0-" in p.name)
    edit(target, change, redigest=redigest)
    res = cli("leaderboard", "--results", tmp_path / "res", "--validate")
    assert res.code == 1
    lines = [line for line in res.err.splitlines() if line.startswith("invalid:")]
    assert any(expected in line and target.name in line for line in lines), res.err
    assert all(target.name in line for line in lines)  # the other records are fine


def test_validate_finds_a_copy_and_a_misnamed_file(cli, tmp_path: Path) -> None:
    paths = digits_records(tmp_path / "res")
    shutil.copy(paths[0], tmp_path / "res" / "sub-copy.json")
    res = cli("leaderboard", "--results", tmp_path / "res", "--validate")
    assert res.code == 1
    assert f"rename it {paths[0].stem}.json" in res.err
    assert f"is also recorded in {paths[0]}" in res.err


def test_class_counts_of_a_split_file_or_unresolved_n_max_are_not_rederived() -> None:
    from imbssl_bench.reporting.validate import count_problems

    record = read_record(sorted(RESULTS.glob("digits-*.json"))[0])
    assert count_problems(record) == []
    _move_an_image(record)
    assert "but its config gives" in count_problems(record)[0]
    split = {**record["config"]["data"], "split_hash": "0123456789ab"}
    assert count_problems({**record, "config": {**record["config"], "data": split}}) == []
    unresolved = {**record["config"]["imbalance"], "n_max": None}
    assert count_problems({**record, "config": {**record["config"], "imbalance": unresolved}}) == []


def test_a_matched_record_names_runs_of_its_folder(cli, tmp_path: Path) -> None:
    folder = tmp_path / "res"
    folder.mkdir()
    for path in RESULTS.glob("imagefolder-simclr-*.json"):
        shutil.copy(path, folder)
    assert cli("leaderboard", "--results", folder, "--validate").code == 0
    (sam,) = folder.glob("imagefolder-simclr-sam-r1-s0-*.json")
    (control,) = [  # the x2 control of sam and rwsam at this point
        p
        for p in folder.glob("imagefolder-simclr-matched-r1-s0-*.json")
        if sam.stem in json.loads(p.read_text())["diagnostics"]["matched"]["to"]
    ]
    sam.unlink()
    res = cli("leaderboard", "--results", folder, "--validate")
    assert res.code == 1
    (line,) = [x for x in res.err.splitlines() if x.startswith("invalid:")]
    assert control.name in line and sam.stem in line.split(".json", 1)[1]


def test_plugin_records_name_their_version(cli, tmp_path: Path) -> None:
    path = digits_records(tmp_path / "res")[0]

    def plugin(r: dict) -> None:
        _set_method(r)
        r["config"]["plugins"] = {"method": {"name": "mystery", "dist": "x", "version": "1.0"}}
        from imbssl_bench.config import RunConfig

        cfg = RunConfig.from_dict(r["config"])
        r["run_id"], r["config_hash"] = cfg.run_id(), cfg.config_hash()

    edit(path, plugin, redigest=True)
    new = path.with_name(read_record(path)["run_id"] + ".json")
    path.rename(new)
    assert cli("leaderboard", "--results", tmp_path / "res", "--validate").code == 0
    edit(new, lambda r: r["config"]["plugins"]["method"].update(version=None), redigest=True)
    res = cli("leaderboard", "--results", tmp_path / "res", "--validate")
    assert res.code == 1 and "plugin method has no version" in res.err


BLOCKER = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ImportError("the leaderboard must not import " + name)
sys.meta_path.insert(0, Block())
from imbssl_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_leaderboard_needs_no_torch(tmp_path: Path) -> None:
    """What the leaderboard workflow installs (the package and LEADERBOARD_DEPS) is enough:
    validate, check and regenerate with torch and every training library unimportable."""
    board = ROOT / "leaderboard" / "README.md"
    shutil.copy(board, tmp_path / "README.md")
    for args in (
        ["--validate"],
        ["--check", "--out", str(board)],
        ["--out", str(tmp_path / "README.md")],
    ):
        cmd = [sys.executable, "-c", BLOCKER, "leaderboard", "--results", str(RESULTS), *args]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, (args, res.stderr)
    assert (tmp_path / "README.md").read_text() == board.read_text()
    assert list((tmp_path / "plots").glob("*.png"))


def test_leaderboard_deps_are_the_packages_own() -> None:
    """The workflow's few dependencies carry the same bounds as pyproject.toml's."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(load_script().LEADERBOARD_DEPS) <= set(declared)


def git(repo: Path, *args: str) -> str:
    ident = ["-c", "user.name=Contributor", "-c", "user.email=c@example.org"]
    res = subprocess.run(["git", *ident, *args], cwd=repo, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def script(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=_env())


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}


def test_the_workflow_script_in_a_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    paths = digits_records(repo / "leaderboard" / "results")
    held = paths[-1]
    held_copy = shutil.copy(held, tmp_path)
    held.unlink()
    git(repo, "init", "-q")
    assert script(repo, "publish").returncode == 0  # the first leaderboard
    git(repo, "add", "leaderboard/results")
    git(repo, "commit", "-q", "-m", "records")
    head = git(repo, "rev-parse", "HEAD")

    shutil.copy(held_copy, held)  # a contributor adds a record, alone
    git(repo, "add", "leaderboard/results")
    git(repo, "commit", "-q", "-m", "add a record")
    review = script(repo, "review")
    assert review.returncode == 0, review.stderr
    assert "1 table(s) new or changed" in review.stdout and "## digits" in review.stdout
    git(repo, "checkout", "-q", "--", "leaderboard")  # review changes no commit
    git(repo, "clean", "-qfd", "leaderboard")

    published = script(repo, "publish")
    assert published.returncode == 0, published.stderr
    log = git(repo, "log", "-1", "--format=%an|%s", "--name-only")
    assert log.startswith("github-actions[bot]|leaderboard: regenerated from the records [skip ci]")
    assert "leaderboard/README.md" in log and "results" not in log
    assert git(repo, "rev-parse", "HEAD~2") == head
    assert git(repo, "status", "--porcelain") == ""
    check = [sys.executable, "-m", "imbssl_bench.cli", "leaderboard", "--check"]
    assert subprocess.run(check, cwd=repo, capture_output=True).returncode == 0

    again = script(repo, "publish")  # nothing changed: no commit
    assert again.returncode == 0 and "nothing to commit" in again.stderr
    assert git(repo, "rev-parse", "HEAD~2") == head

    edit(held, lambda r: r["metrics"].update(knn_top1=0.99), redigest=False)  # tampered
    for step in ("review", "publish"):
        res = script(repo, step)
        assert res.returncode == 1
        assert held.name in res.stderr and "does not match its digest" in res.stderr
    assert git(repo, "rev-parse", "HEAD~2") == head


def test_summary_lists_changed_and_removed_tables() -> None:
    summary = load_script().summary
    before = "# t\n\n## A\n\n| 1 |\n\n## B\n\n| 2 |\n"
    assert "change no table" in summary(before, before)
    text = summary(before, "# t\n\n## A\n\n| 3 |\n\n## C\n\n| 4 |\n")
    assert "2 table(s) new or changed, 1 removed" in text
    assert "| 3 |" in text and "| 4 |" in text and "Removed: B" in text and "| 2 |" not in text


def test_workflows_are_yaml_and_call_the_script() -> None:
    yaml = pytest.importorskip("yaml")
    flows = ROOT / ".github" / "workflows"
    board = yaml.safe_load((flows / "leaderboard.yml").read_text())
    runs = [step.get("run", "") for job in board["jobs"].values() for step in job["steps"]]
    for step in ("install", "review", "publish --push"):
        assert f"python scripts/leaderboard_ci.py {step}" in runs
    assert board["jobs"]["publish"]["permissions"] == {"contents": "write"}
    triggers = board[True]  # YAML 1.1 reads the key `on` as true
    assert "leaderboard/**" in triggers["pull_request"]["paths"]
    ci = yaml.safe_load((flows / "ci.yml").read_text())
    assert ci[True]["pull_request"]["paths-ignore"] == ["leaderboard/**"]
