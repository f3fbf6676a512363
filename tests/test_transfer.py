"""Out-of-domain evaluation: --transfer probes the frozen backbone on other datasets; the
records hold metrics.transfer.<target>, and the leaderboard adds an out-of-domain table."""

from pathlib import Path

from imbssl_bench.config import RunConfig
from imbssl_bench.reporting import leaderboard as lb
from imbssl_bench.running.records import load_records
from tests.conftest import TINY_FLAGS
from tests.test_streaming import jpeg_tree


def test_transfer_to_digits_and_to_other_classes(cli, tmp_path: Path) -> None:
    root = jpeg_tree(tmp_path / "tree", classes=("a", "b", "c", "d"), sizes=((16, 16),))
    out = tmp_path / "out"
    args = [
        "run", "--method", "simclr", "--ratios", "1,2", "--dataset", "imagefolder",
        "--data-root", root, "--classes", "a,b", "--out", out, *TINY_FLAGS,
        "--batch-size", "8", "--transfer", f"digits,imagefolder:{root}@2-3",
    ]  # fmt: skip
    result = cli(*args)
    assert result.code == 0, result.out + result.err
    records = sorted(load_records(out), key=lambda r: r["ratio"])
    assert [r["class_names"] for r in records] == [["a", "b"]] * 2
    for r in records:
        transfer = r["metrics"]["transfer"]
        assert set(transfer) == {"digits", "imagefolder@2-3"}
        assert transfer["digits"]["classes"] == 10 and transfer["imagefolder@2-3"]["classes"] == 2
        assert transfer["imagefolder@2-3"]["n_test"] == 8
        for scores in transfer.values():
            assert all(0 <= scores[f"{p}_top1"] <= 1 for p in ("linear", "knn", "fewshot"))
        assert set(r["config"]["eval"]["transfer"]) == {"digits", "imagefolder@2-3"}
    page = lb.render(records)
    assert "Out of domain: **digits**" in page and "Out of domain: **imagefolder@2-3**" in page
    assert "classes: a,b" in page
    line = next(x for x in page.splitlines() if x.startswith("| simclr") and "±" not in x
                and x.count("|") == 6)  # fmt: skip
    assert line.split("|")[-2].strip().startswith(("+", "-"))  # the gap rho=1 -> 2
    plain = cli(*args[:-2], "--dry-run")
    assert plain.code == 0 and records[0]["run_id"] not in plain.out


def test_bad_transfer_targets_are_one_line_errors(cli) -> None:
    for spec, message in [
        ("nope", "unknown dataset 'nope'"),
        ("imagefolder:/a,imagefolder:/b", "names 'imagefolder' twice"),
        ("digits@3-99", "bad --classes '3-99'"),
    ]:
        result = cli("run", "--method", "simsiam", "--ratios", "1", "--transfer", spec, "--dry-run")
        assert result.code != 0 and message in result.err, result.err
        assert len(result.err.strip().splitlines()) == 1


def test_an_unreadable_target_is_recorded_and_the_rest_stays(cli, monkeypatch) -> None:
    import imbssl_bench.evaluation.transfer as transfer

    def broken(*args, **kwargs):
        raise OSError("cannot read image 'x.jpg'")

    monkeypatch.setattr(transfer, "transfer_metrics", broken)
    targets = transfer.resolve_targets(["digits"])
    cfg = RunConfig("simclr")
    out = transfer.transfer_section(None, targets, cfg, 16, "cpu", {})  # type: ignore[arg-type]
    assert out == {"digits": {"error": "OSError: cannot read image 'x.jpg'"}}
    streaming = cli("run", "--method", "simsiam", "--ratios", "1", "--streaming", "--dry-run")
    assert streaming.code != 0 and "held in memory only" in streaming.err
