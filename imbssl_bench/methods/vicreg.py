"""VICReg (Bardes et al., ICLR 2022, arXiv 2105.04906) from Lightly's parts.

Its variance and covariance terms are batch statistics, so it gives no `per_example_loss`:
the re-weighting variants refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead
from lightly.transforms import VICRegTransform
from PIL import Image
from torch import Tensor

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method


@dataclass(frozen=True)
class VICRegArgs:
    hidden_dim: int = 2048  # 8192 in the paper (ImageNet)
    out_dim: int = 2048
    lambda_param: float = 25.0  # invariance
    mu_param: float = 25.0  # variance
    nu_param: float = 1.0  # covariance
    min_scale: float = 0.08
    gaussian_blur: float = 0.0  # no blur on 32 px images

    def __post_init__(self) -> None:
        check_range(self, "(0, inf)", "hidden_dim", "out_dim")
        check_range(self, "[0, inf)", "lambda_param", "mu_param", "nu_param")
        check_range(self, "(0, 1]", "min_scale")
        check_range(self, "[0, 1]", "gaussian_blur")


class VICReg(Method):
    name = "vicreg"
    description = "VICReg: invariance + variance + covariance regularisation (Bardes et al. 2022)"
    Args = VICRegArgs

    def build(self) -> None:
        a: VICRegArgs = self.args
        self.projection_head = VICRegProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)
        self.criterion = VICRegLoss(
            lambda_param=a.lambda_param,
            mu_param=a.mu_param,
            nu_param=a.nu_param,
            gather_distributed=True,
        )

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: VICRegArgs = self.args
        return VICRegTransform(
            input_size=image_size, min_scale=a.min_scale, gaussian_blur=a.gaussian_blur
        )

    def training_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        z0, z1 = (self.projection_head(self.backbone(v)) for v in views)
        return self.criterion(z0, z1)
