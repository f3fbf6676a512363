"""The GPU side (issue 18): batched views on CUDA, bf16 autocast, channels-last, compile, a
1-GPU run end to end and DDP with NCCL. Marked ``gpu``; skipped without CUDA (so in CI);
`benchmarks/gpu_check.sh` runs them on a machine that has one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lightly.transforms import SimCLRTransform

from imbssl_bench.methods.backbones import create_backbone
from imbssl_bench.training.augment import batched_views
from imbssl_bench.training.throughput import synthetic_split
from tests.conftest import TINY_FLAGS
from tests.test_augment import N, coordinate_images, crop_stats

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CUDA = torch.device("cuda")


def test_batched_views_on_the_gpu_match_the_cpus_statistics() -> None:
    t = SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.5, normalize=None)
    images = synthetic_split(N, 32, seed=0).images
    views = batched_views(t, 32)
    torch.manual_seed(0)
    cpu = views(images)[0]
    torch.manual_seed(0)
    gpu = views(images.to(CUDA))[0]
    assert gpu.device.type == "cuda" and gpu.shape == cpu.shape
    for stat in (lambda v: v.mean((0, 2, 3)), lambda v: v.std((0, 2, 3))):
        assert torch.allclose(stat(cpu), stat(gpu).cpu(), atol=0.02)
    plain = SimCLRTransform(
        input_size=32, cj_prob=0.0, random_gray_scale=0.0, gaussian_blur=0.0, normalize=None
    )
    coords = coordinate_images(N)
    a = crop_stats(batched_views(plain, 32)(coords)[0])
    b = crop_stats(batched_views(plain, 32)(coords.to(CUDA))[0].cpu())
    assert a == pytest.approx(b, abs=0.05)  # crop area, aspect spread, flip rate


def features(backbone: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return backbone(x).float().flatten(1)


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-3) -> bool:
    return float((a - b).norm() / a.norm()) < tol


def test_bf16_channels_last_and_compile_keep_the_features(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # fp32 is fp32 on both sides
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.manual_seed(0)
    backbone, _ = create_backbone("resnet18", "cifar", image_size=32)
    backbone = backbone.to(CUDA).eval()
    x = torch.randn(64, 3, 32, 32, device=CUDA)
    ref = features(backbone, x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        bf16 = features(backbone, x)
    cos = torch.nn.functional.cosine_similarity(ref, bf16).min()
    assert torch.isfinite(bf16).all() and cos > 0.99
    nhwc = backbone.to(memory_format=torch.channels_last)
    last = features(nhwc, x.to(memory_format=torch.channels_last))
    assert close(ref, last)
    compiled = features(torch.compile(backbone), x)
    assert close(ref, compiled)


def run_on_gpu(cli, out: Path, *flags: str) -> dict:  # type: ignore[no-untyped-def]
    res = cli("run", "--method", "simclr", "--dataset", "digits", "--ratios", "10", *TINY_FLAGS,
              "--accelerator", "gpu", "--devices", "1", "--out", out, *flags)  # fmt: skip
    assert res.code == 0, res.err
    (path,) = out.glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok", record["error"]
    return record


def test_a_one_gpu_run_with_the_fast_path_end_to_end(cli, tmp_path: Path) -> None:
    record = run_on_gpu(
        cli, tmp_path, "--precision", "bf16-mixed", "--augment", "batched", "--channels-last"
    )
    assert "cuda" in json.dumps(record["env"]).lower()
    assert record["train"]["processes"] == 1 and 0 < record["metrics"]["linear_top1"] <= 1
    assert record["metrics"]["knn_curve"]  # the online kNN ran on the GPU too


def test_ddp_with_nccl_on_one_gpu(cli, tmp_path: Path) -> None:
    record = run_on_gpu(cli, tmp_path, "--strategy", "ddp")
    assert record["train"]["processes"] == 1 and record["config"]["runtime"]["strategy"] == "ddp"
