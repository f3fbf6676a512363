"""The methods built from Lightly's parts: per-image losses that average to Lightly's batch
losses, momentum teachers that move by the configured momentum, and one tiny grid each."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from imbssl_bench.config import RunConfig, TrainConfig
from imbssl_bench.data import create_dataset
from imbssl_bench.methods import create_method, method_names
from imbssl_bench.methods.backbones import create_backbone
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.training.callbacks import FrozenGradients
from imbssl_bench.training.loaders import train_loader
from tests.conftest import tiny_spec


def build(name: str, **args: object):
    torch.manual_seed(0)
    backbone, dim = create_backbone("test_resnet", "cifar")
    method = create_method(name, backbone, dim, dict(args), TrainConfig(lr=0.05), num_classes=10)
    split = create_dataset("digits").load().train.subset(torch.arange(16).numpy())
    cfg = RunConfig(method=name, train=TrainConfig(batch_size=16))
    views, targets, _ = next(iter(train_loader(split, method, cfg, image_size=16)))
    return method, views, targets


def test_per_image_losses_average_to_lightlys_batch_losses() -> None:
    from lightly.loss import (
        DCLLoss,
        DINOLoss,
        NegativeCosineSimilarity,
        NTXentLoss,
        SwaVLoss,
    )

    for name in ("byol", "moco", "dcl", "dino", "swav", "nnclr"):
        m, views, targets = build(name)
        state = copy.deepcopy(m.state_dict(keep_vars=False))
        banks = {k: b.clone() for k, b in m.named_buffers()}  # non-persistent ones too
        with torch.no_grad():
            mine = m.per_example_loss(views, targets).mean()
            m.load_state_dict(state)
            for k, b in m.named_buffers():
                b.copy_(banks[k])
            if name == "byol":
                p0, p1 = (m.prediction_head(m.projection_head(m.backbone(v))) for v in views)
                z0, z1 = (m.projection_head_momentum(m.backbone_momentum(v)) for v in views)
                ncs = NegativeCosineSimilarity()
                theirs = 0.5 * (ncs(p0, z1) + ncs(p1, z0))
            elif name == "moco":
                q0, q1 = (m.projection_head(m.backbone(v)) for v in views)
                k0, k1 = (m.projection_head_momentum(m.backbone_momentum(v)) for v in views)
                # both directions read the queue as it was before this batch
                a, b = (NTXentLoss(0.1, memory_bank_size=(4096, 128)) for _ in range(2))
                for loss in (a, b):
                    loss.memory_bank.bank.copy_(m.criterion.memory_bank.bank)
                theirs = 0.5 * (a(q0, k1) + b(q1, k0))
            elif name == "dcl":
                z0, z1 = (m.projection_head(m.backbone(v)) for v in views)
                theirs = DCLLoss(temperature=0.1)(z0, z1)
            elif name == "dino":
                t = [m.projection_head_momentum(m.backbone_momentum(v)) for v in views[:2]]
                s = [m.projection_head(m.backbone(v)) for v in views]
                lightly = DINOLoss(output_dim=2048, warmup_teacher_temp=0.04)
                lightly.center.copy_(m.criterion.center)
                theirs = lightly(t, s)
            elif name == "swav":
                scores = [
                    m.prototypes(torch.nn.functional.normalize(m.projection_head(m.backbone(v))))
                    for v in views
                ]
                theirs = SwaVLoss()(scores[:2], scores[2:]).squeeze()
            else:  # nnclr
                z0, z1 = (m.projection_head(m.backbone(v)) for v in views)
                p0, p1 = m.prediction_head(z0), m.prediction_head(z1)
                nn0, nn1 = m.memory_bank(z0, update=False), m.memory_bank(z1, update=False)
                ntx = NTXentLoss(0.5)
                theirs = 0.5 * (ntx(nn0, p1) + ntx(nn1, p0))
        assert torch.allclose(mine, theirs, atol=1e-5), (name, float(mine), float(theirs))


@pytest.mark.parametrize("name", ["byol", "moco", "dino"])
def test_the_teacher_moves_by_the_configured_momentum(name: str) -> None:
    m, _, _ = build(name, momentum=0.9)
    student = [p.detach().clone() for p in m.backbone.parameters()]
    teacher = [p.detach().clone() for p in m.backbone_momentum.parameters()]
    with torch.no_grad():  # make teacher and student differ
        for p in m.backbone.parameters():
            p.add_(1.0)
    m.begin_step(0, 10, 0)  # step 0 of the cosine schedule: momentum = the configured 0.9
    for t0, s0, t1 in zip(teacher, student, m.backbone_momentum.parameters(), strict=True):
        assert torch.allclose(t1, 0.9 * t0 + 0.1 * (s0 + 1.0), atol=1e-6)
    assert not any(p.requires_grad for p in m.backbone_momentum.parameters())
    m.begin_step(10, 10, 0)  # the end of the schedule: momentum 1, the teacher stays
    frozen = [p.detach().clone() for p in m.backbone_momentum.parameters()]
    m.begin_step(10, 10, 0)
    assert all(
        torch.equal(a, b) for a, b in zip(frozen, m.backbone_momentum.parameters(), strict=True)
    )


def test_swav_prototypes_stay_normalised_and_frozen_in_the_first_epoch() -> None:
    m, _, _ = build("swav")
    m.begin_step(0, 10, 0)
    w = m.prototypes.heads[0].weight
    assert torch.allclose(w.norm(dim=1), torch.ones(len(w)), atol=1e-5)
    assert w.requires_grad  # in the graph (DDP wants every parameter every step) ...
    assert any(p is w for p in m.frozen_parameters())  # ... but its gradient is dropped:
    w.grad = torch.ones_like(w)
    FrozenGradients().on_before_optimizer_step(None, m, None)  # type: ignore[arg-type]
    assert w.grad is None
    m.begin_step(5, 10, 1)
    assert w.requires_grad and not m.frozen_parameters()


def test_every_builtin_method_runs_one_tiny_epoch_and_writes_a_record(tmp_path: Path) -> None:
    spec = tiny_spec(methods=tuple(method_names()), ratios=(10.0,))
    records = run_grid(plan_grid(spec, tmp_path))
    assert [r["status"] for r in records] == ["ok"] * len(records), [
        (r["config"]["method"], r.get("error")) for r in records
    ]
    assert len(list(tmp_path.glob("*.json"))) == len(records) >= 12
    for r in records:
        if r["config"]["method"] != "random":
            assert r["train"]["final_loss"] is not None


def test_variants_run_with_a_momentum_method(tmp_path: Path) -> None:
    spec = tiny_spec(
        methods=("byol",),
        variants=("base", "cluster-distill", "rwsam"),
        variant_args={"rwsam_warmup": 0},
    )
    records = run_grid(plan_grid(spec, tmp_path))
    assert [r["status"] for r in records] == ["ok"] * 3, [r.get("error") for r in records]
    assert records[1]["diagnostics"]["base_reused"] is True


def test_batch_level_losses_are_refused_by_the_reweighting_variants(tmp_path: Path) -> None:
    from imbssl_bench.errors import UserError

    with pytest.raises(UserError, match="does not give them"):
        plan_grid(tiny_spec(methods=("barlowtwins",), variants=("rwsam",)), tmp_path)


def test_method_args_reach_the_methods_that_have_them(tmp_path: Path, cli) -> None:
    from tests.conftest import TINY_FLAGS

    args = ["run", "--method", "simclr,dcl", "--ratios", "1", "--dataset", "digits"]
    got = cli(
        *args,
        *TINY_FLAGS,
        "--method-arg",
        "temperature=0.3",
        "--out",
        tmp_path,
        "--dry-run",
        "--json",
    )
    assert got.code == 0, got.err
    planned = json.loads(got.out)["runs"]
    assert {p["method_args"]["temperature"] for p in planned} == {0.3}
    bad = cli(*args, *TINY_FLAGS, "--method-arg", "temprature=0.3", "--out", tmp_path)
    assert bad.code == 2 and "no method of this grid has it" in bad.err
    wrong = cli(*args, *TINY_FLAGS, "--method-arg", "out_dim=abc", "--out", tmp_path)
    assert wrong.code == 2 and "must be of type int" in wrong.err
    assert "Traceback" not in bad.err + wrong.err


def test_a_fixed_size_timm_model_gets_the_image_size() -> None:
    backbone, dim = create_backbone("vit_tiny_patch16_224", "timm", image_size=32)
    assert backbone(torch.randn(2, 3, 32, 32)).shape == (2, dim)
