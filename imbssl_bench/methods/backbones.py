"""timm backbones with an optional CIFAR stem: ``create_backbone`` is the one entry point.

Any timm model name works. A plugin adds a backbone by registering it with timm
(``@timm.models.register_model``) in a module named by an ``imbssl_bench.backbones`` entry
point; those modules are imported before a name is looked up.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib.metadata import entry_points

import timm
import torch.nn as nn

from imbssl_bench.errors import UserError
from imbssl_bench.registry import GROUPS, plugin_source

STEMS = ("auto", "cifar", "timm")
SMALL_IMAGE = 64  # auto: images up to this size get the CIFAR stem
GROUP = GROUPS["backbone"]


@cache
def load_backbone_plugins() -> tuple[str, ...]:
    """Import every module of the ``imbssl_bench.backbones`` entry points (they register
    their models with timm). Returns the ones that failed, as "name (reason)"."""
    failed = []
    for ep in entry_points(group=GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not break the others
            failed.append(f"{ep.name} ({type(exc).__name__}: {exc})")
    return tuple(failed)


def check_backbone(name: str) -> None:
    failed = load_backbone_plugins()
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        broken = f"; backbone plugins that failed to load: {', '.join(failed)}" if failed else ""
        raise UserError(
            f"unknown backbone '{name}'; {hint}any name from timm.list_models() works{broken}"
        )


def backbone_plugin(name: str) -> dict[str, str | None] | None:
    """The distribution and version of the plugin that registers timm model `name`; None for
    timm's own models and built-ins."""
    check_backbone(name)
    package = timm.models.model_entrypoint(name).__module__.split(".")[0]
    for ep in entry_points(group=GROUP):  # models defined anywhere in the plugin's package
        if package == ep.module.split(".")[0]:
            return plugin_source(ep, name)
    return None


def _first_conv(model: nn.Module) -> nn.Conv2d | None:
    conv1 = getattr(model, "conv1", None)
    if isinstance(conv1, nn.Sequential):  # deep stems (resnet18d, resnet10t, ...)
        conv1 = next((m for m in conv1 if isinstance(m, nn.Conv2d)), None)
    return conv1 if isinstance(conv1, nn.Conv2d) and hasattr(model, "maxpool") else None


@cache
def _supports_cifar_stem(name: str) -> bool:
    return _first_conv(timm.create_model(name, pretrained=False, num_classes=0)) is not None


def resolve_stem(name: str, stem: str, image_size: int) -> str:
    """``auto`` -> ``cifar`` for images <= 64 px on ResNet-style models, else ``timm``."""
    if stem not in STEMS:
        raise UserError(f"unknown stem '{stem}'; valid: {', '.join(STEMS)}")
    check_backbone(name)
    if stem == "timm":
        return "timm"
    supported = _supports_cifar_stem(name)
    if stem == "cifar" and not supported:
        raise UserError(
            f"--stem cifar needs a ResNet-style timm model (conv1 + maxpool), not "
            f"'{name}'; use --stem timm"
        )
    if stem == "auto":
        return "cifar" if supported and image_size <= SMALL_IMAGE else "timm"
    return stem


def _timm_model(name: str, in_chans: int, image_size: int | None) -> nn.Module:
    """timm's model; models with a fixed input size (ViTs, ...) get ``img_size``."""
    kwargs = {"pretrained": False, "num_classes": 0, "in_chans": in_chans}
    if image_size is not None:
        try:
            return timm.create_model(name, img_size=image_size, **kwargs)
        except TypeError:  # a model without an input-size argument (ResNets, ...)
            pass
    return timm.create_model(name, **kwargs)


def create_backbone(
    name: str, stem: str = "timm", in_chans: int = 3, image_size: int | None = None
) -> tuple[nn.Module, int]:
    """A headless timm model (``num_classes=0``) and its feature dimension. `image_size` is
    passed to models that take one (e.g. ViTs: ``vit_tiny_patch16_224`` at 32 px).

    ``stem="cifar"`` swaps the first conv for a 3x3 stride-1 conv and drops the max-pool, as in
    the CIFAR ResNets of SimCLR and Lightly's CIFAR-10 benchmark (deep stems keep their
    layers, the first conv gets stride 1). Pass a resolved stem (see `resolve_stem`).
    """
    check_backbone(name)
    model = _timm_model(name, in_chans, image_size)
    if stem == "cifar":
        first = _first_conv(model)
        if first is None:
            raise UserError(f"--stem cifar needs a ResNet-style timm model, not '{name}'")
        cifar_conv = nn.Conv2d(in_chans, first.out_channels, 3, stride=1, padding=1, bias=False)
        if first is model.conv1:
            model.conv1 = cifar_conv
        else:  # the first conv inside a deep stem
            index = next(i for i, m in enumerate(model.conv1) if m is first)
            model.conv1[index] = cifar_conv
        model.maxpool = nn.Identity()
    elif stem != "timm":
        raise ValueError(f"stem must be resolved to 'cifar' or 'timm', got {stem!r}")
    return model, int(model.num_features)
