"""Defaults as the references have them: each method's lr rule, SimSiam's projector, and the
evaluation normalisation taken from the method's own transform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_standard_simsiam_lr_is_unscaled_and_simclr_is_linear(cli, tmp_path: Path) -> None:
    res = cli(
        "run", "--method", "simsiam,simclr", "--preset", "standard", "--dataset", "digits",
        "--out", tmp_path, "--dry-run", "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    runs = {r["method"]: r for r in json.loads(res.out)["runs"]}
    assert runs["simsiam"]["batch_size"] == 512 and runs["simsiam"]["lr"] == pytest.approx(0.06)
    assert runs["simclr"]["lr"] == pytest.approx(0.06 * 512 / 128)
    explicit = cli(
        "run", "--method", "simsiam", "--preset", "standard", "--dataset", "digits", "--lr", "0.1",
        "--out", tmp_path, "--dry-run", "--json",
    )  # fmt: skip
    assert json.loads(explicit.out)["runs"][0]["lr"] == pytest.approx(0.1)


def test_simsiam_projector_depth() -> None:
    import torch
    from lightly.models.modules import SimSiamProjectionHead

    from imbssl_bench.methods.simsiam import simsiam_projection_head

    two = simsiam_projection_head(8, 16, 2)
    assert (
        sum(isinstance(m, torch.nn.Linear) for m in two.modules()) == 2
    )  # the default: two layers, as Liu et al. and the CIFAR appendix
    torch.manual_seed(0)
    three = simsiam_projection_head(8, 16, 3)
    torch.manual_seed(0)
    lightly_head = SimSiamProjectionHead(8, 16, 16)
    x = torch.randn(4, 8)
    assert three.state_dict().keys() == lightly_head.state_dict().keys()
    assert torch.equal(three(x), lightly_head(x))  # proj_layers=3: the records before this


def test_simsiam_proj_layers_default_and_bad_value(cli, tmp_path: Path) -> None:
    res = cli("run", "--method", "simsiam", "--out", tmp_path, "--dry-run", "--json")
    assert json.loads(res.out)["runs"][0]["method_args"]["proj_layers"] == 2
    bad = cli("run", "--method", "simsiam", "--method-arg", "proj_layers=0", "--out", tmp_path,
              "--dry-run")  # fmt: skip
    assert bad.code == 2 and "proj_layers = 0 must be >= 1" in bad.err
    assert "Traceback" not in bad.err
