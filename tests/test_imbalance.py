import numpy as np
import pytest

from imbssl_bench.data.imbalance import (
    class_counts,
    class_ranks,
    exponential_profile,
    sample_subset,
)
from imbssl_bench.errors import UserError

CIFAR_POOL = [5000] * 10


@pytest.mark.parametrize(
    ("n_max", "ratio", "total"),
    [(5000, 10, 20_431), (5000, 100, 12_406), (4500, 100, 11_165), (5000, 1, 50_000)],
)
def test_cifar10_lt_totals(n_max: int, ratio: float, total: int) -> None:
    assert sum(class_counts(CIFAR_POOL, ratio, n_max)) == total


def test_cifar10_rho100_per_class() -> None:
    assert class_counts(CIFAR_POOL, 100, 5000) == [
        5000,
        2997,
        1796,
        1077,
        645,
        387,
        232,
        139,
        83,
        50,
    ]


def test_profile_is_monotone_and_hits_both_ends() -> None:
    counts = exponential_profile(1000, 50, 7)
    assert counts[0] == 1000 and counts[-1] == 20
    assert counts == sorted(counts, reverse=True)


def test_class_order_reverse_and_permutation() -> None:
    assert class_counts([100] * 3, 4, 100, class_order="reverse") == [25, 50, 100]
    assert class_counts([100] * 3, 4, 100, class_order="1,0,2") == [50, 100, 25]
    random_a = class_ranks(10, "random", seed=3)
    assert random_a == class_ranks(10, "random", seed=3)
    assert sorted(random_a) == list(range(10))


@pytest.mark.parametrize("order", ["0,1", "0,0,1", "a,b,c", "sideways"])
def test_bad_class_order(order: str) -> None:
    with pytest.raises(UserError, match="class-order"):
        class_counts([10] * 3, 2, 10, class_order=order)


def test_bad_ratio_and_n_max() -> None:
    with pytest.raises(UserError, match=">= 1"):
        class_counts([10] * 3, 0.5, 10)
    with pytest.raises(UserError, match="n_max"):
        class_counts([10] * 3, 2, 11)


def test_subset_is_seeded_and_exact() -> None:
    targets = np.repeat(np.arange(4), 50)
    counts = [50, 20, 8, 3]
    a = sample_subset(targets, counts, seed=0)
    assert np.bincount(targets[a]).tolist() == counts
    assert np.array_equal(a, sample_subset(targets, counts, seed=0))
    assert not np.array_equal(a, sample_subset(targets, counts, seed=1))
    assert len(np.unique(a)) == len(a)


def test_step_profile() -> None:
    counts = class_counts([100] * 4, 10, 100, profile="step")
    assert counts == [100, 100, 10, 10]
    assert class_counts([100] * 5, 4, 100, profile="step") == [100, 100, 25, 25, 25]


@pytest.mark.parametrize("ratio", [1, 2.5, 10, 100])
@pytest.mark.parametrize("profile", ["exponential", "step"])
def test_same_size_is_exact_and_keeps_the_shape(ratio: float, profile: str) -> None:
    base = class_counts(CIFAR_POOL, ratio, 5000, profile=profile)
    scaled = class_counts(CIFAR_POOL, ratio, 5000, profile=profile, total=12_406)
    assert sum(scaled) == 12_406
    assert scaled == sorted(scaled, reverse=True)  # the profile's order survives
    for a, b in zip(base, scaled, strict=True):
        assert abs(b - a * 12_406 / sum(base)) < 1 + 1e-9


def test_same_size_errors() -> None:
    with pytest.raises(UserError, match="one image per class"):
        class_counts(CIFAR_POOL, 10, 5000, total=5)
    with pytest.raises(UserError, match="lower --total"):
        class_counts([10] * 3, 1, 10, total=40)
    with pytest.raises(UserError, match="unknown profile"):
        class_counts([10] * 3, 1, 10, profile="zipf")


def test_same_size_keeps_order_when_rare_classes_are_raised_to_one() -> None:
    from imbssl_bench.data.imbalance import scale_to_total

    assert scale_to_total([100] * 5 + [1] * 5, 12, range(10)) == [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(2, 12))
        counts = sorted(rng.integers(1, 500, size=n).tolist(), reverse=True)
        total = int(rng.integers(n, 3 * sum(counts)))
        scaled = scale_to_total(counts, total, range(n))
        assert sum(scaled) == total and min(scaled) >= 1
        assert scaled == sorted(scaled, reverse=True), (counts, total, scaled)
