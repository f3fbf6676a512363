"""Frozen backbone features: no augmentation, eval mode, large batches without gradients."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from lightly.transforms.utils import IMAGENET_NORMALIZE
from torch import nn


def feature_device(accelerator: str) -> str:
    """Where frozen features are computed: the GPU when the run may use one."""
    wants_gpu = accelerator in ("auto", "gpu", "cuda")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    images: torch.Tensor,
    image_size: int,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    normalize: dict[str, list[float]] = IMAGENET_NORMALIZE,
) -> np.ndarray:
    """Features ``(N, D)`` float32 of uint8 images ``(N, 3, H, W)``, resized to `image_size`
    and normalised with `normalize`: pass the method's (`Method.input_normalization`); the
    default is Lightly's transforms' default, ImageNet statistics."""
    was_training = backbone.training
    backbone.eval().to(device)
    mean = torch.tensor(normalize["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(normalize["std"], device=device).view(1, 3, 1, 1)
    out = []
    for chunk in images.split(batch_size):
        x = chunk.to(device, non_blocking=True).float().div_(255.0)
        if x.shape[-1] != image_size or x.shape[-2] != image_size:
            x = F.interpolate(
                x,
                size=(image_size, image_size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        out.append(backbone((x - mean) / std).float().cpu())
    backbone.train(was_training)
    return torch.cat(out).numpy()
