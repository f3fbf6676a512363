"""Installing an example plugin package of examples/ the way a user would (pip, offline, into
a folder), and putting it on the path of this test process for a while."""

from __future__ import annotations

import contextlib
import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from imbssl_bench import methods, variants
from imbssl_bench.methods import backbones


def refresh_plugins() -> None:
    """Forget what plugin discovery found (after the path changed)."""
    importlib.invalidate_caches()
    methods.discover.cache_clear()
    variants.discover.cache_clear()
    backbones.load_backbone_plugins.cache_clear()


def pip_install(example: Path, tmp_path: Path) -> Path:
    """`example` built and installed with pip into a folder (returned); a copy is built,
    since the build writes egg-info beside the code."""
    source = tmp_path / example.name
    shutil.copytree(example, source)
    site = tmp_path / f"site-{example.name}"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    built = subprocess.run(
        [*pip, "--no-build-isolation", "--target", str(site), str(source)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    return site


@contextlib.contextmanager
def on_path(site: Path, package: str) -> Iterator[None]:
    """Inside: `site` on sys.path and plugin discovery refreshed; after: `package` unloaded
    and discovery refreshed again."""
    sys.path.insert(0, str(site))
    refresh_plugins()
    try:
        yield
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]
        refresh_plugins()
