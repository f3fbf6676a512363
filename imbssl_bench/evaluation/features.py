"""Frozen backbone features: no augmentation, eval mode, batches without gradients (streamed
splits decoded in DataLoader workers, so memory holds one batch of images at a time)."""

from __future__ import annotations

import numpy as np
import torch
from lightly.transforms.utils import IMAGENET_NORMALIZE
from torch import nn

from imbssl_bench.data.splits import Split, resize_center


def feature_device(accelerator: str) -> str:
    """Where frozen features are computed: the GPU when the run may use one."""
    wants_gpu = accelerator in ("auto", "gpu", "cuda")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    images: Split | torch.Tensor,
    image_size: int,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    normalize: dict[str, list[float]] = IMAGENET_NORMALIZE,
    workers: int = 0,
) -> np.ndarray:
    """Features ``(N, D)`` float32 of a split's images (or uint8 images ``(N, 3, H, W)``),
    batch by batch: the shorter side resized to `image_size`, the centre square
    (`resize_center`), normalised with `normalize`: pass the method's
    (``method.input_normalization(image_size)``); the default is Lightly's transforms'
    default, ImageNet statistics. A `FileSplit` is decoded in `workers` DataLoader processes."""
    was_training = backbone.training
    backbone.eval().to(device)
    mean = torch.tensor(normalize["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(normalize["std"], device=device).view(1, 3, 1, 1)
    batches = (
        images.split(batch_size)
        if isinstance(images, torch.Tensor)
        else images.batches(batch_size, image_size, workers)
    )
    out = []
    for chunk in batches:
        x = chunk.to(device, non_blocking=True)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        x = resize_center(x, image_size)
        out.append(backbone((x - mean) / std).float().cpu())
    backbone.train(was_training)
    return torch.cat(out).numpy()
