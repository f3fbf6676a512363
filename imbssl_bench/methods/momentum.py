"""Momentum (EMA) teachers for BYOL, MoCo and DINO, from Lightly's utilities."""

from __future__ import annotations

import copy
from typing import Any

from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of `module` to be moved by `ema_update` only. (Modules with weight norm,
    such as Lightly's DINO head, cannot be deep-copied: build a fresh one and load the
    student's ``state_dict``.)"""
    teacher = copy.deepcopy(module)
    deactivate_requires_grad(teacher)
    return teacher


def ema_update(
    pairs: list[tuple[nn.Module, nn.Module]], step: int, total_steps: int, start: float
) -> float:
    """Move each teacher towards its student: t <- m t + (1 - m) s, with m cosine-scheduled
    from `start` to 1 over the run (BYOL's schedule). Returns m."""
    m = cosine_schedule(min(step, total_steps), total_steps, start, 1.0)
    for student, teacher in pairs:
        update_momentum(student, teacher, m)
    return m


class MomentumTeacher:
    """Mixin for a `Method` with ``backbone_momentum`` and ``projection_head_momentum``
    teachers and a ``momentum`` arg: `before_step` moves both by `ema_update`."""

    def before_step(self) -> None:
        m: Any = self
        ema_update(
            [
                (m.backbone, m.backbone_momentum),
                (m.projection_head, m.projection_head_momentum),
            ],
            m.step,
            m.total_steps,
            m.args.momentum,
        )
