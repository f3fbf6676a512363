"""`ImageViews`: a training stage's per-image view hook, for remedies whose augmentation of an
image depends on that image's history (e.g. BCL's strength from its loss over epochs)."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor


class ImageViews(pl.Callback):
    """Subclass it and pass an instance as ``fit_stage(..., views=...)``:

    - `image_params(epoch)`: one number per image of the stage's split for `epoch` (a tensor
      of shape ``(n,)``), called once per epoch in the main process as the epoch's batches are
      drawn, after the previous epoch ended (its per-image losses are final then; with
      DataLoader workers or after a resume, before the epoch's ``on_train_epoch_start``: read
      only state that was final at the previous epoch's end). Its random draws are keyed by
      (seed, stage, epoch). Keep the state it reads and updates (a loss history, counters)
      in `state_dict` / `load_state_dict`, as tensors, lists and numbers (checkpoints load
      with ``weights_only``): the stage's epoch checkpoint saves it, so a resumed stage
      computes what the uninterrupted one did. Every process must return the same numbers
      under DDP.
    - `views(image, param)`: the views of one RGB PIL image given its number, in whichever
      DataLoader worker reads it; its random draws are keyed by (seed, stage, epoch, image).
      It must not read state that `image_params` changes (a worker holds a copy): all it needs
      comes in `param`.

    As a Lightning callback it may also use the other hooks (``on_train_epoch_end`` ...).
    A stage with this hook makes its views in DataLoader workers (PIL), whatever
    ``--augment`` says, and needs keyed draws."""

    def image_params(self, epoch: int) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement image_params")

    def views(self, image: Image.Image, param: float) -> Sequence[Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement views")


class EpochParams:
    """`ImageViews.image_params` called at most once per epoch in this process."""

    def __init__(self, hook: ImageViews) -> None:
        self.hook = hook
        self.cached: tuple[int, list[float]] | None = None

    def __call__(self, epoch: int) -> list[float]:
        if self.cached is None or self.cached[0] != epoch:
            numbers = torch.as_tensor(self.hook.image_params(epoch), dtype=torch.float64)
            self.cached = (epoch, numbers.cpu().tolist())
        return self.cached[1]
