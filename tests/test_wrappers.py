"""`ImbalancedDataset`: the harness's imbalanced subset of any labelled dataset, usable alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imbssl_bench import ImbalancedDataset
from imbssl_bench.data import create_dataset, subset_indices
from imbssl_bench.running.plan import plan_grid

from .conftest import tiny_spec


class Labelled(torch.utils.data.Dataset):
    """A map-style dataset with a torchvision-style ``targets`` list."""

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = targets.tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[int, int]:
        return i, self.targets[i]


def test_the_same_subset_as_a_grid_run(tmp_path: Path) -> None:
    targets = create_dataset("digits").train_targets()
    spec = tiny_spec(ratios=(10.0,), seeds=(3,), class_order="reverse")
    (run,) = plan_grid(spec, tmp_path)
    lt = ImbalancedDataset(Labelled(targets), 10, seed=3, class_order="reverse")
    assert lt.class_counts == run.class_counts
    assert lt.indices == subset_indices(targets, run.class_counts, 3).tolist()  # as `execute`
    assert lt[0] == (lt.indices[0], targets[lt.indices[0]])
    assert np.bincount(lt.targets).tolist() == lt.class_counts


def test_torchvision_image_folder_and_a_total(tmp_path: Path) -> None:
    from torchvision.datasets import ImageFolder

    for c in range(3):
        (tmp_path / f"class{c}").mkdir()
        for i in range(8):
            Image.new("RGB", (4, 4), (c * 80, i * 20, 0)).save(tmp_path / f"class{c}" / f"{i}.png")
    folder = ImageFolder(tmp_path)
    lt = ImbalancedDataset(folder, ratio=4, profile="step", seed=1)
    assert lt.class_counts == [8, 2, 2] and len(lt) == 12
    image, label = lt[len(lt) - 1]
    assert image.size == (4, 4) and label == 2
    same_size = ImbalancedDataset(folder, ratio=1, total=9)
    assert same_size.class_counts == [3, 3, 3]


def test_missing_or_bad_labels_say_what_to_pass() -> None:
    data = torch.utils.data.TensorDataset(torch.zeros(4, 1))
    with pytest.raises(ValueError, match="pass labels="):
        ImbalancedDataset(data, 2)
    with pytest.raises(ValueError, match="3 labels for a dataset of 4 items"):
        ImbalancedDataset(data, 2, labels=[0, 1, 1])
    with pytest.raises(ValueError, match="every class present"):
        ImbalancedDataset(data, 2, labels=[0, 2, 2, 0])
