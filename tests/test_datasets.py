import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imbssl_bench.data import create_dataset
from imbssl_bench.data.cifar import CIFAR10
from imbssl_bench.data.imagefolder import ImageFolder
from imbssl_bench.errors import UserError


def make_folder(root: Path, per_class: dict[str, int], size: int = 8, test: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for split, counts in (("train", per_class), ("test", dict.fromkeys(per_class, test))):
        for cls, n in counts.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i:03d}.png")
    return root


def test_digits_is_fixed_and_decoded_once() -> None:
    ds = create_dataset("digits")
    data = ds.load()
    assert data.train.images.shape[1:] == (3, 32, 32)
    assert data.train.images.dtype == torch.uint8
    assert len(data.train) + len(data.test) == 1797 and len(data.classes) == 10
    assert ds.load() is data  # cached, not decoded again
    assert ds.pool_counts() == np.bincount(data.train.targets.numpy()).tolist()


def test_imagefolder_loads_and_counts_without_decoding(tmp_path: Path) -> None:
    root = make_folder(tmp_path, {"cat": 5, "ant": 3})
    ds = ImageFolder(root)
    assert ds.classes == ["ant", "cat"] and ds.pool_counts() == [3, 5]
    assert ds.image_size == 8
    data = ds.load()
    assert data.train.images.shape == (8, 3, 8, 8) and data.test.targets.tolist() == [0, 0, 1, 1]
    other = ImageFolder(make_folder(tmp_path / "b", {"cat": 4, "ant": 3}))
    assert ds.fingerprint() != other.fingerprint()


def test_imagefolder_bad_trees(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "only_train" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="no 'test/' folder"):
        ImageFolder(tmp_path / "only_train")
    root = make_folder(tmp_path / "empty_class", {"a": 2})
    (root / "train" / "b").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        ImageFolder(root).train_targets()
    mixed = make_folder(tmp_path / "mixed", {"a": 2})
    Image.new("RGB", (9, 9)).save(mixed / "train" / "a" / "zzz.png")
    with pytest.raises(UserError, match="one size"):
        ImageFolder(mixed).load()


def test_imagefolder_mixed_modes_become_rgb(tmp_path: Path) -> None:
    root = make_folder(tmp_path, {"a": 2, "b": 2})
    pixels = np.random.default_rng(1).integers(0, 255, size=(8, 8, 4), dtype=np.uint8)
    Image.fromarray(pixels[..., 0]).save(root / "train" / "b" / "gray.png")  # mode L
    Image.fromarray(pixels).save(root / "train" / "b" / "alpha.png")  # mode RGBA
    Image.fromarray(pixels[..., :3]).convert("P").save(root / "train" / "a" / "pal.png")
    images = ImageFolder(root).load().train.images
    assert images.shape == (7, 3, 8, 8) and images.dtype == torch.uint8
    gray = torch.from_numpy(pixels[..., 0])  # files are sorted: gray.png is the last
    assert all(torch.equal(images[-1][c], gray) for c in range(3))


def test_cifar_offline_and_absent_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        CIFAR10(tmp_path, download=False).train_targets()
    from imbssl_bench.data.stl10 import STL10

    with pytest.raises(UserError, match=r"stl10 not found: expected torchvision's .*stl10_binary"):
        STL10(tmp_path, download=False).train_targets()


def test_content_fingerprint_changes_run_ids_and_is_cached(tmp_path: Path) -> None:
    import shutil

    from imbssl_bench.files import cache_dir
    from imbssl_bench.running.plan import plan_grid
    from tests.conftest import tiny_spec

    def run_ids(root: Path) -> list[str]:
        spec = tiny_spec(dataset="imagefolder", data_root=str(root), image_size=None)
        return [p.run_id for p in plan_grid(spec, tmp_path / "runs")]

    a = make_folder(tmp_path / "a", {"cat": 3, "ant": 3})
    b = tmp_path / "b"
    shutil.copytree(a, b)
    b.chmod(0o555)  # the data tree may be read-only: the cache lives elsewhere
    assert run_ids(a) == run_ids(b)  # same content, another place: same experiment
    assert ImageFolder(b).fingerprint() == ImageFolder(a).fingerprint()
    assert len(list(cache_dir().glob("files-*.json"))) >= 2
    b.chmod(0o755)
    image = b / "train" / "cat" / "001.png"
    pixels = np.asarray(Image.open(image)).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(image)
    c = tmp_path / "c"
    shutil.copytree(b, c)  # a fresh path: create_dataset caches sources by root
    assert run_ids(c) != run_ids(a)
    assert ImageFolder(b).fingerprint() == ImageFolder(c).fingerprint()


def test_digits_fingerprint_is_a_hash_of_its_arrays() -> None:
    fp = create_dataset("digits").fingerprint()
    assert len(fp) == 12 and fp == create_dataset("digits").fingerprint()


def test_a_file_changed_in_place_with_its_mtime_set_back_is_hashed_again(tmp_path: Path) -> None:
    from imbssl_bench.data.filehash import file_hashes

    f = tmp_path / "x.bin"
    f.write_bytes(b"aaaa")
    st = f.stat()
    (before,) = file_hashes(tmp_path, [f])
    f.write_bytes(b"aaab")  # same size; `cp -p`, `rsync -a` or `unzip` restore the mtime:
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    (after,) = file_hashes(tmp_path, [f])
    assert after[0] == before[0] and after[1] != before[1]


def test_data_that_changed_after_planning_is_refused(tmp_path: Path) -> None:
    from imbssl_bench.running.launchers import run_grid
    from imbssl_bench.running.plan import plan_grid
    from tests.conftest import tiny_spec

    root = make_folder(tmp_path / "data", {"cat": 3, "ant": 3})
    spec = tiny_spec(dataset="imagefolder", data_root=str(root), image_size=None)
    plan = plan_grid(spec, tmp_path / "runs")
    image = root / "train" / "cat" / "001.png"
    pixels = np.asarray(Image.open(image)).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(image)
    create_dataset.cache_clear()  # the run executes in another process (a worker, slurm)
    with pytest.raises(UserError, match="changed since the grid was planned"):
        run_grid(plan)
    assert not list((tmp_path / "runs").glob("*.json"))
