"""Datasets of files: streamed images of any size, file lists, published split files, class
subsets; the streamed and in-memory paths see the same pixels."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imbssl_bench.data import FileSplit, ImageSplit, create_dataset
from imbssl_bench.data.files import RAM_BUDGET_ENV
from imbssl_bench.data.imagefolder import ImageFolder
from imbssl_bench.errors import UserError
from imbssl_bench.evaluation.features import extract_features
from tests.conftest import TINY_FLAGS
from tests.test_datasets import make_folder

CLASSES = ("ant", "bee", "cat")


def jpeg_tree(
    root: Path, per_class: int = 12, test: int = 4, sizes=((20, 30), (41, 17)), classes=CLASSES
) -> Path:
    """A tree of JPEGs whose sizes cycle through `sizes` (width, height)."""
    rng = np.random.default_rng(0)
    k = 0
    for split, n in (("train", per_class), ("test", test)):
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                w, h = sizes[k % len(sizes)]
                k += 1
                pixels = rng.integers(0, 60, size=(h, w, 3), dtype=np.uint8) + 60 * c
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / cls / f"{i:03d}.jpg")
    return root


def run_args(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", "--method", "simclr", "--ratios", "2", "--dataset", "imagefolder",
        "--data-root", str(root), "--out", str(out), *TINY_FLAGS, "--batch-size", "8", *extra,
    ]  # fmt: skip


def only_record(out: Path) -> dict:
    (path,) = [p for p in out.rglob("*.json") if p.parent.name != "checkpoints"]
    return json.loads(path.read_text())


def test_a_tree_of_mixed_sizes_streams_trains_and_evaluates(cli, tmp_path: Path) -> None:
    root = jpeg_tree(tmp_path / "tree")
    ds = ImageFolder(root)
    assert ds.native_size is None and ds.choose_storage(None) == "streaming"
    with pytest.raises(UserError, match=r"not squares of one size.*--image-size"):
        ds.image_size  # noqa: B018
    with pytest.raises(UserError, match=r"--in-memory: .* not squares of one size"):
        ds.choose_storage(False)
    result = cli(*run_args(root, tmp_path / "out", "--num-workers", "1"))
    assert result.code == 0, result.out + result.err
    record = only_record(tmp_path / "out")
    assert record["status"] == "ok" and record["storage"] == "streaming"
    assert record["n_train"] == sum(record["class_counts"]) == 12 + 8 + 6
    assert 0 <= record["metrics"]["linear_top1"] <= 1
    refused = cli(*run_args(root, tmp_path / "out2", "--in-memory"))
    assert refused.code != 0 and "Traceback" not in refused.err
    assert "not squares of one size" in refused.err and len(refused.err.strip().splitlines()) == 1
    batched = cli(*run_args(root, tmp_path / "out3", "--augment", "batched", "--dry-run"))
    assert batched.code != 0 and "use --augment pil" in batched.err


def test_streamed_and_in_memory_runs_give_the_same_numbers(cli, tmp_path: Path) -> None:
    """Square images of one size: the two storages give every step and probe the same
    pixels, so a run's numbers do not depend on which one ran (it is not in the run id).
    The views are pinned: by default in-memory images get batched views (another run)."""
    root = jpeg_tree(tmp_path / "tree", sizes=((16, 16),))
    records = []
    for flag in ("--in-memory", "--streaming"):
        out = tmp_path / flag.strip("-")
        result = cli(*run_args(root, out, flag, "--augment", "pil"))
        assert result.code == 0, result.out + result.err
        records.append(only_record(out))
    memory, streamed = records
    assert (memory["storage"], streamed["storage"]) == ("memory", "streaming")
    assert memory["run_id"] == streamed["run_id"]
    for key in ("linear_top1", "knn_top1", "fewshot_top1", "feature_std"):
        assert memory["metrics"][key] == streamed["metrics"][key], key
    assert memory["train"]["final_loss"] == streamed["train"]["final_loss"]


def test_features_of_a_file_split_match_the_decoded_images(tmp_path: Path) -> None:
    root = jpeg_tree(tmp_path / "tree", per_class=3, sizes=((24, 24),))
    ds = ImageFolder(root)
    memory, files = ds.load("memory").train, ds.load("streaming").train
    assert isinstance(memory, ImageSplit) and isinstance(files, FileSplit)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    a = extract_features(net, memory, 16, batch_size=4)
    np.testing.assert_array_equal(a, extract_features(net, files, 16, batch_size=4, workers=1))
    other_batches = extract_features(net, files, 16, batch_size=5)  # conv blocking differs
    np.testing.assert_allclose(a, other_batches, rtol=0, atol=1e-6)
    assert files.subset(np.array([2, 0])).files == (files.files[2], files.files[0])


def test_the_ram_budget_chooses_streaming(tmp_path: Path, monkeypatch) -> None:
    root = make_folder(tmp_path / "tree", {"a": 3, "b": 3}, size=8)
    ds = ImageFolder(root)
    assert ds.decoded_bytes() == 10 * 3 * 8 * 8 and ds.choose_storage(None) == "memory"
    monkeypatch.setenv(RAM_BUDGET_ENV, "1000")
    assert ds.choose_storage(None) == "streaming"
    with pytest.raises(UserError, match="over the RAM budget"):
        ds.choose_storage(False)
    monkeypatch.setenv(RAM_BUDGET_ENV, "lots")
    with pytest.raises(UserError, match="not a size"):
        ds.choose_storage(None)
    with pytest.raises(UserError, match="held in memory only"):
        create_dataset("digits").load("streaming")
    monkeypatch.setenv(RAM_BUDGET_ENV, "inf")
    with pytest.raises(UserError, match="not a size"):
        ds.choose_storage(None)


def write_lists(root: Path) -> tuple[Path, Path]:
    """ImageNet-LT-style lists over the tree of `jpeg_tree` (labels by class name order)."""
    lists = []
    for split in ("train", "test"):
        lines = [
            f"{p.relative_to(root).as_posix()} {CLASSES.index(p.parent.name)}"
            for p in sorted((root / split).rglob("*.jpg"))
        ]
        path = root / f"{split}.txt"
        path.write_text("\n".join(lines) + "\n")
        lists.append(path)
    return lists[0], lists[1]


def test_filelist_trains_and_checks_its_lists(cli, tmp_path: Path) -> None:
    root = jpeg_tree(tmp_path / "tree")
    train, test = write_lists(root)
    out = tmp_path / "out"
    args = [
        "run", "--method", "simclr", "--ratios", "2", "--dataset", "filelist", "--data-root",
        str(root), "--train-list", str(train), "--test-list", str(test), "--out", str(out),
        *TINY_FLAGS, "--batch-size", "8",
    ]  # fmt: skip
    result = cli(*args)
    assert result.code == 0, result.out + result.err
    record = only_record(out)
    assert record["status"] == "ok" and record["class_names"] == ["0", "1", "2"]
    assert record["storage"] == "streaming" and record["class_counts"] == [12, 8, 6]
    broken = root / "broken.txt"  # a new file: the dataset of `train` stays cached in-process
    broken.write_text(train.read_text() + "train/cat/extra.jpg three\n")
    bad = cli(*[str(broken) if a == str(train) else a for a in args])
    assert bad.code != 0 and f"{broken}:37: expected 'relative/path label'" in bad.err
    missing = root / "missing.txt"
    missing.write_text("train/ant/000.jpg 0\ntrain/bee/000.jpg 1\ntrain/cat/nope.jpg 2\n")
    gone = cli(*[str(missing) if a == str(train) else a for a in args], "--dry-run")
    assert gone.code != 0 and "train/cat/nope.jpg' (No such file or directory)" in gone.err
    outside = root / "outside.txt"
    outside.write_text("../elsewhere/a.jpg 0\n")
    out_err = cli(*[str(outside) if a == str(train) else a for a in args], "--dry-run")
    assert out_err.code != 0 and f"{outside}:1: '../elsewhere/a.jpg' must be a path" in out_err.err
    wrong = cli(*args[:5], "--dataset", "digits", "--train-list", str(train), "--dry-run")
    assert wrong.code != 0 and "--train-list is an option of dataset filelist" in wrong.err


def test_a_split_file_gives_its_exact_subset(cli, tmp_path: Path) -> None:
    from imbssl_bench.running.execute import training_indices
    from imbssl_bench.running.plan import plan_grid
    from tests.conftest import tiny_spec

    targets = create_dataset("digits").train_targets()
    per_class = [4] * 5 + [2] * 5  # a step split, ratio 2
    picked = np.sort(
        np.concatenate([np.flatnonzero(targets == c)[:n] for c, n in enumerate(per_class)])
    )
    split = tmp_path / "my_split.txt"
    split.write_text("# train indices\n" + "\n".join(map(str, picked[::-1])) + "\n")
    (run,) = plan_grid(tiny_spec(split_file=str(split), ratios=(2.0,)), tmp_path / "out")
    source = create_dataset("digits")
    assert run.class_counts == per_class and run.config.imbalance.profile == "split"
    assert run.config.data.split_name == "my_split" and len(run.config.data.split_hash) == 12
    np.testing.assert_array_equal(training_indices(run, source), picked)
    wrong = cli("run", "--method", "simsiam", "--ratios", "10", "--split-file", split, "--dry-run")
    assert wrong.code != 0 and "has 4 to 2 images per class (ratio 2), not --ratios 10" in wrong.err
    other = plan_grid(tiny_spec(ratios=(2.0,)), tmp_path / "out")[0]
    assert other.run_id != run.run_id
    split.write_text("3\n3\n")
    dup = cli("run", "--method", "simsiam", "--ratios", "10", "--split-file", split, "--dry-run")
    assert dup.code != 0 and "lists 1 image(s) twice" in dup.err
    split.write_text("99999\n")
    far = cli("run", "--method", "simsiam", "--ratios", "10", "--split-file", split, "--dry-run")
    assert far.code != 0 and "index 99999 is outside" in far.err
    two = cli("run", "--method", "simsiam", "--ratios", "1,10", "--split-file", split)
    assert two.code != 0 and "--split-file fixes the training subset" in two.err


def test_split_file_of_paths(tmp_path: Path) -> None:
    from imbssl_bench.data.splitfile import read_split_file

    root = jpeg_tree(tmp_path / "tree", per_class=3, sizes=((8, 8),))
    split = tmp_path / "s.txt"
    split.write_text("train/cat/001.jpg\n./train/ant/000.jpg\n")
    assert read_split_file(str(split), ImageFolder(root)).indices.tolist() == [0, 7]
    split.write_text("train/cat/999.jpg\n")
    with pytest.raises(UserError, match=r"'train/cat/999\.jpg' is not a train image"):
        read_split_file(str(split), ImageFolder(root))


def test_classes_keeps_and_relabels_a_subset(cli, tmp_path: Path) -> None:
    from imbssl_bench.running.plan import plan_grid
    from tests.conftest import tiny_spec

    (run,) = plan_grid(tiny_spec(classes="7-9,0", ratios=(1.0,)), tmp_path / "out")
    pool = np.bincount(create_dataset("digits").train_targets())
    assert run.class_counts == [min(pool[[7, 8, 9, 0]])] * 4
    assert run.config.data.classes == "7-9,0"
    bad = cli("run", "--method", "simsiam", "--ratios", "1", "--classes", "3-12", "--dry-run")
    assert bad.code != 0 and "bad --classes '3-12'" in bad.err
