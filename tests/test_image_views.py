"""The per-image view hook (`ImageViews`): each image's views from a number the hook gives it
per epoch, its state in the stage's checkpoint; and the views of an image drawn twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightly.transforms import SimCLRTransform

from imbssl_bench.data import create_dataset
from imbssl_bench.training.loaders import ViewsDataset
from tests.conftest import register_method, tiny_spec
from tests.test_draws import numbers, only_record, resumed_record


@pytest.fixture
def loss_brightness(monkeypatch: pytest.MonkeyPatch):
    target = "tests.views_variant:LOSS_BRIGHTNESS"
    yield from register_method(monkeypatch, "loss-brightness", target, kind="variants")


def test_a_hooked_stage_resumed_mid_epoch_equals_the_uninterrupted_run(
    loss_brightness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tiny_spec(methods=("simclr",), variants=(loss_brightness,), epochs=3)
    whole = only_record(spec, tmp_path / "whole")
    resumed = resumed_record(spec, tmp_path / "resumed", monkeypatch, ("bright", 2, 1))
    assert resumed["train"]["resumed_from_epoch"] == 2
    assert numbers(resumed) == numbers(whole)
    assert resumed["diagnostics"] == whole["diagnostics"]
    views = whole["diagnostics"]["views"]
    assert views["epochs"] == 3 and views["mean_factor"] > 1.1  # the last losses brightened


def test_an_image_drawn_twice_in_an_epoch_gets_other_views() -> None:
    split = create_dataset("digits").load().train.subset(np.arange(8))
    data = ViewsDataset(split, SimCLRTransform(input_size=16, gaussian_blur=0.0), keyed=(0, "s"))
    first, again, other = (
        data[key][0][0] for key in [(0, 5, 0, None), (0, 5, 0, None), (0, 5, 1, None)]
    )
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(data[(0, 5)][0][0], data[(0, 5)][0][0])  # unweighted keys: as before
