"""Batched views on the training device: the method's Lightly transform, translated op by op
into kornia's per-sample augmentations and applied to uint8 batches after they reach the device.

Lightly's transforms work on one PIL image at a time in DataLoader workers; on a GPU that is
the bottleneck. `batched_views` reads the torchvision/Lightly ops of each view (crop, flips,
colour jitter, grayscale, blur, solarisation, normalisation) with their parameters and builds
the kornia equivalent, with an independent draw per image (the order of the colour-jitter
ops too: `PerImageOrderJitter`). A transform with an op it does not know is left on the PIL
path (`batched_views` says why).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from typing import Any

import kornia.augmentation as K
import torch
from torch import Tensor, nn


class Unsupported(ValueError):
    """The transform has an op with no batched equivalent here (the run fails with this
    reason and the grid goes on; ``--augment pil`` runs it)."""


def _view_ops(view: Any) -> list[Any]:
    """The flat op list of one view: a Compose, or a Lightly view transform holding one."""
    inner = getattr(view, "transform", None)
    if inner is not None and hasattr(inner, "transforms"):
        view = inner
    ops = getattr(view, "transforms", None)
    if ops is None:
        raise Unsupported(f"{type(view).__name__} is not a Compose of ops")
    flat = []
    for op in ops:
        inner = getattr(op, "transform", None)
        if type(op).__name__ == "Compose":
            flat += _view_ops(op)
        elif type(inner).__name__ == "Compose":  # a Lightly view wrapper, e.g. SwaVViewTransform
            flat += _view_ops(inner)
        else:
            flat.append(op)
    return flat


def _range(value: Any, neutral: float) -> tuple[float, float] | None:
    """torchvision stores jitter ranges as (min, max) or None."""
    if value is None:
        return None
    low, high = (float(v) for v in value)
    return None if low == high == neutral else (low, high)


def _blur_kernel(sigma_max: float, size: int) -> int:
    k = 2 * math.ceil(3 * sigma_max) + 1
    return max(3, min(k, size - 1 if size % 2 == 0 else size))


def _convert(op: Any, size: int) -> nn.Module | None:
    """One op -> a kornia module (None: an op that does nothing here, such as ToTensor)."""
    name = type(op).__name__
    if name == "RandomResizedCrop":
        out = tuple(op.size) if len(op.size) == 2 else (op.size[0], op.size[0])
        return K.RandomResizedCrop(  # one batched affine warp (no antialias when shrinking)
            out, tuple(op.scale), tuple(op.ratio), align_corners=False, cropping_mode="resample"
        )
    if name in ("RandomHorizontalFlip", "RandomVerticalFlip"):
        return None if op.p == 0 else getattr(K, name)(p=op.p)
    if name == "RandomApply":
        if op.p == 0:
            return None
        if len(op.transforms) != 1 or type(op.transforms[0]).__name__ != "ColorJitter":
            raise Unsupported(f"RandomApply of {[type(t).__name__ for t in op.transforms]}")
        return _jitter(op.transforms[0], op.p)
    if name == "ColorJitter":
        return _jitter(op, 1.0)
    if name == "RandomGrayscale":
        return None if op.p == 0 else K.RandomGrayscale(p=op.p)
    if name == "GaussianBlur" and hasattr(op, "sigmas"):  # Lightly's (PIL radius = sigma)
        if op.prob == 0:
            return None
        sigmas = tuple(float(s) for s in op.sigmas)
        return K.RandomGaussianBlur(_blur_kernel(sigmas[1], size), sigmas, p=op.prob)
    if name == "RandomSolarization":  # Lightly's: x >= threshold -> 255 - x
        if op.prob == 0:
            return None
        t = op.threshold / 255.0
        return K.RandomSolarize(thresholds=(t, t), additions=(0.0, 0.0), p=op.prob)
    if name in ("RandomRotate", "RandomRotateDegrees"):  # the latter wraps a RandomApply
        prob = getattr(op, "prob", None)
        prob = getattr(op.transform, "p", 1.0) if prob is None else prob
        if prob == 0:
            return None
        raise Unsupported(f"{name} with prob {prob}")
    if name in ("ToTensor", "ToImage", "ToDtype"):
        return None
    if name == "Normalize":
        return K.Normalize(mean=torch.tensor(op.mean), std=torch.tensor(op.std))
    raise Unsupported(name)


def _jitter(op: Any, p: float) -> nn.Module | None:
    ranges = [
        _range(op.brightness, 1.0),
        _range(op.contrast, 1.0),
        _range(op.saturation, 1.0),
        _range(op.hue, 0.0),
    ]
    if all(r is None for r in ranges):
        return None
    b, c, s, h = (r or ((0.0, 0.0) if i == 3 else (1.0, 1.0)) for i, r in enumerate(ranges))
    return PerImageOrderJitter(b, c, s, h, p=p)


JITTER_ORDERS = tuple(itertools.permutations(range(4)))  # of brightness, contrast, sat., hue


def jitter_orders(batch: int) -> Tensor:
    """One order of the four jitter ops per image, as an index into `JITTER_ORDERS`, drawn
    uniformly from the global torch generator (torchvision draws ``randperm(4)`` per image)."""
    return torch.randint(len(JITTER_ORDERS), (batch,))


class PerImageOrderJitter(nn.Module):
    """kornia's ColorJitter with the order of its ops drawn per image, as torchvision's:
    kornia draws one order per batch, so the batch is split by each image's order and each
    group goes through a ColorJitter fixed to that order (factors and `p` stay per image)."""

    def __init__(self, *ranges: tuple[float, float], p: float) -> None:
        super().__init__()
        self.jitters = nn.ModuleList(K.ColorJitter(*ranges, p=p, order=o) for o in JITTER_ORDERS)

    def forward(self, x: Tensor) -> Tensor:
        orders = jitter_orders(len(x)).to(x.device)
        out = torch.empty_like(x)
        for k in orders.unique().tolist():
            idx = (orders == k).nonzero().squeeze(1)
            out[idx] = self.jitters[k](x[idx])
        return out


class BatchedViews(nn.Module):
    """uint8 images ``(B, 3, H, W)`` on any device -> the method's list of views."""

    def __init__(self, pipelines: Iterable[nn.Module]) -> None:
        super().__init__()
        self.pipelines = nn.ModuleList(pipelines)

    @torch.no_grad()
    def forward(self, images: Tensor) -> list[Tensor]:
        x = images.float().div_(255.0)
        return [pipeline(x) for pipeline in self.pipelines]


def batched_views(transform: Any, image_size: int) -> BatchedViews:
    """The batched form of a multi-view transform (Lightly's MultiViewTransform and its
    subclasses: one Compose per view). Raises `Unsupported` with the reason."""
    views = getattr(transform, "transforms", None)
    if not isinstance(views, list | tuple) or not views:
        raise Unsupported(f"{type(transform).__name__} is not a multi-view transform")
    pipelines = []
    for view in views:
        ops, size = [], image_size
        for op in _view_ops(view):
            if type(op).__name__ == "RandomResizedCrop":  # blur kernels fit the crop's size
                size = min(op.size)
            module = _convert(op, size)
            if module is not None:
                ops.append(module)
        pipelines.append(nn.Sequential(*ops))
    return BatchedViews(pipelines)
