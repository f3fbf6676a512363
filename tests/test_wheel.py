"""The standard grids are part of the package: a wheel built offline holds every grid file, and
from that wheel installed into a folder `imbssl-bench grids` lists them and `run --config NAME`
plans the papers' remedies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

# run in a fresh interpreter from the installed wheel: each command's stdout, as JSON
SCRIPT = """
import contextlib, io, json, sys
import imbssl_bench
from imbssl_bench.cli import main
outs = []
for args in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        code = main(args)
    outs.append({"code": code, "out": buf.getvalue()})
print(json.dumps({"file": imbssl_bench.__file__, "outs": outs}))
"""


def test_the_wheel_ships_the_grids_and_runs_them_by_name(tmp_path: Path, repo_root: Path) -> None:
    source = tmp_path / "src"  # a copy: the build writes build/ and egg-info beside the code
    shutil.copytree(
        repo_root / "imbssl_bench",
        source / "imbssl_bench",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo_root / name, source / name)
    pip = [sys.executable, "-m", "pip", "--quiet"]
    offline = ["--no-deps", "--no-index"]
    built = subprocess.run(
        [*pip, "wheel", *offline, "--no-build-isolation", "-w", tmp_path / "dist", source],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    grids = sorted((repo_root / "imbssl_bench" / "grids").glob("*.toml"))
    assert {f"imbssl_bench/grids/{p.name}" for p in grids} <= set(zipfile.ZipFile(wheel).namelist())

    site = tmp_path / "site"
    subprocess.run([*pip, "install", *offline, "--target", site, wheel], check=True)
    plan = ["--dry-run", "--json", "--dataset", "digits", "--seeds", "0", "--out", tmp_path / "o"]
    commands = [
        ["grids", "--json"],
        ["run", "--config", "liu2022", "--ratios", "100", "--total", "100", *plan],
        ["run", "--config", "chang2022", "--ratios", "1", *plan],
    ]
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps([[str(a) for a in c] for c in commands])],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert Path(result["file"]).is_relative_to(site)  # the installed wheel, not this checkout
    listed, liu, chang = result["outs"]
    assert [o["code"] for o in result["outs"]] == [0, 0, 0], res.stderr
    assert [r["name"] for r in json.loads(listed["out"])] == sorted(p.stem for p in grids)
    liu_variants = [r["variant"] for r in json.loads(liu["out"])["runs"]]
    assert liu_variants == ["base", "sam", "rwsam", "matched"]
    assert [r["variant"] for r in json.loads(chang["out"])["runs"]] == [
        "base",
        "cluster-distill",
        "matched",
    ] * 2  # simclr, simsiam
