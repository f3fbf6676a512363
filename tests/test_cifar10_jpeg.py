"""Opt-in: the real CIFAR-10 (JPEG) archive, skipped when ../shared/datasets lacks it."""

import json
import zipfile
from pathlib import Path

import pytest

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg.zip"

pytestmark = [
    pytest.mark.cifar,
    pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"{ARCHIVE} is absent"),
]


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar10-jpeg")
    with zipfile.ZipFile(ARCHIVE) as archive:
        archive.extractall(root)
    return root


@pytest.mark.parametrize(
    ("n_max", "ratio", "total", "counts"),
    [
        (None, 10, 20_431, None),
        (None, 100, 12_406, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]),
        (4500, 100, 11_165, None),
    ],
)
def test_dry_run_counts_on_cifar10_jpeg(cli, cifar_root, tmp_path, n_max, ratio, total, counts):
    args = [
        "run",
        "--method",
        "simsiam",
        "--ratios",
        str(ratio),
        "--dataset",
        "imagefolder",
        "--data-root",
        cifar_root,
        "--out",
        tmp_path,
        "--dry-run",
        "--json",
    ]
    res = cli(*args, *(["--n-max", str(n_max)] if n_max else []))
    assert res.code == 0, res.err
    (run,) = json.loads(res.out)["runs"]
    assert run["n_train"] == total
    if counts:
        assert run["class_counts"] == counts


def test_imbalanced_dataset_on_torchvisions_image_folder(cifar_root) -> None:
    """The README's table through the wrapper, on the real images via torchvision."""
    from torchvision.datasets import ImageFolder

    from imbssl_bench import ImbalancedDataset

    lt = ImbalancedDataset(ImageFolder(cifar_root / "train"), ratio=100)
    assert len(lt) == 12_406
    assert lt.class_counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    image, label = lt[len(lt) - 1]
    assert image.size == (32, 32) and label == 9


def test_an_index_split_file_reproduces_its_exact_subset(cli, cifar_root, tmp_path) -> None:
    """A SDCLR-style split (one train index per line) of CIFAR-10 (JPEG): the run plans its
    class counts and trains on exactly its images, whatever the seed."""
    import numpy as np

    from imbssl_bench.data import create_dataset
    from imbssl_bench.running.execute import training_indices
    from imbssl_bench.running.plan import plan_grid
    from tests.conftest import tiny_spec

    targets = create_dataset("imagefolder", str(cifar_root)).train_targets()
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    rng = np.random.default_rng(2022)
    picked = np.concatenate(
        [rng.choice(np.flatnonzero(targets == c), n, replace=False) for c, n in enumerate(counts)]
    )
    split = tmp_path / "split1_D_i.txt"
    split.write_text("\n".join(map(str, rng.permutation(picked))) + "\n")
    spec = tiny_spec(
        dataset="imagefolder", data_root=str(cifar_root), image_size=None, ratios=(100.0,),
        seeds=(0, 1), split_file=str(split),
    )  # fmt: skip
    runs = plan_grid(spec, tmp_path / "out")
    source = create_dataset("imagefolder", str(cifar_root))
    for run in runs:
        assert run.class_counts == counts and run.config.data.split_name == "split1_D_i"
        np.testing.assert_array_equal(training_indices(run, source), np.sort(picked))
    res = cli(
        "run", "--method", "simsiam", "--ratios", "100", "--dataset", "imagefolder",
        "--data-root", cifar_root, "--split-file", split, "--out", tmp_path, "--dry-run",
        "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    assert json.loads(res.out)["runs"][0]["class_counts"] == counts
