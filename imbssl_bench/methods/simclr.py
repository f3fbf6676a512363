"""SimCLR (Chen et al., ICML 2020, arXiv 2002.05709) from Lightly's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform
from PIL import Image
from torch import Tensor, nn

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method


@dataclass(frozen=True)
class SimCLRViewArgs:
    """The view settings, shared with the supervised control (it must see the same views)."""

    cj_strength: float = 0.5  # Lightly's small-image setting
    min_scale: float = 0.08
    gaussian_blur: float = 0.0  # no blur on 32 px images

    def __post_init__(self) -> None:
        check_range(self, "[0, inf)", "cj_strength")
        check_range(self, "(0, 1]", "min_scale")
        check_range(self, "[0, 1]", "gaussian_blur")


@dataclass(frozen=True)
class SimCLRArgs(SimCLRViewArgs):
    temperature: float = 0.5  # Lightly's NTXentLoss default, used in its CIFAR-10 benchmark
    hidden_dim: int = 512  # Lightly's CIFAR-10 benchmark (= ResNet-18 feature dim)
    out_dim: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()  # the view options
        check_range(self, "(0, inf)", "temperature", "hidden_dim", "out_dim")


def simclr_views(image_size: int, args: SimCLRViewArgs) -> SimCLRTransform:
    """Lightly's two-view SimCLR transform."""
    return SimCLRTransform(
        input_size=image_size,
        cj_strength=args.cj_strength,
        min_scale=args.min_scale,
        gaussian_blur=args.gaussian_blur,
    )


class SimCLR(Method):
    name = "simclr"
    description = "SimCLR: NT-Xent contrastive loss between two views (Chen et al. 2020)"
    Args = SimCLRArgs

    def build(self) -> None:
        a: SimCLRArgs = self.args
        self.projection_head = SimCLRProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)
        self.criterion = NTXentLoss(temperature=a.temperature, gather_distributed=True)
        self.criterion.cross_entropy = nn.CrossEntropyLoss(reduction="none")  # per view row

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        return simclr_views(image_size, self.args)

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        z0, z1 = (self.projection_head(self.backbone(v)) for v in views)
        return self.criterion(z0, z1).view(2, -1).mean(0)  # rows: view 0's, then view 1's
