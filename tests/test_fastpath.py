"""The default training path: batched views where the images are in memory, bf16 where the
device computes it natively, channels-last; explicit choices and non-training methods kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lightly.transforms.multi_view_transform import MultiViewTransform
from torchvision.transforms import v2 as T

from imbssl_bench.running.fastpath import cpu_computes_bf16, has_batched_views, path_note
from imbssl_bench.running.plan import plan_grid
from tests.conftest import TINY_FLAGS, register_method, tiny_spec
from tests.test_datasets import make_folder
from tests.toy_method import Toy

NATIVE = "bf16-mixed" if cpu_computes_bf16() else "32-true"


def paths(spec_kw: dict, tmp_path: Path, here: bool = True) -> list[tuple[str, str, bool]]:
    plan = plan_grid(tiny_spec(accelerator="cpu", **spec_kw), tmp_path, here=here)
    return [
        (p.config.train.augment or "pil", p.config.train.precision, p.config.runtime.channels_last)
        for p in plan
    ]


def test_an_unset_path_is_the_fast_one_and_auto_means_unset(tmp_path: Path) -> None:
    assert paths({"methods": ("simclr", "simsiam")}, tmp_path) == [("batched", NATIVE, True)] * 2
    unset = plan_grid(tiny_spec(accelerator="cpu"), tmp_path)[0]
    auto = plan_grid(tiny_spec(accelerator="cpu", augment="auto", precision="auto"), tmp_path)[0]
    assert auto.run_id == unset.run_id


def test_explicit_choices_are_kept_and_name_other_runs(tmp_path: Path) -> None:
    reference = {"augment": "pil", "precision": "32-true", "channels_last": False}
    assert paths(reference, tmp_path) == [("pil", "32-true", False)]
    assert paths({"augment": "pil"}, tmp_path) == [("pil", NATIVE, True)]
    ids = {plan_grid(tiny_spec(**kw), tmp_path)[0].run_id for kw in ({}, reference)}
    assert len(ids) == 2


def test_untrained_and_elsewhere_runs_keep_the_reference_path(tmp_path: Path) -> None:
    assert paths({"methods": ("random",)}, tmp_path) == [("pil", "32-true", True)]
    assert paths({}, tmp_path, here=False) == [("batched", "32-true", True)]


def test_streamed_images_get_pil_views(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "tree", {"a": 6, "b": 4}, size=16)
    spec = {"dataset": "imagefolder", "data_root": str(root), "ratios": (2.0,)}
    assert paths({**spec, "streaming": False}, tmp_path)[0][0] == "batched"
    assert paths({**spec, "streaming": True}, tmp_path)[0][0] == "pil"


class Perspective(Toy):
    name = "perspective"

    def build_transform(self, image_size: int):  # type: ignore[no-untyped-def]
        return MultiViewTransform([T.Compose([T.RandomPerspective()])] * 2)


@pytest.fixture
def perspective(monkeypatch: pytest.MonkeyPatch):
    yield from register_method(monkeypatch, "perspective", "tests.test_fastpath:Perspective")


def test_a_transform_without_a_batched_form_gets_pil_views(tmp_path: Path, perspective) -> None:
    assert not has_batched_views(perspective, "{}", 16)
    assert paths({"methods": (perspective, "simclr")}, tmp_path)[0][0] == "pil"


def test_precision_aliases_name_one_run(
    tmp_path: Path,
) -> None:
    (run,) = plan_grid(tiny_spec(), tmp_path)
    assert run.config.train.augment == "batched"
    (short,) = plan_grid(tiny_spec(precision="32"), tmp_path)
    (long,) = plan_grid(tiny_spec(precision="32-true"), tmp_path)
    assert short.run_id == long.run_id and short.config.train.precision == "32-true"


def test_the_plan_and_the_run_name_the_path(cli, tmp_path: Path) -> None:
    result = cli("run", "--method", "simclr,random", "--ratios", "1", *TINY_FLAGS,
                 "--accelerator", "cpu", "--out", str(tmp_path), "--dry-run", "--json")  # fmt: skip
    assert result.code == 0, result.err
    assert f"training path: batched views, {NATIVE}, channels-last" in result.err
    runs = json.loads(result.out)["runs"]
    assert [(r["augment"], r["precision"], r["channels_last"]) for r in runs] == [
        ("batched", NATIVE, True),
        ("pil", "32-true", True),
    ]
    assert path_note([]) is None


def test_records_on_another_path_are_pointed_to(cli, tmp_path: Path) -> None:
    args = ["run", "--method", "simclr", "--ratios", "1", *TINY_FLAGS, "--accelerator", "cpu",
            "--out", str(tmp_path), "--dry-run", "--json"]  # fmt: skip
    reference_spec = tiny_spec(methods=("simclr",), augment="pil", precision="32-true")
    (reference,) = plan_grid(reference_spec, tmp_path)
    assert "another training path" not in cli(*args).err
    reference.path.write_text("{}")  # a record made before the default became the fast path
    note = cli(*args).err
    assert "pass --augment pil --precision 32-true to use those instead" in note
