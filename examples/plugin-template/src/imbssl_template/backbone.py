"""`template_convnet`: a small convnet registered with timm, so `--backbone template_convnet`
works like any timm name (imbssl-bench imports this module through its entry point)."""

from __future__ import annotations

from typing import Any

from timm.models import register_model
from torch import Tensor, nn


class ConvNet(nn.Module):
    """Three conv blocks and global average pooling; `num_features` is the feature size."""

    def __init__(self, in_chans: int = 3, width: int = 32, num_classes: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for out in (width, 2 * width, 4 * width):
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = channels
        self.head = nn.Linear(channels, num_classes) if num_classes else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@register_model
def template_convnet(pretrained: bool = False, **kwargs: Any) -> ConvNet:
    if pretrained:
        raise ValueError("template_convnet has no pretrained weights")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    return ConvNet(**kwargs)
