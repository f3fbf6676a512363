"""The CPU side of benchmarks/gpu_check.py (issue 18): arguments, the plan, the JSON it writes
without CUDA, the test part through pytest, and how the parts' outputs are read."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
assert spec and spec.loader
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # fmt: skip


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(SystemExit) as exc:
        gpu_check.parse_args(["--parts", "tests,bogus"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--epochs", "0"])
    assert gpu_check.parse_args(["--parts", "simclr, tests"]).parts == ["simclr", "tests"]


def test_the_plan_and_the_json_without_cuda(tmp_path: Path) -> None:
    done = script("--dry-run", "--out", str(tmp_path / "plan.json"), "--epochs", "3")
    assert done.returncode == 0, done.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert list(plan["plan"]) == ["tests", "throughput", "simclr"]
    assert (
        "--batch-size 512 " in plan["plan"]["throughput"]
        and "--gpu-util" in plan["plan"]["throughput"]
    )
    assert "--epochs 3 " in plan["plan"]["simclr"] and "--monitor-every 1" in plan["plan"]["simclr"]
    assert plan["env"]["cores"] >= 1 and plan["settings"]["epochs"] == 3
    if plan["env"]["cuda"]:
        pytest.skip("this machine has CUDA: the no-GPU answer is not reachable here")
    done = script("--out", str(tmp_path / "check.json"))
    assert done.returncode == 1 and "no CUDA device" in done.stderr
    report = json.loads((tmp_path / "check.json").read_text())
    assert (
        report["env"]["cuda"] is False
        and "parts" not in report
        and "GPU machine" in report["error"]
    )


def test_the_tests_part_runs_pytest_and_counts_from_its_junit_xml(tmp_path: Path) -> None:
    a = gpu_check.parse_args(["--parts", "tests"])
    parts = gpu_check.run_all(a, tmp_path)
    t = parts["tests"]
    assert t["exit_code"] == 0, t.get("output_tail")
    assert t["passed"] + t["skipped"] == 4 and t["failures"] == 0 and t["failed"] == []
    assert gpu_check.passed(parts, cuda=t["passed"] == 4)
    if t["skipped"]:  # on a CUDA machine, skipped GPU tests fail the check
        assert not gpu_check.passed(parts, cuda=True)


def test_failures_are_named_and_a_failed_part_fails_the_check(tmp_path: Path) -> None:
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
        '<testcase name="a"/><testcase name="b"><failure message="assert 1 == 2&#10;more"/>'
        '</testcase><testcase name="c"><skipped/></testcase></testsuite></testsuites>'
    )
    counts = gpu_check.junit_counts(xml)
    assert counts == {"passed": 1, "failures": 1, "errors": 0, "skipped": 1,
                      "failed": ["b: assert 1 == 2"]}  # fmt: skip
    assert not gpu_check.passed({"tests": {"exit_code": 1, **counts}})
    assert not gpu_check.passed({"simclr": {"exit_code": None, "error": "no data"}})
    assert not gpu_check.passed({"throughput": {"exit_code": 0, "read_error": "ValueError: x"}})


def test_the_simclr_part_reads_its_data_and_its_record(tmp_path: Path) -> None:
    archive = tmp_path / "subset.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("train/cat/0.jpg", "train/dog/0.jpg", "test/cat/0.jpg"):
            z.writestr(name, b"jpeg")
        z.writestr("SUBSET.txt", "two classes\n")
    data = gpu_check.unpack(str(archive), tmp_path / "data")
    assert data["images"] == {"train": 2, "test": 1} and data["note"] == "two classes"
    with pytest.raises(FileNotFoundError, match=r"gpu_check\.sh prepare"):
        gpu_check.unpack(str(tmp_path / "missing.zip"), tmp_path / "other")
    run = tmp_path / "run"
    run.mkdir()
    record = {"status": "ok", "run_id": "x", "n_train": 100, "timing": {"pretrain_s": 2.0,
              "eval_s": 1.0}, "train": {"steps": 10, "batch_size": 20, "epochs": 2},
              "metrics": {"linear_top1": 0.5, "knn_top1": 0.4, "knn_curve": [[1, 0.3], [2, 0.4]],
                          "knn_top1_best": 0.4}}  # fmt: skip
    (run / "x.json").write_text(json.dumps(record))
    out = gpu_check.simclr_result(run)
    assert out["pretrain_images_per_s"] == 100.0 and out["knn_curve"] == [[1, 0.3], [2, 0.4]]
