"""`imbssl-bench bench throughput`: the real training step, timed after a warm-up."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("augment", ["pil", "batched"])
def test_bench_throughput_prints_images_per_second(cli, augment: str) -> None:
    args = ["--backbone", "test_resnet", "--image-size", "16", "--batch-size", "16"]
    got = cli(
        "bench",
        "throughput",
        *args,
        "--steps",
        "3",
        "--warmup",
        "1",
        "--augment",
        augment,
        "--json",
    )
    assert got.code == 0, got.err
    result = json.loads(got.out)
    assert result["images_per_s"] > 0 and result["device"] == "cpu"
    assert result["settings"]["augment"] == augment and result["settings"]["stem"] == "cifar"


def test_bench_throughput_bad_method_is_a_one_line_error(cli) -> None:
    got = cli("bench", "throughput", "--method", "simclrr", "--backbone", "test_resnet")
    assert got.code == 2 and "unknown method 'simclrr'" in got.err and "Traceback" not in got.err


def test_compute_options_keep_the_weights_compatible(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from imbssl_bench.running.launchers import run_grid
    from imbssl_bench.running.plan import plan_grid
    from tests.conftest import tiny_spec

    (record,) = run_grid(plan_grid(tiny_spec(channels_last=True), tmp_path))
    assert record["status"] == "ok", record.get("error")
    assert record["config"]["runtime"]["channels_last"] is True
    assert record["memory"]["peak_rss_mb"] > 0
