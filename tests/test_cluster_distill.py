"""The cluster-distill variant: clustering, merging, distillation, and the whole stage chain."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import imbssl_bench.variants.cluster_distill as cd
from imbssl_bench.clustering import cluster_diagnostics, kmeans, merge_small
from imbssl_bench.distill import ClusterAdapters, distill_loss
from imbssl_bench.errors import UserError
from imbssl_bench.grid import plan_grid, run_grid
from imbssl_bench.methods import Method
from imbssl_bench.weights import load_weights

from .conftest import tiny_spec


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 16)) * 4
    labels = np.repeat(np.arange(4), [100, 60, 30, 10])
    return (centres[labels] + rng.normal(size=(len(labels), 16))).astype(np.float32), labels


def test_kmeans_is_seeded_and_recovers_clear_clusters() -> None:
    x, labels = blobs()
    first, _ = kmeans(x, 4, seed=3)
    again, _ = kmeans(x, 4, seed=3)
    assert np.array_equal(first, again)
    d = cluster_diagnostics(first, labels)
    assert d["nmi"] > 0.95 and d["purity"] > 0.95 and sum(d["cluster_sizes"]) == len(x)


def test_small_clusters_merge_into_their_nearest() -> None:
    x, _ = blobs()
    assign, centroids = kmeans(x, 4, seed=0)
    merged = merge_small(assign, centroids, min_size=20)
    sizes = np.bincount(merged)
    assert len(sizes) == 3 and sizes.min() >= 20  # the 10-image blob joined another
    assert np.array_equal(merge_small(assign, centroids, min_size=1), assign)  # nothing to do


def test_distillation_loss_goes_down_on_a_toy_case() -> None:
    torch.manual_seed(0)
    experts = [nn.Linear(8, 8), nn.Linear(8, 8)]
    student, adapters = nn.Linear(8, 8), ClusterAdapters(2, 8)
    opt = torch.optim.SGD([*student.parameters(), *adapters.parameters()], lr=0.5)
    x, cluster = torch.randn(64, 8), torch.arange(64) % 2
    with torch.no_grad():
        target = torch.stack([experts[int(c)](row) for row, c in zip(x, cluster, strict=True)])
    losses = []
    for _ in range(200):
        loss = distill_loss(student(x), target, cluster, adapters)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def spec(**kw: object):
    return tiny_spec(
        **{"ratios": (10.0,), "variants": ("base", "cluster-distill"), "clusters": 3, **kw}
    )


def test_base_trained_once_experts_start_from_it(tmp_path: Path, monkeypatch) -> None:
    calls, modules = [], []
    real_fit = cd.fit

    def spy(module, split, cfg, *args, **kwargs):
        state = {k: v.clone() for k, v in module.state_dict().items()}
        calls.append((type(module).__name__, isinstance(module, Method), state, len(split)))
        modules.append(module)
        return real_fit(module, split, cfg, *args, **kwargs)

    monkeypatch.setattr(cd, "fit", spy)
    plan = plan_grid(spec(), tmp_path)
    assert [p.config.variant for p in plan] == ["base", "cluster-distill"]
    assert plan[0].base_weights == plan[1].base_weights is not None
    base, distilled = run_grid(plan)
    assert base["status"] == distilled["status"] == "ok", distilled.get("error")
    d = distilled["diagnostics"]
    assert d["base_reused"] is True  # the base run's weights: the base is trained once
    base_state = load_weights(plan[0].base_weights)["state_dict"]
    experts = [c for c in calls if c[1]]
    assert len(experts) == len(d["cluster_sizes"]) == len(d["experts"]) >= 1
    for _, _, state, _ in experts:
        assert all(torch.equal(state[k], base_state[k]) for k in base_state)
    assert sum(n for *_, n in experts) == distilled["n_train"] == sum(d["cluster_sizes"])
    assert calls[-1][0] == "DistillStudent"
    before = {k: v for k, v in calls[-1][2].items() if k.startswith("experts.")}
    after = modules[-1].state_dict()
    assert before and all(torch.equal(before[k], after[k]) for k in before)  # frozen teachers
    assert 0 <= d["nmi"] <= 1 and 0 < d["purity"] <= 1
    assert d["compute_vs_base"]["steps"] > 1 and d["student"]["init"] == "base"
    assert distilled["config"]["variant_args"]["clusters"] == 3
    assert base["config"]["variant_args"] == {}
    assert 0 <= distilled["metrics"]["linear_top1"] <= 1


def test_reusing_the_base_changes_nothing_and_only_a_grid_with_base_keeps_weights(
    tmp_path: Path,
) -> None:
    """Alone in a grid, the variant trains its base itself and keeps no weights (the stage's
    checkpoint resumes it); next to its base run, it reuses the weights that run kept."""
    (alone,) = plan_grid(spec(variants=("cluster-distill",)), tmp_path / "alone")
    assert alone.base_weights is None
    (first,) = run_grid([alone])
    assert first["status"] == "ok" and first["diagnostics"]["base_reused"] is False
    assert sorted(p.name for p in (tmp_path / "alone").iterdir()) == [f"{alone.run_id}.json"]
    _, second = run_grid(plan_grid(spec(), tmp_path / "both"))
    assert second["run_id"] == first["run_id"] and second["diagnostics"]["base_reused"] is True
    assert second["metrics"]["linear_top1"] == first["metrics"]["linear_top1"]
    assert second["diagnostics"]["cluster_sizes"] == first["diagnostics"]["cluster_sizes"]
    assert len(list((tmp_path / "both" / "weights").iterdir())) == 1


def test_works_for_a_plugin_method(tmp_path: Path, toy_plugin: str) -> None:
    records = run_grid(plan_grid(spec(methods=(toy_plugin, "simclr")), tmp_path))
    assert [r["status"] for r in records] == ["ok"] * 4, [r.get("error") for r in records]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"methods": ("random",)}, "needs a method that trains"),
        ({"variants": ("base",)}, "--clusters is an option of variant cluster-distill"),
        ({"student_init": "magic"}, "--student-init must be one of base, scratch"),
    ],
)
def test_bad_options_are_user_errors(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        plan_grid(spec(**kw), tmp_path)
