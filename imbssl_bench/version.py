"""The package version, read once from its one source (pyproject.toml's `version`)."""

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _version() -> str:
    """pyproject.toml's `version`, read from the checkout this package runs from (an editable
    install's metadata keeps the version it was installed at), else from the installed
    metadata."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text())["project"]
        if project["name"] == "imbssl-bench":
            return str(project["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # an installed package: no pyproject.toml beside it
    try:
        return version("imbssl-bench")
    except PackageNotFoundError:  # a checkout on sys.path that was never installed
        return "unknown"


__version__ = _version()
