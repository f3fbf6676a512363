"""SimSiam (Chen & He, CVPR 2021, arXiv 2011.10566) from Lightly's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from lightly.models.modules import SimSiamPredictionHead
from lightly.models.modules.heads import ProjectionHead
from lightly.transforms import SimSiamTransform
from PIL import Image
from torch import Tensor, nn

from imbssl_bench.config import LrRule, check_range
from imbssl_bench.methods.base import Method


@dataclass(frozen=True)
class SimSiamArgs:
    proj_dim: int = 2048  # projection hidden and output dim (Liu et al.'s CIFAR setting)
    proj_layers: int = 2  # the paper's CIFAR appendix, Liu et al.'s code, Lightly's benchmark
    pred_hidden_dim: int = 512
    gaussian_blur: float = 0.0  # no blur on 32 px images
    min_scale: float = 0.2

    def __post_init__(self) -> None:
        check_range(self, "(0, inf)", "proj_dim", "pred_hidden_dim")
        check_range(self, "[1, inf)", "proj_layers")
        check_range(self, "(0, 1]", "min_scale")
        check_range(self, "[0, 1]", "gaussian_blur")


def simsiam_projection_head(input_dim: int, dim: int, layers: int) -> ProjectionHead:
    """Lightly's `SimSiamProjectionHead` blocks with `layers` linear layers: BN + ReLU after
    each hidden one, BN without affine after the output (``layers=3`` is that head).

    Examples:
        >>> [type(m).__name__ for m in simsiam_projection_head(512, 2048, 2).layers]
        ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d']
    """
    dims = [input_dim] + [dim] * layers
    hidden = [(dims[i], dims[i + 1], nn.BatchNorm1d(dim), nn.ReLU()) for i in range(layers - 1)]
    return ProjectionHead([*hidden, (dims[-2], dim, nn.BatchNorm1d(dim, affine=False), None)])


class SimSiam(Method):
    name = "simsiam"
    description = "SimSiam: predictor + stop-gradient, negative cosine loss (Chen & He 2021)"
    Args = SimSiamArgs
    # Lightly's CIFAR-10 benchmark: "no lr-scaling, results in better training stability";
    # Liu et al.'s code: 0.06 at batch 512
    default_lr = LrRule(0.06, "none")

    def build(self) -> None:
        a: SimSiamArgs = self.args
        self.projection_head = simsiam_projection_head(self.feature_dim, a.proj_dim, a.proj_layers)
        self.prediction_head = SimSiamPredictionHead(a.proj_dim, a.pred_hidden_dim, a.proj_dim)

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: SimSiamArgs = self.args
        return SimSiamTransform(
            input_size=image_size, gaussian_blur=a.gaussian_blur, min_scale=a.min_scale
        )

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        z0, z1 = (self.projection_head(self.backbone(v)) for v in views)
        p0, p1 = self.prediction_head(z0), self.prediction_head(z1)
        # NegativeCosineSimilarity is the batch mean of this
        return -0.5 * (F.cosine_similarity(p0, z1.detach()) + F.cosine_similarity(p1, z0.detach()))
