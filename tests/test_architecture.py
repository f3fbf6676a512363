"""The package's shape (issue 16): import-linter's contracts (pyproject.toml), no import cycle,
no function over 80 lines and no module over 400 lines in imbssl_bench/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "imbssl_bench"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400

# known offenders, each with the issue that will fix it (none today)
PENDING: set[str] = set()


def _check(offenders: set[str], kind: str, detail: dict[str, str] | None = None) -> None:
    """No offender of `kind` outside `PENDING`, and no `PENDING` entry of `kind` that is fixed."""
    pending = {p for p in PENDING if p.startswith(f"{kind} ")}
    new = [f"{o}{(detail or {}).get(o, '')}" for o in sorted(offenders - pending)]
    assert not new, "\n".join(new)
    fixed = sorted(pending - offenders)
    assert not fixed, f"fixed, so remove from PENDING: {fixed}"


def _sources() -> list[Path]:
    return sorted((ROOT / PACKAGE).rglob("*.py"))


def test_import_contracts() -> None:
    pytest.importorskip("importlinter", reason="import-linter is not installed (the dev extra)")
    lint = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports("
    lint += f"config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True, no_logo=True))"
    done = subprocess.run(
        [sys.executable, "-c", lint], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_import_cycles() -> None:
    """Every import (function-level and TYPE_CHECKING ones too) A -> B: no chain B -> ... -> A."""
    grimp = pytest.importorskip("grimp", reason="grimp (import-linter's graph) is not installed")
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    assert graph.direct_import_exists(  # a function-level import: the graph has them
        importer="imbssl_bench.training.trainer", imported="imbssl_bench.methods"
    )
    back = {}  # "cycle A -> B": the chain B -> ... -> A
    for a in graph.modules:
        for b in graph.find_modules_directly_imported_by(a):
            chain = graph.find_shortest_chain(importer=b, imported=a)
            if chain:
                back[f"cycle {a} -> {b}"] = f" (back: {' -> '.join(chain)})"
    _check(set(back), "cycle", back)


def test_short_modules() -> None:
    lines = {
        f"module {path.relative_to(ROOT).as_posix()}": len(path.read_text().splitlines())
        for path in _sources()
    }
    long = {name: f" ({n} lines)" for name, n in lines.items() if n > MAX_MODULE_LINES}
    _check(set(long), "module", long)


def test_short_functions() -> None:
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                n = node.end_lineno - start + 1
                if n > MAX_FUNCTION_LINES:
                    name = f"function {path.relative_to(ROOT).as_posix()}:{node.name}"
                    long[name] = f" ({n} lines)"
    _check(set(long), "function", long)


def test_no_source_file_is_ignored_by_git() -> None:
    """A new module that a .gitignore pattern hides works here and is missing from every clone."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    hidden = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", PACKAGE, "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [p for p in hidden if p.endswith((".py", ".toml"))], hidden
