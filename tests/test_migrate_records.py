"""benchmarks/migrate_records.py: records keep their numbers and get today's run ids."""

import importlib.util
import json
from pathlib import Path

import pytest

from imbssl_bench.config import DataConfig, RunConfig
from imbssl_bench.data import create_dataset
from imbssl_bench.running.records import read_record, write_record

from .test_datasets import make_folder
from .test_records import make_record

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "migrate_records.py"


@pytest.fixture(scope="module")
def migrate():
    spec = importlib.util.spec_from_file_location("migrate_records", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _train(cfg: RunConfig) -> dict:
    """What `base` trains on make_record's 9 images: the batch capped at 9, 1 step per epoch."""
    e = cfg.train.epochs
    return {"epochs": e, "steps": e, "batch_size": 9, "final_loss": 0.1, "wall_s": 3.0}


def _write(folder: Path, cfg: RunConfig) -> Path:
    record = make_record(
        cfg.run_id(), config=cfg.to_dict(), config_hash=cfg.config_hash(), train=_train(cfg)
    )
    path = folder / f"{cfg.run_id()}.json"
    write_record(path, record)
    return path


def test_a_digits_record_gets_its_content_fingerprint(migrate, tmp_path: Path, capsys) -> None:
    old = _write(tmp_path, RunConfig("simsiam"))  # written before fingerprints covered digits
    before = read_record(old)
    kept = tmp_path / "checkpoints" / old.stem / "base" / "last.ckpt"  # a failed run's
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"epochs")
    assert migrate(["--results", str(tmp_path), "--dry-run"]) == 0
    assert [p.name for p in tmp_path.glob("*.json")] == [old.name]  # a dry run changes nothing
    assert migrate(["--results", str(tmp_path)]) == 0
    (new,) = tmp_path.glob("*.json")
    assert (tmp_path / "checkpoints" / new.stem / "base" / "last.ckpt").read_bytes() == b"epochs"
    record = read_record(new)
    fingerprint = create_dataset("digits").fingerprint()
    assert record["config"]["data"]["fingerprint"] == fingerprint
    cfg = RunConfig.from_dict(record["config"])
    assert new.name == f"{cfg.run_id()}.json" != old.name and record["run_id"] == cfg.run_id()
    assert record["config_hash"] == cfg.config_hash()
    assert record["metrics"] == before["metrics"]
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{before['run_id']} -> {cfg.run_id()}"] * 2
    assert migrate(["--results", str(tmp_path)]) == 0 and capsys.readouterr().out == ""


def test_image_folder_records_need_their_tree(migrate, tmp_path: Path, capsys) -> None:
    ours = make_folder(tmp_path / "ours", {"a": 2, "b": 3})
    other = make_folder(tmp_path / "other", {"a": 2, "b": 2})
    results = tmp_path / "results"
    legacy = "5f76341a6066"  # class names + counts of `ours`, as 0.1.0 computed them
    cfg = RunConfig("simsiam", data=DataConfig("imagefolder", fingerprint=legacy))
    _write(results, cfg)
    assert migrate(["--results", str(results), "--data-root", str(other)]) == 2
    assert "no --data-root holds the image folder" in capsys.readouterr().err
    assert migrate(["--results", str(results), "--data-root", str(ours)]) == 0
    (path,) = results.iterdir()
    data = json.loads(path.read_text())["config"]["data"]
    assert data["fingerprint"] == create_dataset("imagefolder", str(ours)).fingerprint()


def test_simsiam_records_from_before_proj_layers_say_they_ran_three(
    migrate, tmp_path: Path
) -> None:
    fingerprint = create_dataset("digits").fingerprint()
    data = DataConfig(fingerprint=fingerprint)
    _write(tmp_path, RunConfig("simsiam", data=data, method_args={"proj_dim": 64}))
    _write(tmp_path, RunConfig("simclr", data=data, method_args={"temperature": 0.5}))
    assert migrate(["--results", str(tmp_path)]) == 0
    records = [read_record(p)["config"] for p in tmp_path.glob("*.json")]
    args = {c["method"]: c["method_args"] for c in records}
    assert args == {"simsiam": {"proj_dim": 64, "proj_layers": 3}, "simclr": {"temperature": 0.5}}


def test_base_records_get_the_compute_base_writes(migrate, tmp_path: Path) -> None:
    fingerprint = create_dataset("digits").fingerprint()
    cfg = RunConfig("simclr", data=DataConfig("digits", fingerprint=fingerprint))
    epochs = cfg.train.epochs
    path = _write(tmp_path, cfg)
    assert migrate(["--results", str(tmp_path)]) == 0
    (new,) = tmp_path.glob("*.json")
    assert new == path  # the id does not move: compute is not part of it
    c = read_record(new)["compute"]
    assert (c["steps"], c["wall_s"], c["base_steps"]) == (epochs, 3.0, epochs)
    assert c["passes"] == c["base_passes"] == round(epochs * 9 / cfg.train.batch_size, 3)
    assert c["steps_vs_base"] == c["passes_vs_base"] == 1.0


def test_a_record_gets_a_digest_and_a_tampered_one_is_refused(
    migrate, tmp_path: Path, capsys
) -> None:
    from imbssl_bench.running.records import record_digest

    fingerprint = create_dataset("digits").fingerprint()
    cfg = RunConfig("simsiam", data=DataConfig(fingerprint=fingerprint))
    path = _write(tmp_path, cfg)
    record = json.loads(path.read_text())
    del record["digest"]  # written before records had digests
    path.write_text(json.dumps(record))
    assert migrate(["--results", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*.json")  # its run id may change with the other fix-ups
    migrated = read_record(path)
    assert migrated["digest"] == record_digest(migrated)
    assert migrated["metrics"] == record["metrics"]
    migrated["metrics"]["knn_top1"] = 0.99  # edited by hand after it was written
    path.write_text(json.dumps(migrated))
    assert migrate(["--results", str(tmp_path)]) == 2
    assert "does not match its digest" in capsys.readouterr().err
    assert json.loads(path.read_text()) == migrated  # left as it was


def _old_id(cfg: RunConfig) -> str:
    """The run id `cfg` had while the identity held the preset's name."""
    import hashlib

    identity = {**cfg.identity(), "preset": cfg.preset}
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()
    return cfg.run_id().rsplit("-", 1)[0] + "-" + hashlib.sha256(blob).hexdigest()[:12]


def test_ids_without_the_preset_and_matched_controls_follow(migrate, tmp_path: Path) -> None:
    sam = RunConfig("simclr", variant="sam", variant_args={"sam_rho": 0.05})
    matched = RunConfig("simclr", variant="matched", variant_args={"matched_factor": 2.0})
    for cfg, to in ((sam, None), (matched, [_old_id(sam)])):
        record = make_record(
            _old_id(cfg), config=cfg.to_dict(), config_hash="0" * 12, train=_train(cfg),
            method="simclr", variant=cfg.variant,
            diagnostics={"matched": {"to": to}} if to else {},
        )  # fmt: skip
        write_record(tmp_path / f"{_old_id(cfg)}.json", record)
    assert migrate(["--results", str(tmp_path)]) == 0
    records = {r["variant"]: r for r in map(read_record, tmp_path.glob("*.json"))}
    for r in records.values():  # named by today's ids (digits also got its fingerprint)
        assert r["run_id"] == RunConfig.from_dict(r["config"]).run_id() != _old_id(sam)
    assert records["matched"]["diagnostics"]["matched"]["to"] == [records["sam"]["run_id"]]
