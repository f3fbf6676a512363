"""NNCLR (Dwibedi et al., ICCV 2021, arXiv 2104.14548) from Lightly's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lightly.loss import NTXentLoss
from lightly.models.modules import NNCLRPredictionHead, NNCLRProjectionHead, NNMemoryBankModule
from PIL import Image
from torch import Tensor, nn

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method
from imbssl_bench.methods.simclr import SimCLRViewArgs, simclr_views


@dataclass(frozen=True)
class NNCLRArgs(SimCLRViewArgs):  # SimCLR's views
    hidden_dim: int = 512  # Lightly's CIFAR-10 benchmark
    out_dim: int = 128
    temperature: float = 0.5  # Lightly's NTXentLoss default
    memory_bank_size: int = 4096  # the support set the nearest neighbours come from

    def __post_init__(self) -> None:
        super().__post_init__()  # the view options
        check_range(self, "(0, inf)", "hidden_dim", "out_dim", "temperature", "memory_bank_size")


class NNCLR(Method):
    name = "nnclr"
    description = "NNCLR: contrast each view's nearest neighbour from a support set (Dwibedi 2021)"
    Args = NNCLRArgs

    def build(self) -> None:
        a: NNCLRArgs = self.args
        self.projection_head = NNCLRProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)
        self.prediction_head = NNCLRPredictionHead(a.out_dim, a.hidden_dim, a.out_dim)
        self.memory_bank = NNMemoryBankModule(size=(a.memory_bank_size, a.out_dim))
        self.criterion = NTXentLoss(a.temperature, gather_distributed=True)
        self.criterion.cross_entropy = nn.CrossEntropyLoss(reduction="none")  # per view row

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        return simclr_views(image_size, self.args)

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        z0, z1 = (self.projection_head(self.backbone(v)) for v in views)
        p0, p1 = self.prediction_head(z0), self.prediction_head(z1)
        nn0 = self.memory_bank(z0.detach(), update=False)
        nn1 = self.memory_bank(z1.detach(), update=True)
        rows0 = self.criterion(nn0, p1).view(2, -1).mean(0)  # rows: both directions
        rows1 = self.criterion(nn1, p0).view(2, -1).mean(0)
        return 0.5 * (rows0 + rows1)
