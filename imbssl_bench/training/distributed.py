"""Agreement between DDP processes for results computed outside the training step."""

from __future__ import annotations

from typing import TypeVar

import torch.distributed as dist

T = TypeVar("T")


def from_rank_zero(value: T) -> T:
    """Rank 0's `value` in every process (unchanged without DDP): for results that must be
    identical across processes, such as cluster assignments that decide the experts' data."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
