"""Every registered method: builds from the registry, takes a training step, loss finite."""

import pytest
import torch

from imbssl_bench.config import RunConfig, TrainConfig
from imbssl_bench.data import create_dataset
from imbssl_bench.errors import UserError
from imbssl_bench.methods import create_method, get_method, method_names
from imbssl_bench.methods.backbones import create_backbone
from imbssl_bench.training.loaders import train_loader

TRAINED = [name for name in method_names() if get_method(name).trains]


BUILTIN = {
    "simclr", "simsiam", "supervised", "random", "byol", "moco",
    "barlowtwins", "vicreg", "dcl", "dino", "swav", "nnclr",
}  # fmt: skip


def test_builtins_are_registered() -> None:
    assert set(method_names()) >= BUILTIN
    assert len(method_names()) >= 12


@pytest.mark.parametrize("name", TRAINED)
def test_one_step_has_a_finite_loss_and_moves_the_backbone(name: str) -> None:
    torch.manual_seed(0)
    backbone, dim = create_backbone("test_resnet", "cifar")
    method = create_method(name, backbone, dim, {}, TrainConfig(lr=0.05), num_classes=10)
    split = create_dataset("digits").load().train.subset(torch.arange(32).numpy())
    cfg = RunConfig(method=name, train=TrainConfig(batch_size=16))
    views, targets, _ = next(iter(train_loader(split, method, cfg, image_size=16)))
    assert len(views) >= 2 and views[0].shape == (16, 3, 16, 16)
    before = [p.detach().clone() for p in method.backbone.parameters()]
    optimizer = torch.optim.SGD(method.parameters(), lr=0.05)
    method.begin_step(0, 10, 0)
    state = {k: b.clone() for k, b in method.named_buffers()}  # queues, centres, BN stats
    per_example = None
    if method.has_per_example_loss():
        with torch.no_grad():
            per_example = method.per_example_loss(views, targets)
            for k, b in method.named_buffers():  # as before that call
                b.copy_(state[k])
        assert per_example.shape == (16,) and torch.isfinite(per_example).all()
    loss = method.training_loss(views, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    if per_example is not None:
        assert torch.allclose(loss, per_example.mean(), atol=1e-5)
    loss.backward()
    optimizer.step()
    after = method.backbone.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_per_example_losses_average_to_lightlys_batch_losses() -> None:
    """The per-example form must not change what the built-ins optimise."""
    import torch.nn.functional as F
    from lightly.loss import NegativeCosineSimilarity, NTXentLoss

    torch.manual_seed(0)
    split = create_dataset("digits").load().train.subset(torch.arange(16).numpy())
    cfg = RunConfig(method="simclr", train=TrainConfig(batch_size=16))
    for name in ("simclr", "simsiam", "supervised"):
        backbone, dim = create_backbone("test_resnet", "cifar")
        m = create_method(name, backbone, dim, {}, TrainConfig(lr=0.05), num_classes=10)
        views, targets, _ = next(iter(train_loader(split, m, cfg, image_size=16)))
        with torch.no_grad():
            mine = m.per_example_loss(views, targets).mean()
            if name == "simclr":
                z0, z1 = (m.projection_head(m.backbone(v)) for v in views)
                theirs = NTXentLoss(temperature=m.args.temperature)(z0, z1)
            elif name == "simsiam":
                z0, z1 = (m.projection_head(m.backbone(v)) for v in views)
                p0, p1 = m.prediction_head(z0), m.prediction_head(z1)
                ncs = NegativeCosineSimilarity()
                theirs = 0.5 * (ncs(p0, z1) + ncs(p1, z0))
            else:
                logits = m.classifier(m.backbone(torch.cat(views)))
                theirs = F.cross_entropy(logits, targets.repeat(2))
        assert torch.allclose(mine, theirs, atol=1e-5), name


def test_unknown_method_argument_is_a_user_error() -> None:
    with pytest.raises(UserError, match="has no option"):
        get_method("simclr").make_args({"temprature": 0.2})


BAD_VALUES = [
    ("simsiam", "proj_dim", -5, "option proj_dim = -5 must be > 0"),
    ("simclr", "temperature", 0.0, "option temperature = 0.0 must be > 0"),
    ("byol", "momentum", 1.0, "option momentum = 1.0 must be in [0, 1)"),
    ("moco", "memory_bank_size", 0, "option memory_bank_size = 0 must be > 0"),
    ("dino", "local_views", -1, "option local_views = -1 must be >= 0"),
    ("swav", "sinkhorn_epsilon", float("nan"), "option sinkhorn_epsilon = nan must be > 0"),
    ("supervised", "label_smoothing", 1.0, "option label_smoothing = 1.0 must be in [0, 1)"),
    ("vicreg", "mu_param", -1.0, "option mu_param = -1.0 must be >= 0"),
]


@pytest.mark.parametrize(("name", "key", "value", "message"), BAD_VALUES)
def test_option_values_are_checked_when_the_args_are_made(
    name: str, key: str, value: object, message: str
) -> None:
    with pytest.raises(UserError) as info:
        get_method(name).make_args({key: value})
    assert str(info.value) == f"method '{name}': {message}"


def test_a_plugins_own_args_check_is_a_user_error(toy_plugin: str) -> None:
    with pytest.raises(UserError, match=f"^method '{toy_plugin}': dim must be >= 1, not 0$"):
        get_method(toy_plugin).make_args({"dim": 0})


def test_broken_and_clashing_plugins_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import imbssl_bench.methods as registry

    fake = [
        EntryPoint("simsiam", "imbssl_bench.methods.simsiam:SimSiam", registry.GROUP),
        EntryPoint("broken", "no_such_module_xyz:Thing", registry.GROUP),
        EntryPoint("twice", "imbssl_bench.methods.simclr:SimCLR", registry.GROUP),
        EntryPoint("twice", "imbssl_bench.methods.simsiam:SimSiam", registry.GROUP),
    ]
    monkeypatch.setattr("imbssl_bench.registry.entry_points", lambda group: fake)
    registry.discover.cache_clear()
    try:
        infos = {(i.name, i.target): i for i in registry.list_methods()}
        assert "ModuleNotFoundError" in (infos["broken", "no_such_module_xyz:Thing"].error or "")
        assert registry.get_method("simsiam").name == "simsiam"  # the others still work
        with pytest.raises(UserError, match="failed to load"):
            registry.get_method("broken")
        with pytest.raises(UserError, match="registered by"):
            registry.get_method("twice")
    finally:
        registry.discover.cache_clear()
