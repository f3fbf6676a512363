"""rwSAM: density weights, the SAM step, and the sam / rwsam / rwsam-oracle variants."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.variants.sam.density import class_weights, density_weights, knn_density
from imbssl_bench.variants.sam.sam import buffer_snapshot, buffers_as_before, sam_step

from .conftest import tiny_spec


def test_weights_are_inverse_to_density_on_a_toy_mixture() -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal([3, 0, 0, 0], 0.1, size=(200, 4))
    sparse = rng.normal([0, 3, 0, 0], 1.0, size=(20, 4))
    x = np.vstack([dense, sparse])
    density = knn_density(x, k=10)
    assert density[:200].mean() > density[200:].mean()
    w = density_weights(x, k=10, alpha=1.0, clip=(1e-9, 1e9))
    assert w.mean() == pytest.approx(1.0) and w[200:].mean() > 2 * w[:200].mean()
    assert np.all(density_weights(x, 10, 1.0, clip=(0.5, 2.0)) <= 2.0)


def test_oracle_weights_follow_inverse_class_count() -> None:
    w = class_weights(np.array([0, 0, 0, 1]), [3, 1])
    assert w.mean() == pytest.approx(1.0) and w[3] == pytest.approx(3 * w[0])


def toy() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    return model, torch.randn(16, 5), torch.randn(16, 1)


def per_example(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((model(x) - y) ** 2).squeeze(1)


def reference_sam(model, x, y, rho, adaptive, lr):
    """SAM / ASAM written out directly (Foret et al. 2021; Kwon et al. 2021, without eta)."""
    params = list(model.parameters())
    before = buffer_snapshot(model)
    grads = torch.autograd.grad(per_example(model, x, y).mean(), params)
    t = [p.abs() if adaptive else torch.ones_like(p) for p in params]
    norm = torch.sqrt(sum(((ti * g) ** 2).sum() for ti, g in zip(t, grads, strict=True)))
    with torch.no_grad():
        eps = [rho * ti * ti * g / (norm + 1e-12) for ti, g in zip(t, grads, strict=True)]
        start = [p.clone() for p in params]
        for p, e in zip(params, eps, strict=True):
            p.add_(e)
    with buffers_as_before(model, before):
        grads = torch.autograd.grad(per_example(model, x, y).mean(), params)
    with torch.no_grad():
        for p, s, g in zip(params, start, grads, strict=True):
            p.copy_(s - lr * g)


@pytest.mark.parametrize("adaptive", [False, True])
def test_with_all_weights_one_the_step_is_plain_sam(adaptive: bool) -> None:
    model, x, y = toy()
    expected, _, _ = toy()
    reference_sam(expected, x, y, rho=0.3, adaptive=adaptive, lr=0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ones = torch.ones(16)

    def plain() -> torch.Tensor:
        return per_example(model, x, y).mean()

    before = buffer_snapshot(model)
    sam_step(
        list(model.parameters()),
        lambda: (per_example(model, x, y) * ones).mean(),
        plain,
        opt,
        rho=0.3,
        adaptive=adaptive,
        perturbed_context=lambda: buffers_as_before(model, before),
    )
    for a, b in zip(model.state_dict().values(), expected.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_with_rho_zero_the_step_is_the_base_optimizer_step() -> None:
    model, x, y = toy()
    expected, _, _ = toy()
    base = torch.optim.SGD(expected.parameters(), lr=0.1, momentum=0.9)
    per_example(expected, x, y).mean().backward()
    base.step()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    weights = torch.rand(16)

    def plain() -> torch.Tensor:
        return per_example(model, x, y).mean()

    before = buffer_snapshot(model)
    sam_step(
        list(model.parameters()),
        lambda: (per_example(model, x, y) * weights).mean(),
        plain,
        opt,
        rho=0.0,
        adaptive=True,
        perturbed_context=lambda: buffers_as_before(model, before),
    )
    for a, b in zip(model.state_dict().values(), expected.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # parameters and batch-norm statistics alike


def test_batchnorm_statistics_come_from_the_unperturbed_pass_only() -> None:
    model, x, y = toy()
    expected, _, _ = toy()
    expected(x)  # one plain forward pass in train mode
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def plain() -> torch.Tensor:
        return per_example(model, x, y).mean()

    before = buffer_snapshot(model)
    sam_step(
        list(model.parameters()),
        lambda: per_example(model, x, y).mean(),
        plain,
        opt,
        rho=1.0,
        adaptive=False,
        perturbed_context=lambda: buffers_as_before(model, before),
    )
    for a, b in zip(model[1].buffers(), expected[1].buffers(), strict=True):
        assert torch.equal(a, b)


def test_parameters_are_restored_exactly_before_the_update() -> None:
    model, x, y = toy()
    start = [p.detach().clone() for p in model.parameters()]
    seen = []

    class Recorder:
        def zero_grad(self) -> None:
            for p in model.parameters():
                p.grad = None

        def step(self) -> None:
            seen.extend(p.detach().clone() for p in model.parameters())

    sam_step(
        list(model.parameters()),
        lambda: (per_example(model, x, y) * torch.rand(16)).mean(),
        lambda: per_example(model, x, y).mean(),
        Recorder(),
        rho=2.0,
        adaptive=True,
    )
    assert all(torch.equal(a, b) for a, b in zip(seen, start, strict=True))


def test_state_the_loss_advances_moves_once_per_step_and_both_passes_see_the_old_state() -> None:
    """A memory bank (or DINO's centre) is a buffer the loss updates: under SAM the perturbed
    pass must not see the current batch in it, and the step must advance it once."""

    class Banked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 1)
            self.register_buffer("bank", torch.zeros(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(self.bank.clone())
            with torch.no_grad():
                self.bank.add_(1.0)  # "enqueue"
            return self.lin(x).squeeze(1)

    seen: list[torch.Tensor] = []
    model = Banked()
    x = torch.randn(8, 3)
    before = buffer_snapshot(model)
    sam_step(
        list(model.parameters()),
        lambda: model(x).pow(2).mean(),
        lambda: model(x).pow(2).mean(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        rho=0.5,
        adaptive=False,
        perturbed_context=lambda: buffers_as_before(model, before),
    )
    assert [float(b[0]) for b in seen] == [0.0, 0.0]
    assert torch.equal(model.bank, torch.ones(4))


def test_variants_record_weights_and_rare_classes_weigh_more(tmp_path: Path) -> None:
    spec = tiny_spec(
        ratios=(100.0,),
        variants=("sam", "rwsam", "rwsam-oracle"),
        epochs=2,
        variant_args={"rwsam_warmup": 0},
    )
    sam, rw, oracle = run_grid(plan_grid(spec, tmp_path))
    assert [r["status"] for r in (sam, rw, oracle)] == ["ok"] * 3, rw.get("error")
    d = rw["diagnostics"]["rwsam"]
    assert d["refreshes"] == 2 and 0 < d["weights_fraction"] < 1
    assert sam["diagnostics"]["rwsam"]["weight_std"] == 0
    counts = np.array(rw["class_counts"])
    means = np.array(d["class_mean_weight"])
    order = np.argsort(-counts)
    assert means[order[-3:]].mean() > means[order[:3]].mean()  # rarest third vs most frequent
    assert oracle["diagnostics"]["rwsam"]["spearman_count_vs_weight"] == pytest.approx(-1.0)
    assert rw["config"]["variant_args"]["rwsam_refresh"] == 1
    for r in (sam, rw, oracle):  # a SAM step is two forward-backward passes
        c = r["compute"]
        assert (
            c["steps"] == c["base_steps"] == r["train"]["steps"] and c["passes"] == 2 * c["steps"]
        )
        assert c["steps_vs_base"] == 1.0 and c["passes_vs_base"] == 2.0
    assert (d["weights_mode"], d["in_loop_refreshes"]) == ("inloop", 2)


def test_only_offline_rwsam_starts_from_the_base_run(tmp_path: Path) -> None:
    from imbssl_bench.variants import get_variant

    inloop = plan_grid(tiny_spec(variants=("base", "rwsam")), tmp_path)
    offline = plan_grid(
        tiny_spec(variants=("base", "rwsam"), variant_args={"rwsam_weights": "offline"}), tmp_path
    )
    assert inloop[1].base_weights is None
    assert offline[1].base_weights == offline[0].base_weights is not None
    args = offline[1].config.variant_args
    assert args["rwsam_weights"] == "offline" and args["rwsam_warmup"] is None
    cost = get_variant("rwsam").cost
    assert cost is not None and cost(args, offline[1].config) == 3.0
    assert cost(inloop[1].config.variant_args, inloop[1].config) == 2.0


def test_offline_weights_come_once_from_the_base_features_and_stay_fixed(tmp_path: Path) -> None:
    import pytorch_lightning as pl

    from imbssl_bench.api import PretrainContext
    from imbssl_bench.data import create_dataset
    from imbssl_bench.methods import Method, create_method
    from imbssl_bench.methods.backbones import create_backbone
    from imbssl_bench.progress import NullReporter
    from imbssl_bench.training.trainer import speed_up
    from imbssl_bench.training.weights import (
        kept_weights_section,
        load_weights,
        record_of,
        weights_path,
    )
    from imbssl_bench.variants import get_variant
    from imbssl_bench.variants.sam.rwsam import RwSAMArgs, kde_weights, weight_summary

    spec = tiny_spec(
        variants=("rwsam",), variant_args={"rwsam_weights": "offline"}, epochs=2, batch_size=32
    )
    cfg = plan_grid(spec, tmp_path)[0].config
    split = create_dataset("digits").load().train.subset(np.arange(96))

    def make() -> Method:
        backbone, dim = create_backbone(cfg.model.backbone, cfg.model.stem, image_size=16)
        return create_method(cfg.method, backbone, dim, cfg.method_args, cfg.train, 10)

    kept = weights_path(tmp_path, "b")

    def pretrain(config: RunConfig = cfg):  # type: ignore[no-untyped-def]  # as `execute` does
        pl.seed_everything(config.seed, workers=True, verbose=False)
        ctx = PretrainContext(config, make(), split, 16, NullReporter(), make, kept)
        return get_variant(config.variant).pretrain(ctx)

    first = pretrain()  # trains its base stage itself: it keeps no weights
    assert not kept.exists()
    pretrain(dataclasses.replace(cfg, variant="base", variant_args={}))  # the base run keeps...
    record = {"status": "ok", "kept_weights": kept_weights_section(kept)}
    record_of(kept).write_text(json.dumps(record))
    again = pretrain()  # ...and the variant reuses them while the base's record names them
    d = first.diagnostics["rwsam"]
    assert (d["weights_mode"], d["refreshes"], d["in_loop_refreshes"]) == ("offline", 1, 0)
    assert (d["base_reused"], again.diagnostics["rwsam"]["base_reused"]) == (False, True)
    base = make()
    base.load_state_dict(load_weights(kept)["state_dict"])
    speed_up(base, cfg)  # the memory format (channels-last by default) the run's model has
    ctx = PretrainContext(cfg, base, split, 16, NullReporter())
    w = kde_weights(ctx.features(base.backbone), RwSAMArgs(**cfg.variant_args))
    w = w.astype(np.float32).astype(np.float64)  # as the module's float32 buffer holds them
    expected = weight_summary(w, split.targets.numpy(), 10)
    assert {k: d[k] for k in expected} == expected  # the final weights: the base's, unchanged
    steps, base_steps = first.train["steps"], d["base"]["steps"]
    assert first.compute is not None and again.compute is not None
    assert (first.compute.steps, first.compute.passes) == (
        base_steps + steps,
        base_steps + 2 * steps,
    )
    # a reused base stage is counted too: the record states what the result cost
    assert (again.compute.steps, again.compute.passes) == (
        base_steps + steps,
        base_steps + 2 * steps,
    )
    base_run = {k: v for k, v in again.diagnostics["rwsam"]["base"].items() if k != "wall_s"}
    assert base_run == {k: v for k, v in d["base"].items() if k != "wall_s"}  # another process
    kept, trained = again.backbone.state_dict(), first.backbone.state_dict()
    assert all(torch.equal(kept[k], trained[k]) for k in trained)  # a kept base changes nothing


def test_the_learning_rate_follows_the_cosine_schedule_under_manual_optimisation() -> None:
    from imbssl_bench.config import RunConfig, TrainConfig
    from imbssl_bench.data import create_dataset
    from imbssl_bench.methods import create_method
    from imbssl_bench.methods.backbones import create_backbone
    from imbssl_bench.training.trainer import fit
    from imbssl_bench.variants.sam.sam import SAMModule

    backbone, dim = create_backbone("test_resnet", "cifar")
    train = TrainConfig(epochs=2, batch_size=16, lr=0.1)
    method = create_method("simsiam", backbone, dim, {}, train, num_classes=10)
    module = SAMModule(method, torch.ones(32), rho=0.05, adaptive=False)
    split = create_dataset("digits").load().train.subset(np.arange(32))
    cfg = RunConfig(method="simsiam", train=train)
    stats = fit(module, split, cfg, image_size=16)
    assert stats.steps == 4 and stats.final_loss is not None
    (optimizer,) = module.trainer.optimizers
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine end


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"rwsam_warmup": 5}, "leaves no epoch with KDE weights"),
        ({"rwsam_alpha": float("nan")}, "rwsam_alpha = nan must be"),
        ({"sam_rho": -1.0}, "sam_rho = -1.0 must be"),
        ({"rwsam_weights": "file"}, "rwsam_weights must be inloop or offline, not 'file'"),
        ({"rwsam_weights": "offline", "rwsam_refresh": 2}, "offline computes the weights once"),
    ],
)
def test_bad_rwsam_options_are_user_errors(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        plan_grid(tiny_spec(variants=("rwsam",), variant_args=kw), tmp_path)


def test_methods_without_per_example_losses_are_refused(tmp_path: Path, toy_plugin: str) -> None:
    with pytest.raises(UserError, match="does not give them"):
        plan_grid(tiny_spec(methods=(toy_plugin,), variants=("rwsam",)), tmp_path)
