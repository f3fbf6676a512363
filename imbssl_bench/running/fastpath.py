"""The default training path: the fastest one whose accuracy equals the reference path's.

A grid that leaves ``augment`` or ``precision`` unset (or ``auto``) gets, per run:
- ``augment``: ``batched`` (the method's Lightly views made per image on the training device)
  when the images are held in memory and the method's transform has a batched form; else
  ``pil`` (Lightly's transform per image in DataLoader workers).
- ``precision``: ``bf16-mixed`` (autocast) where the training device computes bf16 natively
  (a CUDA GPU with bf16; a CPU with AVX512-BF16 or AMX), else ``32-true``. Runs planned for
  other machines (slurm) get ``32-true`` unless it is given: this machine cannot tell.
Methods that do not train (``random``) keep the reference path (``pil``, ``32-true``), so their
run ids do not depend on the machine. Both values are part of the run id.
Channels-last is the `RuntimeConfig` default (the same convolutions, equal up to rounding).
Measured equal to the reference path within seed noise, and faster: benchmarks/RESULTS.md,
"The default training path".
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

import torch
from torch import nn

from imbssl_bench.config import RunConfig, TrainConfig
from imbssl_bench.methods import get_method

AUTO = (None, "auto")


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic units (AVX512-BF16 or AMX) oneDNN uses."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def cuda_computes_bf16() -> bool:
    """Whether CUDA device 0 has bf16 tensor cores (compute capability 8.0 or later, as
    ``torch.cuda.is_bf16_supported(including_emulation=False)`` of newer torch says)."""
    return torch.cuda.get_device_capability(0) >= (8, 0)


def device_computes_bf16(accelerator: str) -> bool:
    """Whether the device Lightning picks for `accelerator` computes bf16 natively."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return cuda_computes_bf16()
    if accelerator in ("auto", "cpu"):
        return cpu_computes_bf16()
    return False  # mps, tpu, ...: not judged here


@cache
def has_batched_views(method: str, args_json: str, image_size: int) -> bool:
    """Whether `method`'s transform (with its args, as JSON) translates to batched views. The
    transform comes from a throwaway instance on a stand-in backbone; a method that cannot be
    built so, or whose transform cannot be read, gets the PIL views (the reference path)."""
    from imbssl_bench.training.augment import batched_views

    cls = get_method(method)
    args = cls.make_args(json.loads(args_json))
    try:
        probe = cls(nn.Identity(), 8, args, TrainConfig(), 2)  # tiny heads
        batched_views(probe.build_transform(image_size), image_size)
    except Exception:  # Unsupported ops, or a plugin that needs its real backbone
        return False
    return True


def default_path(
    method: str,
    method_args: dict[str, Any],
    image_size: int,
    accelerator: str,
    storage: str = "memory",
    here: bool = True,
) -> tuple[str | None, str]:
    """The default ``(augment, precision)`` of a run of `method` (see the module); augment
    None is ``pil``."""
    if not get_method(method).trains:
        return None, "32-true"
    args = json.dumps(method_args, sort_keys=True)
    batched = storage == "memory" and has_batched_views(method, args, image_size)
    native = here and device_computes_bf16(accelerator)
    return ("batched" if batched else None), ("bf16-mixed" if native else "32-true")


def with_fast_path(cfg: RunConfig, spec: Any, storage: str, here: bool) -> RunConfig:
    """`cfg` (resolved) with the default path for the options `spec` leaves open."""
    size = cfg.data.image_size or 32
    augment, precision = default_path(
        cfg.method, cfg.method_args, size, cfg.runtime.accelerator, storage, here
    )
    train = cfg.train
    if spec.augment in AUTO:
        train = dataclasses.replace(train, augment=augment)
    if spec.precision in AUTO:
        train = dataclasses.replace(train, precision=precision)
    return dataclasses.replace(cfg, train=train)


def resolve_auto(
    method: str, image_size: int, accelerator: str, augment: str, precision: str
) -> tuple[str, str]:
    """`augment` and `precision` as given, an ``auto`` one as `run` picks it for `method`
    with its default args and images in memory (for the throughput benchmarks)."""
    fast_augment, fast_precision = default_path(method, {}, image_size, accelerator)
    return (
        (fast_augment or "pil") if augment == "auto" else augment,
        fast_precision if precision == "auto" else precision,
    )


def fills_path(spec: Any) -> bool:
    """Whether planning chooses part of the training path of `spec`'s runs."""
    return spec.augment in AUTO or spec.precision in AUTO


def path_note(configs: list[RunConfig]) -> str | None:
    """One line naming the training paths of the runs that train, e.g. ``training path:
    batched views, bf16-mixed, channels-last``."""
    paths = sorted(
        {
            f"{c.train.augment or 'pil'} views, {c.train.precision}"
            + (", channels-last" if c.runtime.channels_last else "")
            for c in configs
            if get_method(c.method).trains
        }
    )
    return f"training path: {'; '.join(paths)}" if paths else None


PATHS = [
    (augment, precision) for augment in (None, "batched") for precision in ("32-true", "bf16-mixed")
]


def other_path_note(plan: list[Any]) -> str | None:
    """One line when runs still to do have a record in their folder on another training path
    (made before this default, or on a machine with other bf16 support): how to use those."""
    found: set[tuple[str | None, str]] = set()
    for p in [p for p in plan if p.status != "ok"]:
        mine = (p.config.train.augment, p.config.train.precision)
        for augment, precision in [path for path in PATHS if path != mine]:
            train = dataclasses.replace(p.config.train, augment=augment, precision=precision)
            other = dataclasses.replace(p.config, train=train).run_id()
            if p.path.with_name(f"{other}.json").exists():
                found.add((augment, precision))
    if not found:
        return None
    flags = " or ".join(
        f"--augment {a or 'pil'} --precision {pr}" for a, pr in sorted(found, key=str)
    )
    return (
        f"note: runs of this grid have records in --out on another training path; "
        f"pass {flags} to use those instead"
    )
