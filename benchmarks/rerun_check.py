"""Issue 29's rerun check: the same run, uninterrupted, killed (SIGKILL) after epoch K and
resumed by the same command, with other loader workers, and with the other memory format.
Prints each run's id and numbers; a row with the uninterrupted run's id must have its numbers.

    python benchmarks/rerun_check.py [--draws keyed|stream] [--kill-after 3] [--out DIR]

Each run is a fresh `imbssl-bench run` process on digits (SimCLR, ratio 10, seed 0, 6 epochs,
PIL views, fp32), one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = ["--dataset", "digits", "--method", "simclr", "--ratios", "10", "--seeds", "0",
        "--epochs", "6", "--augment", "pil", "--precision", "32-true", "--logger", "none",
        "--monitor-every", "0"]  # fmt: skip
NUMBERS = ("linear_top1", "knn_top1", "fewshot_top1")


def command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "imbssl_bench.cli", "run", *BASE, *extra, "--out", str(out)]


def run(out: Path, *extra: str) -> None:
    subprocess.run(command(out, *extra), check=True, capture_output=True)


def record(out: Path) -> dict:
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


def killed_then_resumed(out: Path, after: int, extra: list[str]) -> dict:
    """Run, SIGKILL the process once a stage checkpoint has `after` epochs, run again."""
    from imbssl_bench.training.checkpoints import checkpoint_epoch

    proc = subprocess.Popen(command(out, *extra), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    while proc.poll() is None:
        found = list(out.glob("checkpoints/*/*/last.ckpt"))
        if found and checkpoint_epoch(found[0]) == after:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)  # a tool, not a test: polling the checkpoint is what a user would do
    proc.wait()
    assert not list(out.glob("*.json")), "the run finished before it was killed"
    run(out, *extra)
    return record(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", default="keyed")
    parser.add_argument("--kill-after", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="rerun-check-"))
    extra = ["--draws", args.draws]
    runs = {}
    run(root / "whole", *extra)
    runs["uninterrupted"] = record(root / "whole")
    runs[f"killed after epoch {args.kill_after}, resumed"] = killed_then_resumed(
        root / "resumed", args.kill_after, extra
    )
    if args.draws == "keyed":  # stream draws take no workers
        run(root / "w2", *extra, "--num-workers", "2")
        runs["--num-workers 2"] = record(root / "w2")
    run(root / "nhwc", *extra, "--no-channels-last")
    runs["--no-channels-last"] = record(root / "nhwc")
    print(f"| run (--draws {args.draws}) | run id | linear | kNN | few-shot | final loss |")
    print("|---|---|---|---|---|---|")
    for name, r in runs.items():
        m = r["metrics"]
        cells = " | ".join(f"{m[k]:.4f}" for k in NUMBERS)
        print(f"| {name} | {r['run_id']} | {cells} | {r['train']['final_loss']:.4f} |")


if __name__ == "__main__":
    main()
