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
