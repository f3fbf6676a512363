"""How long the listing commands take to start and answer, and whether they import torch
(issue 30): each command in a fresh interpreter, `--runs` times, with an empty listing cache
(the first listing after an install or an edit) and with a filled one (every later listing).

    python benchmarks/cli_start.py --runs 5

Prints one line per command: the median wall time of the process, cold and warm, and whether
torch was imported. Run it alone (no other torch process on the machine)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = [
    ["grids"],
    ["presets"],
    ["leaderboard", "--check"],
    ["datasets"],
    ["methods"],
    ["variants"],
]
CHILD = (
    "import sys; from imbssl_bench.cli import main; code = main({argv!r}); "
    "print('torch' in sys.modules, file=sys.stderr); sys.exit(code)"
)


def one_run(argv: list[str], cache: str) -> tuple[float, bool]:
    """The wall time of one listing process, and whether it imported torch."""
    env = {**os.environ, "IMBSSL_BENCH_CACHE": cache}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(argv=argv)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, done.stderr.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"{'command':<22} {'cold s':>7} {'torch':>6} {'warm s':>7} {'torch':>6}")
    for argv in COMMANDS:
        cold, warm = [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(one_run(argv, cache))  # an empty cache: lists afresh, fills it
                warm.append(one_run(argv, cache))  # the same code: from the cache
        c, w = (statistics.median(t for t, _ in x) for x in (cold, warm))
        c_torch, w_torch = (any(t for _, t in x) for x in (cold, warm))
        print(f"{' '.join(argv):<22} {c:>7.2f} {c_torch!s:>6} {w:>7.2f} {w_torch!s:>6}")


if __name__ == "__main__":
    main()
