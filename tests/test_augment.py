"""Batched views (kornia, on the device) against Lightly's PIL views: the same parameters give
the same augmentation statistics on a fixed image set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightly.transforms import SimCLRTransform
from PIL import Image

from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.training.augment import Unsupported, batched_views
from imbssl_bench.training.throughput import synthetic_split
from tests.conftest import tiny_spec

N = 1500


def pil_views(transform, images: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    hwc = images.permute(0, 2, 3, 1).numpy()
    views = [transform(Image.fromarray(x)) for x in hwc]
    return [torch.stack([v[i] for v in views]) for i in range(len(views[0]))]


def coordinate_images(n: int, size: int = 32) -> torch.Tensor:
    """Red = x, green = y (0..255 across the image): a view's red range is its crop width."""
    ramp = torch.linspace(0, 255, size)
    img = torch.stack(
        [ramp.expand(size, size), ramp[:, None].expand(size, size), torch.zeros(size, size)]
    )
    return img.round().to(torch.uint8).expand(n, 3, size, size).contiguous()


def crop_stats(views: torch.Tensor) -> tuple[float, float, float]:
    red, green = views[:, 0], views[:, 1]
    width = red.amax((1, 2)) - red.amin((1, 2))
    height = green.amax((1, 2)) - green.amin((1, 2))
    flipped = (red[:, :, -1].mean(1) < red[:, :, 0].mean(1)).float()
    return (
        float((width * height).mean()),
        float((width / height.clamp_min(1e-3)).log().std()),
        float(flipped.mean()),
    )


def test_crops_and_flips_follow_the_same_distribution() -> None:
    torch.manual_seed(0)
    t = SimCLRTransform(
        input_size=32, cj_prob=0.0, random_gray_scale=0.0, gaussian_blur=0.0, normalize=None
    )
    images = coordinate_images(N)
    pil = crop_stats(pil_views(t, images)[0])
    batched = crop_stats(batched_views(t, 32)(images)[0])
    assert pil[0] == pytest.approx(batched[0], abs=0.03)  # mean crop area (scale 0.08-1)
    assert pil[1] == pytest.approx(batched[1], abs=0.05)  # spread of the aspect ratio
    assert pil[2] == pytest.approx(batched[2], abs=0.05)  # flip rate 0.5


def test_colour_statistics_match() -> None:
    torch.manual_seed(0)
    t = SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0, normalize=None)
    images = synthetic_split(N, 32, seed=0).images
    a, b = pil_views(t, images)[0], batched_views(t, 32)(images)[0]
    for stat in (lambda v: v.mean((0, 2, 3)), lambda v: v.std((0, 2, 3))):
        assert torch.allclose(stat(a), stat(b), atol=0.02)
    gray_a = ((a[:, 0] - a[:, 1]).abs().amax((1, 2)) < 1e-3).float().mean()
    gray_b = ((b[:, 0] - b[:, 1]).abs().amax((1, 2)) < 1e-3).float().mean()
    # 0.2 of the views each (4 sigma at N=1500; the PIL side also counts views that uint8
    # rounding made exactly gray, so the two are compared with p, not with each other)
    assert float(gray_a) == pytest.approx(0.2, abs=0.04)
    assert float(gray_b) == pytest.approx(0.2, abs=0.04)


def test_views_are_normalised_like_lightlys() -> None:
    t = SimCLRTransform(
        input_size=32,
        cj_prob=0.0,
        random_gray_scale=0.0,
        gaussian_blur=0.0,
        min_scale=1.0,
        hf_prob=0.0,
    )
    images = synthetic_split(8, 32, seed=1).images
    a, b = pil_views(t, images)[0], batched_views(t, 32)(images)[0]
    assert torch.allclose(a, b, atol=0.03)  # full-image crop: only interpolation differs


def test_unknown_ops_are_refused_with_their_name() -> None:
    from lightly.transforms.multi_view_transform import MultiViewTransform
    from torchvision.transforms import v2 as T

    views = MultiViewTransform([T.Compose([T.RandomPerspective()])] * 2)
    with pytest.raises(Unsupported, match="RandomPerspective"):
        batched_views(views, 32)


def test_a_grid_runs_with_batched_views(tmp_path: Path) -> None:
    records = run_grid(
        plan_grid(tiny_spec(methods=("simclr", "byol"), augment="batched"), tmp_path)
    )
    assert [r["status"] for r in records] == ["ok", "ok"], [r.get("error") for r in records]
    assert records[0]["config"]["train"]["augment"] == "batched"
    assert np.isfinite(records[0]["train"]["final_loss"])


def sharpness(views: torch.Tensor) -> float:
    """Mean absolute difference between horizontal neighbours: blur lowers it."""
    return float((views[..., 1:] - views[..., :-1]).abs().mean())


def test_blur_and_solarisation_match() -> None:
    torch.manual_seed(0)
    common = dict(input_size=32, min_scale=1.0, hf_prob=0.0, cj_prob=0.0, random_gray_scale=0.0)
    images = synthetic_split(N // 3, 32, seed=2).images
    for extra in ({"gaussian_blur": 1.0, "sigmas": (0.5, 1.5)}, {"gaussian_blur": 0.0}):
        t = SimCLRTransform(**common, **extra, normalize=None)  # type: ignore[arg-type]
        a, b = pil_views(t, images)[0], batched_views(t, 32)(images)[0]
        assert sharpness(a) == pytest.approx(sharpness(b), rel=0.1), extra


@pytest.mark.parametrize(
    "name", ["simclr", "simsiam", "byol", "moco", "nnclr", "dcl", "dino", "swav", "vicreg"]
)
def test_every_built_in_transform_has_a_batched_form(name: str) -> None:
    from imbssl_bench.config import TrainConfig
    from imbssl_bench.methods import create_method
    from imbssl_bench.methods.backbones import create_backbone

    backbone, dim = create_backbone("test_resnet", "cifar")
    transform = create_method(name, backbone, dim, {}, TrainConfig(), 10).build_transform(32)
    images = synthetic_split(4, 32, seed=0).images
    pil = pil_views(transform, images)
    batched = batched_views(transform, 32)(images)
    assert [v.shape for v in batched] == [v.shape for v in pil]


def test_jitter_order_is_drawn_per_image() -> None:
    from imbssl_bench.training.augment import JITTER_ORDERS, PerImageOrderJitter, jitter_orders

    torch.manual_seed(0)
    orders = jitter_orders(64)
    assert len(JITTER_ORDERS) == 24 and orders.shape == (64,)
    assert len(orders.unique()) > 1  # two images of one batch get different orders
    t = SimCLRTransform(input_size=16, cj_strength=0.5, gaussian_blur=0.0)
    jitter = next(m for m in batched_views(t, 16).modules() if isinstance(m, PerImageOrderJitter))
    used = []
    for k, module in enumerate(jitter.jitters):
        module.register_forward_hook(lambda m, i, o, k=k: used.append((k, len(i[0]))))
    jitter(torch.rand(64, 3, 16, 16))
    assert len(used) > 1 and sum(n for _, n in used) == 64  # each image once, several orders
