"""Barlow Twins (Zbontar et al., ICML 2021, arXiv 2103.03230) from Lightly's parts.

Its loss is a function of the batch's cross-correlation matrix and does not split into one
term per image, so it gives no `per_example_loss`: the re-weighting variants refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lightly.loss import BarlowTwinsLoss
from lightly.models.modules import BarlowTwinsProjectionHead
from lightly.transforms import BYOLTransform, BYOLView1Transform, BYOLView2Transform
from PIL import Image
from torch import Tensor

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method


@dataclass(frozen=True)
class BarlowTwinsArgs:
    hidden_dim: int = 2048  # Lightly's CIFAR-10 benchmark (8192 in the paper, ImageNet)
    out_dim: int = 2048
    lambda_param: float = 5e-3  # weight of the redundancy-reduction term
    min_scale: float = 0.08
    gaussian_blur: float = 0.0  # no blur on 32 px images

    def __post_init__(self) -> None:
        check_range(self, "(0, inf)", "hidden_dim", "out_dim")
        check_range(self, "[0, inf)", "lambda_param")
        check_range(self, "(0, 1]", "min_scale")
        check_range(self, "[0, 1]", "gaussian_blur")


class BarlowTwins(Method):
    name = "barlowtwins"
    description = "Barlow Twins: cross-correlation of two views pushed to identity (Zbontar 2021)"
    Args = BarlowTwinsArgs

    def build(self) -> None:
        a: BarlowTwinsArgs = self.args
        self.projection_head = BarlowTwinsProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)
        self.criterion = BarlowTwinsLoss(lambda_param=a.lambda_param, gather_distributed=True)

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: BarlowTwinsArgs = self.args
        view = {
            "input_size": image_size,
            "min_scale": a.min_scale,
            "gaussian_blur": a.gaussian_blur,
        }
        return BYOLTransform(BYOLView1Transform(**view), BYOLView2Transform(**view))

    def training_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        z0, z1 = (self.projection_head(self.backbone(v)) for v in views)
        return self.criterion(z0, z1)
