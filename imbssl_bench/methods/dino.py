"""DINO (Caron et al., ICCV 2021, arXiv 2104.14294) from Lightly's parts.

The teacher (a momentum copy of backbone and head) sees the two global views, the student every
view. The per-image cross-entropy is written out from `DINOLoss`'s centre, temperatures and
centre update (a test checks that its mean equals Lightly's loss). The evaluated backbone is the
student's, as for every method.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad
from lightly.transforms import DINOTransform
from PIL import Image
from torch import Tensor

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method
from imbssl_bench.methods.momentum import MomentumTeacher, momentum_copy


@dataclass(frozen=True)
class DINOArgs:
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    out_dim: int = 2048  # prototypes (65,536 in the paper, ImageNet)
    batch_norm: bool = True  # in the head, as for ResNet backbones in the paper
    teacher_temp: float = 0.04
    student_temp: float = 0.1
    center_momentum: float = 0.9
    momentum: float = 0.99  # teacher EMA, cosine-scheduled to 1 (0.996 in the paper)
    local_views: int = 0  # multi-crop: extra small views for the student (6 in the paper)
    local_crop_size: int = 16  # pixels, used when local_views > 0
    gaussian_blur: float = 0.0  # no blur on 32 px images (the paper: 1.0, 0.1, 0.5)

    def __post_init__(self) -> None:
        check_range(self, "(0, inf)", "hidden_dim", "bottleneck_dim", "out_dim")
        check_range(self, "(0, inf)", "teacher_temp", "student_temp", "local_crop_size")
        check_range(self, "[0, 1)", "center_momentum", "momentum")
        check_range(self, "[0, inf)", "local_views")
        check_range(self, "[0, 1]", "gaussian_blur")


class DINO(MomentumTeacher, Method):
    name = "dino"
    description = "DINO: self-distillation to a centred, sharpened momentum teacher (Caron 2021)"
    Args = DINOArgs

    def build(self) -> None:
        a: DINOArgs = self.args
        self.projection_head = self._head()
        self.backbone_momentum = momentum_copy(self.backbone)
        # the head's weight-normed layer cannot be deep-copied: a fresh head with its weights
        self.projection_head_momentum = self._head()
        self.projection_head_momentum.load_state_dict(self.projection_head.state_dict())
        deactivate_requires_grad(self.projection_head_momentum)
        self.criterion = DINOLoss(
            output_dim=a.out_dim,
            warmup_teacher_temp=a.teacher_temp,
            teacher_temp=a.teacher_temp,
            student_temp=a.student_temp,
            center_momentum=a.center_momentum,
        )

    def _head(self) -> DINOProjectionHead:
        a: DINOArgs = self.args
        with warnings.catch_warnings():  # Lightly's head uses the old torch weight_norm
            warnings.filterwarnings("ignore", ".*weight_norm.*deprecated.*", FutureWarning)
            return DINOProjectionHead(
                self.feature_dim, a.hidden_dim, a.bottleneck_dim, a.out_dim, a.batch_norm
            )

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: DINOArgs = self.args
        blur = a.gaussian_blur
        return DINOTransform(
            global_crop_size=image_size,
            local_crop_size=a.local_crop_size,
            n_local_views=a.local_views,
            gaussian_blur=(blur, blur, blur),
        )

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        with torch.no_grad():
            teacher = torch.stack(
                [self.projection_head_momentum(self.backbone_momentum(v)) for v in views[:2]]
            )
        student = torch.stack([self.projection_head(self.backbone(v)) for v in views])
        c = self.criterion
        t = F.softmax((teacher - c.center) / c.teacher_temp, dim=-1)
        s = F.log_softmax(student / c.student_temp, dim=-1)
        pairs = torch.ones(len(t), len(s), device=s.device)
        pairs.fill_diagonal_(0)  # a view is not its own target
        ce = -torch.einsum("tbd,sbd->tsb", t, s)
        c.update_center(teacher)
        return (ce * pairs[..., None]).sum((0, 1)) / pairs.sum()
