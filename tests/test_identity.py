"""A run id names one experiment: a setting that changes the numbers changes the id, kept base
weights belong to their base record, a plugin's code is part of its runs' identity, and a
`matched` control follows the remedy it matches (issue 29)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from imbssl_bench.config import RunConfig, RuntimeConfig
from imbssl_bench.running.launchers import run_grid
from imbssl_bench.running.plan import plan_grid
from imbssl_bench.running.records import read_record, record_digest, write_record
from imbssl_bench.training.weights import file_sha256, record_of, save_weights
from tests.conftest import tiny_spec

# Every runtime field, with a value other than the default and why a run with it may keep
# its id: the fields whose effect is in the id (through a content hash) or changes no number
# (tested below); the others must change the id.
SAME_ID = {
    "data_root": ("/elsewhere", "the data's content fingerprint is in the id"),
    "accelerator": ("cpu", "the device, recorded in env.device, not an input"),
    "strategy": ("ddp", "how the processes talk; their number is in the id"),
    "num_workers": (2, "keyed draws: equal numbers (test below, tests/test_draws.py)"),
    "streaming": (True, "equal numbers (tests/test_streaming.py)"),
    "train_list": ("train.txt", "the lists' content is in the data fingerprint"),
    "test_list": ("test.txt", "the lists' content is in the data fingerprint"),
    "val_list": ("val.txt", "the lists' content is in the data fingerprint"),
    "split_file": ("split.txt", "the file's sha256 is in data.split_hash"),
    "transfer": (("digits",), "the targets and their fingerprints are in eval.transfer"),
    "logger": ("none", "logs only (test below)"),
    "monitor_every": (1, "watches only (test below)"),
}
CHANGES_ID = {"channels_last": False, "compile": True, "devices": 2, "num_nodes": 2,
              "sync_batchnorm": True}  # fmt: skip


def test_every_runtime_field_is_in_the_id_or_declared_harmless() -> None:
    fields = {f.name for f in dataclasses.fields(RuntimeConfig)}
    assert fields == set(SAME_ID) | set(CHANGES_ID)
    base = RunConfig(method="simclr")
    for name, value in {**{k: v for k, (v, _) in SAME_ID.items()}, **CHANGES_ID}.items():
        flipped = dataclasses.replace(base, runtime=RuntimeConfig(**{name: value}))
        assert (flipped.run_id() != base.run_id()) == (name in CHANGES_ID), name


def test_the_harmless_runtime_fields_change_no_number(tmp_path: Path) -> None:
    spec = tiny_spec(methods=("simclr",), ratios=(10.0,), epochs=2, augment="pil",
                     logger="none", monitor_every=0)  # fmt: skip
    (plain,) = run_grid(plan_grid(spec, tmp_path / "plain"))
    flipped = dataclasses.replace(
        spec, accelerator="cpu", num_workers=2, logger="csv", monitor_every=1
    )
    (other,) = run_grid(plan_grid(flipped, tmp_path / "other"))
    assert other["run_id"] == plain["run_id"]
    for key in ("linear_top1", "knn_top1", "fewshot_top1", "feature_std", "loss_curve"):
        assert other["metrics"][key] == plain["metrics"][key], key
    assert other["train"]["final_loss"] == plain["train"]["final_loss"]


def test_records_written_before_a_field_keep_their_ids() -> None:
    cfg = RunConfig(method="simclr")
    d = cfg.to_dict()
    for section, key in [("train", "draws"), ("runtime", "channels_last")]:
        del d[section][key]  # as in a record written before the field
    old = RunConfig.from_dict(d)
    assert (old.train.draws, old.runtime.channels_last) == ("stream", False)
    assert "draws" not in old.identity()["train"] and "runtime" not in old.identity()


# -- kept base weights belong to their base record


def _offline_rwsam(**kw: Any) -> Any:
    return tiny_spec(variants=("base", "rwsam"), variant_args={"rwsam_weights": "offline"},
                     epochs=2, ratios=(10.0,), n_max=24, batch_size=32, probe_per_class=20,
                     logger="none", monitor_every=0, **kw)  # fmt: skip


def test_a_deleted_base_record_takes_its_kept_weights_with_it(tmp_path: Path) -> None:
    first_base, first_rw = run_grid(plan_grid(_offline_rwsam(), tmp_path))
    kept = tmp_path / first_base["kept_weights"]["file"]
    assert first_base["kept_weights"]["sha256"] == file_sha256(kept)
    assert first_rw["diagnostics"]["rwsam"]["base_reused"] is True
    # a fix to the base: its record and its remedy's are deleted, the old weights stay
    for record in (first_base, first_rw):
        (tmp_path / f"{record['run_id']}.json").unlink()
    save_weights(kept, {"state_dict": {}, "train": {}})  # stands for the old, stale weights
    base, rw = run_grid(plan_grid(_offline_rwsam(), tmp_path))
    assert "reused_weights" not in base["train"] and base["train"]["steps"] > 0
    assert base["train"]["final_loss"] == first_base["train"]["final_loss"]  # trained again
    assert base["kept_weights"]["sha256"] == file_sha256(kept)
    assert rw["diagnostics"]["rwsam"]["base_reused"] is True
    assert rw["metrics"]["linear_top1"] == first_rw["metrics"]["linear_top1"]


def test_weights_without_their_base_record_are_not_used(tmp_path: Path) -> None:
    (base, _) = run_grid(plan_grid(_offline_rwsam(), tmp_path))
    record_of(tmp_path / base["kept_weights"]["file"]).unlink()  # the weights stay
    (alone,) = plan_grid(dataclasses.replace(_offline_rwsam(), variants=("rwsam",)), tmp_path)
    assert alone.status == "ok" and alone.base_weights is None
    (tmp_path / f"{alone.run_id}.json").unlink()
    (alone,) = plan_grid(dataclasses.replace(_offline_rwsam(), variants=("rwsam",)), tmp_path)
    assert alone.base_weights is None  # it trains its own base (its stage checkpoint resumes)


class FakeJob:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id

    def result(self) -> None:
        return None


class FakeExecutor:
    """Records what each submitted job was given (submitit's AutoExecutor's interface)."""

    submitted: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, folder: Any, cluster: str | None = None) -> None:
        self.cluster, self.params = "slurm", {}

    def update_parameters(self, **params: Any) -> None:
        self.params.update(params)

    def submit(self, fn: Any, run: dict[str, Any]) -> FakeJob:
        extra = dict(self.params.get("slurm_additional_parameters") or {})
        self.submitted.append((run["config"]["variant"], extra))
        return FakeJob(str(len(self.submitted)))


def test_slurm_starts_a_remedy_after_its_base_job_succeeded(tmp_path: Path, monkeypatch) -> None:
    submitit = pytest.importorskip("submitit")
    from imbssl_bench.running.launchers import SlurmOptions

    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    spec = tiny_spec(variants=("rwsam", "base"), variant_args={"rwsam_weights": "offline"})
    run_grid(plan_grid(spec, tmp_path), launcher="slurm", slurm=SlurmOptions())
    assert FakeExecutor.submitted == [
        ("base", {}),
        ("rwsam", {"dependency": "afterok:1", "kill-on-invalid-dep": "yes"}),
    ]


# -- a plugin's code is part of its identity; `matched` follows its remedy


def test_a_plugin_edited_without_a_version_bump_gets_new_run_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imbssl_bench.methods as methods
    from tests.conftest import register_method

    package = tmp_path / "editable" / "lab_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from tests.toy_method import Toy as _Toy\n\n\nclass Toy(_Toy):\n    name = 'labtoy'\n"
    )
    monkeypatch.syspath_prepend(str(package.parent))
    registered = register_method(monkeypatch, "labtoy", "lab_plugin:Toy")
    next(registered)
    spec = tiny_spec(methods=("labtoy",))
    (first,) = plan_grid(spec, tmp_path)
    assert first.config.plugins["method"]["source"]
    (package / "helpers.py").write_text("SCALE = 2\n")  # the plugin's code changes
    methods.discover.cache_clear()  # as a new `imbssl-bench run` process finds it
    (again,) = plan_grid(spec, tmp_path)
    assert again.run_id != first.run_id


def test_a_matched_control_follows_its_remedy_to_a_new_run_id(tmp_path: Path) -> None:
    spec = tiny_spec(variants=("sam", "matched"), ratios=(10.0,), n_max=24, batch_size=32,
                     probe_per_class=20, logger="none", monitor_every=0)  # fmt: skip
    sam, matched = run_grid(plan_grid(spec, tmp_path))
    assert matched["diagnostics"]["matched"]["to"] == [sam["run_id"]]
    path = tmp_path / f"{matched['run_id']}.json"
    old_sam = "digits-simsiam-sam-r1-s0-0123456789ab"  # the remedy before a new plugin version
    old = json.loads(path.read_text())
    old["diagnostics"]["matched"]["to"] = [old_sam]
    write_record(path, old)
    plan = plan_grid(spec, tmp_path)
    assert [p.status for p in plan] == ["ok", "ok"]  # nothing trains again...
    notes: list[str] = []
    run_grid(plan, Notes(notes))
    now = read_record(path)  # ...the control names the remedy's new run too, harness-written
    assert now["diagnostics"]["matched"]["to"] == sorted([old_sam, sam["run_id"]])
    assert now["metrics"] == matched["metrics"] and now["digest"] == record_digest(now)
    assert notes == [f"{matched['run_id']}: the matched control of {old_sam}, {sam['run_id']} now"]


class Notes:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def note(self, line: str) -> None:
        self.lines.append(line)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kw: None


def test_a_presets_name_is_a_label_not_an_input(tmp_path: Path) -> None:
    """Two presets resolved to the same training are one experiment."""
    tiny = tiny_spec(preset="tiny", epochs=8)
    (a,) = plan_grid(tiny, tmp_path)
    (b,) = plan_grid(dataclasses.replace(tiny, preset="quick"), tmp_path)
    assert (a.config.preset, b.config.preset) == ("tiny", "quick")
    assert a.run_id == b.run_id
