"""examples/plugin-template is a real package: built and installed with pip (offline, into a
folder on sys.path), found through its entry points, run in a one-epoch grid, then removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from imbssl_bench import methods, variants
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from tests.conftest import tiny_spec
from tests.examples import on_path, pip_install


def test_the_template_installs_runs_and_uninstalls(tmp_path: Path, repo_root: Path) -> None:
    site = pip_install(repo_root / "examples" / "plugin-template", tmp_path)
    rows, found = (_listed(kind, site) for kind in ("methods", "variants"))
    plugin = rows["align-uniform"]
    assert (plugin["origin"], plugin["version"], plugin["error"]) == (
        "imbssl-bench-plugin-template",
        "0.1.0",
        None,
    )
    assert plugin["per_example_loss"] is True and plugin["args"]["t"] == 2.0
    restarts = found["restarts"]
    assert (restarts["origin"], restarts["error"], restarts["args"]) == (
        "imbssl-bench-plugin-template",
        None,
        {"cycles": 2},
    )
    # (timm keeps `template_convnet` registered for the rest of the session)
    with on_path(site, "imbssl_template"):
        spec = tiny_spec(
            methods=("align-uniform",),
            variants=("base", "rwsam"),
            backbone="template_convnet",
            stem="auto",
            variant_args={"rwsam_warmup": 0},
        )
        records = run_grid(plan_grid(spec, tmp_path / "runs"))
        assert [r["status"] for r in records] == ["ok", "ok"], [r.get("error") for r in records]
        assert records[0]["config"]["model"] == {"backbone": "template_convnet", "stem": "timm"}
        assert records[0]["config"]["method_args"]["uniform_weight"] == 1.0
        _check_the_variant_runs_with_two_builtin_methods(tmp_path / "runs")
    assert "align-uniform" not in methods.method_names()
    assert "restarts" not in variants.variant_names()


def _listed(kind: str, site: Path) -> dict[str, dict]:
    """`imbssl-bench KIND --json` in a fresh interpreter that has `site` on its path."""
    listed = subprocess.run(
        [sys.executable, "-c", f"from imbssl_bench.cli import main; main(['{kind}', '--json'])"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])},
        check=True,
        capture_output=True,
        text=True,
    )
    return {row["name"]: row for row in json.loads(listed.stdout)}


def _check_the_variant_runs_with_two_builtin_methods(out: Path) -> None:
    """The template's `restarts` variant: its option, its compute, its plugin version."""
    spec = tiny_spec(
        methods=("simclr", "simsiam"), variants=("restarts",), variant_args={"cycles": 2}
    )
    records = run_grid(plan_grid(spec, out))
    assert [r["status"] for r in records] == ["ok", "ok"], [r.get("error") for r in records]
    for r in records:
        assert r["config"]["variant_args"] == {"cycles": 2}
        assert r["config"]["plugins"]["variant"]["dist"] == "imbssl-bench-plugin-template"
        assert r["train"]["epochs"] == 2 and len(r["diagnostics"]["restarts"]["final_loss"]) == 2
        assert r["compute"]["passes_vs_base"] == 2.0
