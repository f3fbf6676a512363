"""Shared fixtures: a tiny, fast grid setup and a CLI runner that goes through `main`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imbssl_bench.cli import main
from imbssl_bench.running.options import GridSpec

# A backbone small enough for CPU tests: timm's 0.4M-parameter test ResNet at 16 px.
TINY = dict(backbone="test_resnet", stem="cifar", image_size=16, epochs=1, batch_size=64)
TINY_FLAGS = [
    "--backbone",
    "test_resnet",
    "--stem",
    "cifar",
    "--image-size",
    "16",
    "--epochs",
    "1",
    "--batch-size",
    "64",
]


def wait_for_pauses(pause: Path, count: int, running: Callable[[], bool]) -> None:
    """Until `count` processes of the toy method wait for `pause` (mid-training, checkpoint
    written); fails when the grid stops `running` first, or after a generous deadline."""
    deadline = time.monotonic() + 300
    while len(list(pause.parent.glob(f"{pause.name}.*.waiting"))) < count:
        assert running(), "the grid ended before its runs paused"
        assert time.monotonic() < deadline, "the runs did not pause in 300 s"
        time.sleep(0.05)


def tiny_spec(**kw: object) -> GridSpec:
    return GridSpec(**{"methods": ("simsiam",), "ratios": (1.0,), **TINY, **kw})  # type: ignore[arg-type]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``imbssl-bench ARGS`` in-process, exactly as the console script does."""

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session", autouse=True)
def _hash_cache(tmp_path_factory: pytest.TempPathFactory):
    """Data-file hashes are cached in a temporary folder, not the user's cache directory."""
    from imbssl_bench.files import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("hash-cache"))
    yield
    if old is None:
        del os.environ[CACHE_ENV]
    else:
        os.environ[CACHE_ENV] = old


WATCHED_FLAGS = [
    "--method",
    "simsiam",
    "--ratios",
    "10",
    "--dataset",
    "digits",
    *TINY_FLAGS,
    "--epochs",
    "4",
]  # fmt: skip  (the default monitor: every epoch of 4)


@pytest.fixture(scope="session")
def watched_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One digits run with the default logger and online kNN, shared by the tests that only
    read it (its folder, with the record and ``logs/``, and its record)."""
    import json

    out = tmp_path_factory.mktemp("watched")
    assert main(["run", *WATCHED_FLAGS, "--out", str(out)]) == 0
    (path,) = out.glob("*.json")
    return out, json.loads(path.read_text())


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def register_method(
    monkeypatch: pytest.MonkeyPatch, name: str, target: str, kind: str = "methods"
) -> Iterator[str]:
    """Registers the object at `target` ("module:Name") under the entry-point group of `kind`
    (methods or variants), as pip would, for the fixture that yields from it."""
    import importlib
    from importlib.metadata import EntryPoint

    import imbssl_bench.registry as core

    registry = importlib.import_module(f"imbssl_bench.{kind}")
    real = core.entry_points
    found = [*real(group=registry.GROUP), EntryPoint(name, target, registry.GROUP)]
    monkeypatch.setattr(
        core, "entry_points", lambda group: found if group == registry.GROUP else real(group=group)
    )
    registry.discover.cache_clear()
    yield name
    registry.discover.cache_clear()


@pytest.fixture
def toy_plugin(monkeypatch: pytest.MonkeyPatch):
    """Registers `tests/toy_method.py` under the methods entry-point group, as pip would."""
    yield from register_method(monkeypatch, "toy", "tests.toy_method:Toy")


@pytest.fixture
def installed_toy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> Iterator[str]:
    """`tests/toy_method.py` installed as pip would, for this process and its subprocesses
    (workers, CLI runs): a distribution's metadata with the entry point, on the path."""
    import imbssl_bench.methods as registry

    site = tmp_path / "site"
    meta = site / "imbssl_bench_toy-0.0.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: imbssl-bench-toy\nVersion: 0.0\n")
    (meta / "entry_points.txt").write_text(f"[{registry.GROUP}]\ntoy = tests.toy_method:Toy\n")
    monkeypatch.syspath_prepend(str(site))
    path = [str(site), str(repo_root), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    registry.discover.cache_clear()
    yield "toy"
    registry.discover.cache_clear()
