"""The cluster-distill variant: clustering, merging, distillation, and the whole stage chain."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import imbssl_bench.variants.cluster_distill.cluster_distill as cd
from imbssl_bench.config import ImbalanceConfig, RunConfig, RuntimeConfig, TrainConfig
from imbssl_bench.data import ImageSplit
from imbssl_bench.errors import UserError
from imbssl_bench.methods import Method, create_method
from imbssl_bench.methods.backbones import create_backbone
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.training.loaders import DeviceViewsData, even_batch_count, train_loader
from imbssl_bench.training.weights import load_weights
from imbssl_bench.variants.cluster_distill.clustering import (
    cluster_diagnostics,
    kmeans,
    merge_small,
)
from imbssl_bench.variants.cluster_distill.distill import ClusterAdapters, distill_loss

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


@pytest.mark.parametrize("n", [2, 3, 5, 129, 257])
def test_expert_batches_show_every_image_every_pass_never_one_alone(n: int) -> None:
    """An expert's loader (``drop_last=False``), on both data paths: each epoch every image of
    the cluster once, in batches of at most the config's 128 (or of 2-3 where fewer images
    than that would leave one alone), sizes within one image of each other."""
    split = ImageSplit(torch.zeros(n, 3, 16, 16, dtype=torch.uint8), torch.zeros(n).long())
    backbone, dim = create_backbone("test_resnet", "cifar")
    method = create_method("simsiam", backbone, dim, {}, TrainConfig(), num_classes=1)
    cfg = RunConfig(method="simsiam", train=TrainConfig(batch_size=128))
    pil = train_loader(split, method, cfg, 16, drop_last=False)
    device = DeviceViewsData(split, None, min(128, n), cfg.seed, drop_last=False)  # type: ignore[arg-type]
    for loader in (pil, device.train_dataloader()):
        for _ in range(2):  # passes
            sizes, seen = [], []
            for _views, _targets, index in loader:
                sizes.append(len(index))
                seen += index.tolist()
            assert sorted(seen) == list(range(n))
            assert min(sizes) >= 2 and max(sizes) - min(sizes) <= 1
            assert max(sizes) <= 128 and len(sizes) == max(1, min(-(-n // 128), n // 2))


@pytest.mark.parametrize(
    ("n", "batch", "world"),
    [(10, 4, 2), (9, 4, 2), (17, 8, 2), (129, 128, 4), (7, 6, 3), (5, 5, 2)],
)
def test_ddp_rank_shares_cover_every_image_but_n_mod_world(n: int, batch: int, world: int) -> None:
    """Under DDP the processes' slices of the even batches (each rank's own sampler, same
    seed) together see every image but ``n % world`` each pass, once, at least two per
    process per step; the recorded batch is the largest one trained."""
    from imbssl_bench.training.loaders import EvenBatches, _RankShare, even_batch_size

    ranks = [_RankShare(EvenBatches(n, batch, 0, world), r, world) for r in range(world)]
    for _ in range(2):  # passes
        steps = list(zip(*(list(rank) for rank in ranks), strict=True))
        assert len(steps) == even_batch_count(n, batch, 2 * world)
        seen = [i for step in steps for share in step for i in share]
        assert len(seen) == len(set(seen)) == n - n % world
        assert all(len({len(s) for s in step}) == 1 and len(step[0]) >= 2 for step in steps)
        assert even_batch_size(n, batch, world) == max(len(step[0]) * world for step in steps)


@pytest.mark.parametrize("world", [1, 2])
def test_min_cluster_size_fits_every_process_two_images(world: int) -> None:
    cfg = RunConfig(method="simclr", runtime=RuntimeConfig(devices=world))
    ok = cd.resolve_args(cd.ClusterDistillArgs(min_cluster_size=2 * world), cfg, 10)
    assert ok.min_cluster_size == 2 * world
    with pytest.raises(UserError, match=f"min_cluster_size must be >= {2 * world}") as err:
        cd.resolve_args(cd.ClusterDistillArgs(min_cluster_size=2 * world - 1), cfg, 10)
    assert "\n" not in str(err.value)


def spec(variant_args: dict | None = None, **kw: object):
    options = {"clusters": 3, **(variant_args or {})}
    return tiny_spec(
        **{
            "ratios": (10.0,),
            "variants": ("base", "cluster-distill"),
            "variant_args": options,
            **kw,
        }
    )


def test_base_trained_once_experts_start_from_it_take_their_steps_and_move(
    tmp_path: Path, monkeypatch
) -> None:
    import imbssl_bench.api.context as api

    calls, modules = [], []
    real_fit = api.fit

    def spy(module, split, cfg, *args, **kwargs):
        if kwargs["checkpoint_dir"].parent.name != distilled_id:
            return real_fit(module, split, cfg, *args, **kwargs)  # the base run's own stage
        state = {k: v.clone() for k, v in module.state_dict().items()}
        calls.append((type(module).__name__, isinstance(module, Method), state, len(split)))
        modules.append(module)
        return real_fit(module, split, cfg, *args, **kwargs)

    monkeypatch.setattr(api, "fit", spy)  # every stage goes through PretrainContext.fit_stage
    # experts of several passes; supervised: at this scale (16 px, 0.4M parameters, ~8 steps
    # per expert) an SSL loss's fall is within the augmentation noise, while what is tested
    # here (the experts' stage trains) does not depend on the method
    plan = plan_grid(spec({"student_epochs": 1}, methods=("supervised",), epochs=3), tmp_path)
    assert [p.config.variant for p in plan] == ["base", "cluster-distill"]
    distilled_id = plan[1].run_id
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
    assert d["student"]["init"] == "base"
    # the experts' budget: at least the base's steps / experts each, in whole passes
    budget = -(-d["base"]["steps"] // len(d["experts"]))
    assert d["expert_budget"]["steps_each"] == budget
    # the online kNN watches the student (the result), not the experts; the log has every stage
    monitor = distilled["metrics"]["knn_monitor"]
    assert monitor["stage"] == "student" and list(monitor["curves"]) == ["student"]
    log = (tmp_path / "logs" / distilled["run_id"] / "metrics.csv").read_text()
    stages = {line.split(",")[log.splitlines()[0].split(",").index("stage")] for line in
              log.splitlines()[1:]}  # fmt: skip
    assert stages == {"student", *(f"expert-{k}" for k in range(len(d["experts"])))}
    for row in d["experts"]:
        passes = even_batch_count(row["images"], min(64, row["images"]))
        assert row["batch_size"] == -(-row["images"] // passes)
        assert row["step_budget"] == budget <= row["steps"] == row["epochs"] * passes
        assert row["steps"] < budget + passes  # no more passes than the budget needs
        assert row["epochs"] >= 2 and row["loss_end"] < row["loss_start"]  # experts learn
    # ... and move away from the base: by more than 10x what weight decay alone would do
    lr, decay = distilled["config"]["train"]["lr"], distilled["config"]["train"]["weight_decay"]
    names = [k for k, _ in modules[-1].student.backbone.named_parameters()]
    base_w = torch.cat([base_state[f"backbone.{k}"].flatten() for k in names])
    experts_fitted = [m for m in modules if isinstance(m, Method)]
    for expert, row in zip(experts_fitted, d["experts"], strict=True):
        w = torch.cat([p.detach().flatten() for p in expert.backbone.parameters()])
        moved = float((w - base_w).norm() / base_w.norm())
        assert moved > 10 * row["steps"] * lr * decay
    assert d["compute_vs_base"]["steps"] > 2 and d["compute_vs_base"]["passes"] > 1.5
    args = distilled["config"]["variant_args"]
    assert args["clusters"] == 3 and args["min_cluster_size"] == 32
    assert args["expert_steps"] is None  # the default: known after clustering; recorded above
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
    kept = sorted(p.name for p in (tmp_path / "alone").iterdir())
    assert kept == [f"{alone.run_id}.json", "logs"]  # no weights, no checkpoints; the logs stay
    _, second = run_grid(plan_grid(spec(), tmp_path / "both"))
    assert second["run_id"] == first["run_id"] and second["diagnostics"]["base_reused"] is True
    assert second["metrics"]["linear_top1"] == first["metrics"]["linear_top1"]
    assert second["diagnostics"]["cluster_sizes"] == first["diagnostics"]["cluster_sizes"]
    assert len(list((tmp_path / "both" / "weights").iterdir())) == 1


def test_works_for_a_plugin_method(tmp_path: Path, toy_plugin: str) -> None:
    records = run_grid(plan_grid(spec(methods=(toy_plugin, "simclr")), tmp_path))
    assert [r["status"] for r in records] == ["ok"] * 4, [r.get("error") for r in records]


def test_planned_cost_counts_base_experts_and_student() -> None:
    cfg = RunConfig(method="simclr", train=TrainConfig(epochs=10, batch_size=100))
    args = {"clusters": 4, "expert_steps": None, "student_epochs": 5}
    assert cd.planned_cost(args, cfg) == 1 + 1 + 0.5  # experts: their budget, the base's steps
    with pytest.raises(UserError, match="needs the subset size; pass --total"):
        cd.planned_cost({**args, "expert_steps": 50}, cfg)
    same_size = dataclasses.replace(cfg, imbalance=ImbalanceConfig(total=1000))  # 100 base steps
    assert cd.planned_cost({**args, "expert_steps": 50}, same_size) == 1 + 4 * 50 / 100 + 0.5


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"methods": ("random",)}, "needs a method that trains"),
        ({"variants": ("base",)}, "'clusters' .* belongs to variant cluster-distill, which"),
        ({"variant_args": {"student_init": "magic"}}, "student_init must be one of base, scr"),
        ({"variant_args": {"min_cluster_size": 1}}, "min_cluster_size must be >= 2"),
        ({"variant_args": {"no_such": 1}}, "no variant of this grid has it .*cluster-distill: c"),
    ],
)
def test_bad_options_are_user_errors(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        plan_grid(spec(**kw), tmp_path)
