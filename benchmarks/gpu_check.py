"""The GPU check (issue 18), run by benchmarks/gpu_check.sh: one JSON with three parts.

- tests: the tests marked ``gpu`` (tests/test_gpu.py: batched views on CUDA against the CPU's
  statistics, bf16, channels-last, compile, a 1-GPU run end to end, DDP with NCCL on one GPU);
- throughput: the cifar10-lt-standard setup (ResNet-18 CIFAR stem, batch 512, bf16, batched
  views) against a plain Lightly loop with DataLoader workers = the machine's cores
  (benchmarks/throughput_vs_lightly.py --gpu-util: images/s, GPU utilisation, what bounds each);
- simclr: a short SimCLR (``--epochs``, 10) on the CIFAR-10 (JPEG) images brought along
  (``--data``: a zip or folder in ImageFolder layout, e.g. the subset `gpu_check.sh prepare`
  makes), with its online kNN curve.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--data .gpu/cifar10-subset.zip]
        [--parts tests,throughput,simclr] [--epochs 10] [--batch-size 512] [--steps 30]
        [--repeats 3] [--workers N] [--part-timeout-s 300] [--budget-s 480] [--dry-run]

`--dry-run` writes the plan (each part's command) and runs nothing. Without CUDA it writes a
JSON saying so and exits 1. The JSON is rewritten after every part, so a kill keeps the parts
that finished; all parts share ``--budget-s``. A part that fails is recorded with its exit code
and the end of its output; the others still run. Exit 0 only when every part ran and every
test passed (none skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("tests", "throughput", "simclr")
DEFAULT_DATA = ".gpu/cifar10-subset.zip"
TAIL = 3000  # characters of a failed part's output kept in the JSON


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    p.add_argument("--data", default=DEFAULT_DATA, help="zip or folder, ImageFolder layout")
    p.add_argument("--parts", default=",".join(PARTS), help="comma list of " + ", ".join(PARTS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--steps", type=int, default=30, help="timed steps per throughput repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--part-timeout-s", type=int, default=300)
    p.add_argument("--budget-s", type=int, default=480, help="all parts together")
    p.add_argument("--dry-run", action="store_true", help="write the plan, run nothing")
    a = p.parse_args(argv)
    a.parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    unknown = [x for x in a.parts if x not in PARTS]
    if unknown or not a.parts:
        p.error(f"--parts takes {', '.join(PARTS)}, not '{','.join(unknown) or a.parts}'")
    for name in ("epochs", "batch_size", "steps", "repeats", "workers", "part_timeout_s",
                 "budget_s"):  # fmt: skip
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return a


def commands(a: argparse.Namespace, work: Path) -> dict[str, list[str]]:
    """Each part's command; `work` holds its files (junit XML, the run's --out)."""
    py = sys.executable
    throughput = [py, "benchmarks/throughput_vs_lightly.py", "--backbone", "resnet18",
                  "--stem", "cifar", "--batch-size", str(a.batch_size), "--steps", str(a.steps),
                  "--warmup", "5", "--repeats", str(a.repeats), "--precision", "bf16-mixed",
                  "--lightly-precision", "bf16-mixed", "--augment", "batched",
                  "--lightly-workers", str(a.workers), "--gpu-util"]  # fmt: skip
    simclr = [py, "-m", "imbssl_bench.cli", "run", "--method", "simclr", "--dataset",
              "imagefolder", "--data-root", str(work / "data"), "--dataset-label",
              "CIFAR-10 (JPEG)", "--ratios", "1", "--backbone", "resnet18", "--stem", "cifar",
              "--epochs", str(a.epochs), "--batch-size", str(a.batch_size), "--precision",
              "bf16-mixed", "--augment", "batched", "--accelerator", "gpu", "--devices", "1",
              "--num-workers", str(min(a.workers, 8)), "--monitor-every", "1",
              "--out", str(work / "run")]  # fmt: skip
    tests = [py, "-m", "pytest", "-m", "gpu", "tests/test_gpu.py", "-q", "-p", "no:cacheprovider",
             f"--junitxml={work / 'gpu-tests.xml'}"]  # fmt: skip
    every = {"tests": tests, "throughput": throughput, "simclr": simclr}
    return {part: every[part] for part in a.parts}


def junit_counts(path: Path) -> dict[str, Any]:
    """passed / failed / errors / skipped of a pytest junit XML, and each failure's first line."""
    suite = ET.parse(path).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    assert suite is not None
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = []
    for case in suite.iter("testcase"):
        for bad in (*case.findall("failure"), *case.findall("error")):
            first = (bad.get("message") or "").splitlines()[:1]
            failed.append(f"{case.get('name')}: {first[0] if first else bad.tag}")
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {"passed": passed, **{k: v for k, v in counts.items() if k != "tests"}, "failed": failed}


def environment() -> dict[str, Any]:
    """The machine: Python, torch, CUDA, the GPU, cores, the packages the harness needs."""
    import importlib.util

    env: dict[str, Any] = {"python": platform.python_version(), "cores": os.cpu_count()}
    try:
        import torch
    except ImportError:
        return {**env, "torch": None, "cuda": False}
    env |= {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if env["cuda"]:
        env |= {"gpu": torch.cuda.get_device_name(0), "cuda_version": torch.version.cuda}
        env["bf16"] = torch.cuda.is_bf16_supported()
    packages = ("lightly", "kornia", "faiss", "timm", "pytorch_lightning", "imbssl_bench")
    env["packages"] = {n: importlib.util.find_spec(n) is not None for n in packages}
    return env


def unpack(data: str, into: Path) -> dict[str, Any]:
    """The images for the SimCLR part under `into` (a zip is extracted); what they are."""
    source = Path(data)
    if not source.exists():
        raise FileNotFoundError(f"--data {data} does not exist (gpu_check.sh prepare makes it)")
    if source.is_dir():
        into.symlink_to(source.resolve(), target_is_directory=True)
    else:
        with zipfile.ZipFile(source) as z:
            z.extractall(into)
    count = {split: sum(1 for _ in (into / split).rglob("*.jpg")) for split in ("train", "test")}
    readme = into / "SUBSET.txt"
    return {"source": str(source), "images": count,
            "note": readme.read_text().strip() if readme.is_file() else None}  # fmt: skip


def run_part(command: list[str], timeout_s: int) -> tuple[dict[str, Any], str]:
    """Run one part's command from the repository root: its exit code, wall time, output."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout_s, env=env)  # fmt: skip
        code, output = done.returncode, done.stdout + done.stderr
        stdout = done.stdout
    except subprocess.TimeoutExpired as exc:
        code, stdout = 124, ""
        output = f"timed out after {timeout_s} s\n" + str(exc.stdout or "") + str(exc.stderr or "")
    result = {"exit_code": code, "wall_s": round(time.perf_counter() - start, 1)}
    if code != 0:
        result["output_tail"] = output[-TAIL:]
    return result, stdout


def simclr_result(run_dir: Path) -> dict[str, Any]:
    """What the SimCLR record says: probes, the online kNN curve, speed."""
    (path,) = run_dir.glob("*.json")
    r = json.loads(path.read_text())
    if r["status"] != "ok":
        return {"status": r["status"], "error": r["error"]}
    m, t = r["metrics"], r["timing"]
    seen = r["train"]["steps"] * r["train"]["batch_size"]
    return {
        "status": "ok",
        "run_id": r["run_id"],
        "n_train": r["n_train"],
        "epochs": r["train"]["epochs"],
        "linear_top1": m["linear_top1"],
        "knn_top1": m["knn_top1"],
        "knn_curve": m.get("knn_curve"),
        "knn_top1_best": m.get("knn_top1_best"),
        "pretrain_s": t["pretrain_s"],
        "eval_s": t["eval_s"],
        "pretrain_images_per_s": round(seen / t["pretrain_s"], 1),
        "gpu_memory": r.get("memory"),
    }


def read_part(part: str, work: Path, stdout: str) -> dict[str, Any]:
    """What a finished part's files and output say."""
    if part == "tests":
        return junit_counts(work / "gpu-tests.xml")
    if part == "throughput":
        return json.loads(stdout)
    return simclr_result(work / "run")


def run_all(
    a: argparse.Namespace, work: Path, report: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Every requested part, in order, each within what is left of ``--budget-s``; a failed
    part is recorded and the next one runs; `report` gets the parts after each."""
    parts: dict[str, Any] = {}
    deadline = time.monotonic() + a.budget_s
    for part, command in commands(a, work).items():
        left = int(deadline - time.monotonic())
        if left < 10:
            parts[part] = {"exit_code": None, "error": f"not run: --budget-s {a.budget_s} spent"}
            continue
        try:
            data = unpack(a.data, work / "data") if part == "simclr" else None
        except (OSError, zipfile.BadZipFile) as exc:
            parts[part] = {"exit_code": None, "error": str(exc)}
            continue
        result, stdout = run_part(command, min(a.part_timeout_s, left))
        try:
            result |= read_part(part, work, stdout)
        except Exception as exc:  # whatever broke, the JSON says so
            result["read_error"] = f"{type(exc).__name__}: {exc}"
        parts[part] = {**result, **({"data": data} if data else {})}
        if report:
            report(parts)
    return parts


def passed(parts: dict[str, Any], cuda: bool = True) -> bool:
    """Every part ran and read, no test failed and (on CUDA) none was skipped."""
    ran = all(p.get("exit_code") == 0 and "read_error" not in p for p in parts.values())
    tests = parts.get("tests", {})
    return ran and not tests.get("failed") and not (cuda and tests.get("skipped"))


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    report: dict[str, Any] = {"check": "imbssl-bench gpu_check", "env": environment()}
    report["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}
    if a.dry_run:
        plan = commands(a, Path("<work>"))
        write_json(a.out, {**report, "plan": {k: " ".join(v) for k, v in plan.items()}})
        return 0
    if not report["env"]["cuda"]:
        write_json(a.out, {**report, "error": "no CUDA device: run this on a GPU machine"})
        print(f"error: no CUDA device; wrote {a.out}", file=sys.stderr)
        return 1
    start = time.perf_counter()

    def save(parts: dict[str, Any]) -> None:  # after every part: a kill keeps the finished
        write_json(
            a.out, {**report, "parts": parts, "wall_s": round(time.perf_counter() - start, 1)}
        )

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        report["parts"] = run_all(a, Path(tmp), save)
    report["wall_s"] = round(time.perf_counter() - start, 1)
    report["passed"] = passed(report["parts"])
    write_json(a.out, report)
    print(f"wrote {a.out} ({'passed' if report['passed'] else 'FAILED'})", file=sys.stderr)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
