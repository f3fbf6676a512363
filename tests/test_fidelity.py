"""Defaults as the references have them: each method's lr rule, SimSiam's projector, and the
evaluation normalisation taken from the method's own transform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torchvision.transforms as T
from lightly.transforms import SimSiamTransform
from lightly.transforms.multi_view_transform import MultiViewTransform
from lightly.transforms.utils import IMAGENET_NORMALIZE

from tests.conftest import register_method, tiny_spec
from tests.toy_method import Toy

IMAGENET = {k: list(v) for k, v in IMAGENET_NORMALIZE.items()}


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


OTHER_STATS = {"mean": [0.5, 0.25, 0.125], "std": [0.2, 0.3, 0.4]}


class ToyOtherStats(Toy):
    """The toy plugin with a transform that normalises with other statistics than ImageNet's."""

    name = "toy-stats"

    def build_transform(self, image_size: int):  # type: ignore[no-untyped-def]
        return SimSiamTransform(input_size=image_size, gaussian_blur=0.0, normalize=OTHER_STATS)


def _method(cls: type, **kw: object):  # type: ignore[no-untyped-def]
    from imbssl_bench.config import TrainConfig
    from imbssl_bench.methods.backbones import create_backbone

    backbone, dim = create_backbone("test_resnet", "cifar")
    return cls(backbone, dim, cls.make_args(kw), TrainConfig(), 10)


def test_input_normalization_is_the_methods_own() -> None:
    from imbssl_bench.methods import get_method

    assert _method(ToyOtherStats).input_normalization(16) == OTHER_STATS
    assert _method(get_method("random")).input_normalization(16) == IMAGENET
    for name in ("simclr", "simsiam", "byol", "moco", "dino", "swav", "vicreg", "supervised"):
        # every built-in normalises with ImageNet statistics: committed numbers do not move
        assert _method(get_method(name)).input_normalization(16) == IMAGENET, name

    class Bare(Toy):
        def build_transform(self, image_size: int):  # type: ignore[no-untyped-def]
            return MultiViewTransform([T.ToTensor(), T.ToTensor()])

    class Opaque(Toy):
        def build_transform(self, image_size: int):  # type: ignore[no-untyped-def]
            return lambda image: [image, image]

    assert _method(Bare).input_normalization(16) == {"mean": [0.0] * 3, "std": [1.0] * 3}
    with pytest.raises(ValueError, match="set `input_normalize` on Opaque"):
        _method(Opaque).input_normalization(16)


@pytest.fixture
def toy_stats_plugin(monkeypatch: pytest.MonkeyPatch):
    yield from register_method(monkeypatch, "toy-stats", "tests.test_fidelity:ToyOtherStats")


def test_evaluation_normalises_as_the_method_trains(
    tmp_path: Path, toy_stats_plugin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imbssl_bench.evaluation.protocol as evaluation
    from imbssl_bench.running.launchers import run_grid
    from imbssl_bench.running.plan import plan_grid

    seen = []

    def spy(*args, **kw):  # type: ignore[no-untyped-def]
        seen.append(args[5] if len(args) > 5 else kw["normalize"])
        return extract(*args, **kw)

    extract = evaluation.extract_features
    monkeypatch.setattr(evaluation, "extract_features", spy)
    (record,) = run_grid(plan_grid(tiny_spec(methods=(toy_stats_plugin,)), tmp_path))
    assert record["status"] == "ok", record["error"]
    assert seen and all(s == OTHER_STATS for s in seen)
    assert record["metrics"]["input_normalize"] == OTHER_STATS
