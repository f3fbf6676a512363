"""What a record says about the software and hardware that produced it."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

PACKAGES = (
    "imbssl-bench",
    "torch",
    "torchvision",
    "lightly",
    "pytorch-lightning",
    "timm",
    "faiss-cpu",
    "scikit-learn",
    "numpy",
)


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=True
    ).stdout.strip()


CODE_PATHS = ("imbssl_bench", "pyproject.toml")


def git_commit() -> str | None:
    """The commit of the checkout this package runs from, ``-dirty`` when tracked code files
    (`CODE_PATHS`) changed; None when it is not a git checkout (an installed package) or git
    is missing."""
    root = Path(__file__).resolve().parent.parent
    try:
        if Path(_git(root, "rev-parse", "--show-toplevel")).resolve() != root:
            return None  # a package installed inside some other repository
        # code only: edited records or leaderboard files do not make the code dirty
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
        return _git(root, "rev-parse", "HEAD") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@cache
def code_version() -> dict[str, str | None]:
    """``env.code``: the package version and, when run from a checkout, its git commit."""
    from imbssl_bench.version import __version__

    return {"version": __version__, "commit": git_commit()}


def code_label() -> str:
    """``version@commit`` of this process's code (``version@unknown`` outside a checkout)."""
    code = code_version()
    return f"{code['version']}@{code['commit'] or 'unknown'}"


def collect_env(device: str, plugins: dict[str, Any] | None = None) -> dict[str, Any]:
    """The software and hardware of this process; `plugins` (`run_plugins`) are stored with
    the code version."""
    env: dict[str, Any] = {
        "code": code_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "device": device,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if plugins is not None:
        env["plugins"] = plugins
    if torch.cuda.is_available():
        env["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        env["cuda"] = torch.version.cuda
    return env


def reset_peak_memory() -> None:
    """Start a new peak: Linux's resident-set high-water mark (``/proc/self/clear_refs``) and
    CUDA's peak allocation. Silently a no-op where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict[str, float | None]:
    """Peak resident memory of this process since `reset_peak_memory` (MB), and peak CUDA
    allocation (MB, None without a GPU)."""
    rss = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        import resource

        rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    gpu = None
    if torch.cuda.is_available():
        gpu = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return {"peak_rss_mb": rss, "peak_cuda_mb": gpu}
