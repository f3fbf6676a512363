import numpy as np
import pytest

from imbssl_bench.evaluation.metrics import group_split, per_class_accuracy, summarize


def test_per_class_accuracy_hand_case() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2, 1, 1])
    assert per_class_accuracy(y_true, y_pred, 3) == [0.75, 0.5, 0.5]


def test_class_without_test_images_is_nan() -> None:
    acc = per_class_accuracy(np.array([0, 0]), np.array([0, 1]), 2)
    assert acc[0] == 0.5 and np.isnan(acc[1])


@pytest.mark.parametrize(
    ("n", "sizes"), [(10, (4, 3, 3)), (11, (4, 4, 3)), (100, (34, 33, 33)), (3, (1, 1, 1))]
)
def test_group_sizes(n: int, sizes: tuple[int, int, int]) -> None:
    groups = group_split(list(range(n, 0, -1)))
    assert tuple(len(groups[g]) for g in ("many", "medium", "few")) == sizes


def test_groups_follow_counts_not_indices() -> None:
    counts = [10, 500, 40, 300, 20, 100]
    assert group_split(counts) == {"many": [1, 3], "medium": [2, 5], "few": [0, 4]}


def test_ties_follow_the_profile_rank() -> None:
    counts = [10, 10, 10, 1, 1, 1]
    ranks = [5, 4, 3, 2, 1, 0]  # class 5 is the designed most frequent among the 1s
    groups = group_split(counts, ranks)
    assert groups == {"many": [1, 2], "medium": [0, 5], "few": [3, 4]}


def test_summarize_hand_case() -> None:
    counts = [100, 50, 10]  # many = class 0, medium = 1, few = 2
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 0, 0, 0])
    s = summarize(y_true, y_pred, counts)
    assert s["top1"] == pytest.approx(3 / 6)
    assert s["per_class_acc"] == [1.0, 0.5, 0.0]
    assert s["group_acc"] == {"many": 1.0, "medium": 0.5, "few": 0.0}
    assert s["per_class_std"] == pytest.approx(np.std([1.0, 0.5, 0.0]))
