"""Leaderboard rendering from hand-made records: cells, drop, robustness gap, plots, check."""

from pathlib import Path

import pytest

from imbssl_bench.config import ImbalanceConfig, RunConfig, TrainConfig
from imbssl_bench.errors import UserError
from imbssl_bench.reporting import leaderboard as lb
from imbssl_bench.reporting.curves import write_curve_plots
from imbssl_bench.reporting.plots import write_plots
from imbssl_bench.running.records import SCHEMA, write_record


def record(
    method: str, ratio: float, seed: int, lin: float, knn: float = 0.5, epochs: int = 10
) -> dict:
    cfg = RunConfig(
        method,
        seed=seed,
        imbalance=ImbalanceConfig(ratio=ratio, n_max=100, total=300),
        train=TrainConfig(epochs=epochs, batch_size=64),
    )
    return {
        "schema": SCHEMA,
        "run_id": f"{method}-{ratio:g}-{seed}",
        "status": "ok",
        "method": method,
        "variant": "base",
        "dataset": "digits",
        "dataset_display": "digits",
        "profile": "exponential",
        "ratio": ratio,
        "seed": seed,
        "class_counts": [1],
        "n_train": 300,
        "config": cfg.to_dict(),
        "wall_s": 1.0,
        "env": {"device": "cpu", "cpu_count": 2},
        "metrics": {
            "knn_top1": knn,
            "linear_top1": lin,
            "per_class_acc": [lin],
            "group_acc": {"many": lin, "medium": lin, "few": lin / 2},
            "per_class_std": 0.0,
        },
    }


RECORDS = [
    record("simsiam", 1, 0, 0.80),
    record("simsiam", 1, 1, 0.82),
    record("simsiam", 10, 0, 0.78),
    record("simsiam", 10, 1, 0.79),
    record("supervised", 1, 0, 0.90),
    record("supervised", 1, 1, 0.90),
    record("supervised", 10, 0, 0.80),
    record("supervised", 10, 1, 0.84),
    record("random", 1, 0, 0.30, epochs=0),
    record("random", 10, 0, 0.30, epochs=0),
]


def test_tables_gap_and_order() -> None:
    text = lb.render(RECORDS)
    lines = text.splitlines()
    rows = [
        line
        for line in lines
        if line.startswith("| simsiam")
        or line.startswith("| supervised")
        or line.startswith("| random")
    ]
    # main table: SSL first, then the supervised and random controls
    assert [r.split(" | ")[0] for r in rows[:3]] == ["| simsiam", "| supervised", "| random"]
    assert "81.0 ± 1.4 / 50.0 ± 0.0" in rows[0]  # mean ± sample std over seeds
    assert "+2.5 / +0.0" in rows[0]  # drop, paired by seed: (2 + 3) / 2
    # gap table: paired by seed, random (untrained) left out
    gap_rows = rows[3:]
    assert gap_rows == ["| simsiam | base | +2.5 ± 0.7 |", "| supervised | base | +8.0 ± 2.8 |"]
    assert "same number of images, as in Liu" in text
    assert "![linear top-1 vs imbalance ratio](plots/digits-exponential-" in text


def test_plots_are_written_and_checked(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for r in RECORDS:
        write_record(results / f"{r['run_id']}.json", r)
    out = tmp_path / "README.md"
    out.write_text(lb.render(RECORDS))
    assert "missing plot" in lb.check(results, out)
    (plot,) = write_plots(RECORDS, tmp_path)
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 5000
    assert lb.check(results, out) == ""


def _metrics(records: list[dict], **values: object) -> list[dict]:
    return [{**r, "metrics": {**r["metrics"], **values}} for r in records]


@pytest.mark.parametrize(
    ("draw", "change"),
    [
        (write_plots, {"linear_top1": 0.5}),
        (write_curve_plots, {"loss_curve": [[1, 2.0], [2, 1.5]]}),
    ],
)
def test_check_finds_a_plot_drawn_from_other_numbers(tmp_path: Path, draw, change) -> None:
    records = _metrics(RECORDS, loss_curve=[[1, 2.0], [2, 1.0]])
    results = tmp_path / "results"
    for r in records:
        write_record(results / f"{r['run_id']}.json", r)
    out = tmp_path / "README.md"
    out.write_text(lb.render(records))
    write_plots(records, tmp_path)
    write_curve_plots(records, tmp_path)
    assert lb.check(results, out) == ""
    (plot,) = draw(_metrics(records, **change), tmp_path)  # the same file: the same table
    assert lb.check(results, out) == f"stale plot: {plot} (drawn from other records)\n"
    draw(records, tmp_path)
    assert lb.check(results, out) == ""


def test_conflicting_records_are_refused() -> None:
    twin = record("simsiam", 1, 0, 0.5)
    twin["run_id"] = "other"
    with pytest.raises(UserError, match="same experiment"):
        lb.render([*RECORDS, twin])


def test_tables_state_their_scale_and_time_per_run() -> None:
    md = lb.render(RECORDS)
    assert (
        "Scale: at most 10 pre-training epochs on at most 300 images per run, on CPU (2 cores)."
        in md
    )
    assert "not a reproduction" in md
    assert "| 0,1 | 1 s |" in md
    long = [
        {**r, "config": {**r["config"], "train": {**r["config"]["train"], "epochs": 800}}}
        for r in RECORDS
    ]
    assert "not a reproduction" not in lb.render(long)


def _with(r: dict, section: str, **values: object) -> dict:
    """A copy of record `r` with config[section] updated (a different experiment)."""
    config = {**r["config"], section: {**r["config"][section], **values}}
    return {**r, "config": config}


def test_rows_are_keyed_by_the_whole_config_and_labelled_by_what_differs() -> None:
    cold = _with(record("simclr", 1, 0, 0.80), "method_args", temperature=0.2)
    warm = _with(record("simclr", 1, 1, 0.60), "method_args", temperature=0.5)
    warm["run_id"] = "simclr-warm"
    md = lb.render([cold, warm, record("simsiam", 1, 0, 0.7)])
    rows = [line for line in md.splitlines() if line.startswith("| simclr")]
    assert rows[0].startswith("| simclr · temperature=0.2 | base |") and "| 80.0 / " in rows[0]
    assert rows[1].startswith("| simclr · temperature=0.5 | base |") and "| 60.0 / " in rows[1]
    assert "| simsiam | base |" in md  # nothing differs among simsiam rows: a bare name
    other_lr = _with(record("simsiam", 1, 0, 0.7), "train", lr=0.06)  # another method's rows
    assert "| simsiam | base |" in lb.render([cold, warm, other_lr])  # are not its peers
    fast = _with(record("simclr", 1, 2, 0.5), "train", lr=0.5, precision="bf16-mixed")
    labels = lb.row_names(lb.group_rows([cold, fast]))
    assert sorted(labels.values()) == [
        "simclr · temperature=0.2, lr=none, precision=32-true",
        "simclr · temperature=none, lr=0.5, precision=bf16-mixed",
    ]


def test_other_data_is_another_row_and_twins_are_refused() -> None:
    a = record("simclr", 1, 0, 0.80)
    b = _with(record("simclr", 1, 0, 0.60), "data", fingerprint="0123456789ab")
    b["run_id"] = "other-data"
    md = lb.render([a, b])
    assert "| simclr · fingerprint=0123456789ab | base |" in md
    assert "| simclr · fingerprint=none | base |" in md
    twin = {**a, "run_id": "copy"}
    with pytest.raises(UserError, match="same experiment"):
        lb.render([a, twin])


def _code(r: dict, commit: str | None, *trained_by: str, torch: str = "2.14.1") -> dict:
    """Record `r` as written by code `commit`, trained by `trained_by`, with `torch`."""
    packages = {"torch": torch, "torchvision": "0.29.1", "lightly": "1.6.0"}
    env = {**r["env"], "code": {"version": "0.2.0", "commit": commit}, "packages": packages}
    return {**r, "env": env, "train": {"epochs": 10, "trained_by": list(trained_by)}}


def test_rows_from_several_code_versions_are_marked() -> None:
    old = record("simclr", 1, 0, 0.80)
    new = record("simclr", 1, 1, 0.60)
    new["env"] = {**new["env"], "code": {"version": "0.2.0", "commit": None}}
    md = lb.render([old, new, record("simsiam", 1, 0, 0.7)])
    assert "| simclr † | base |" in md and "| simsiam | base |" in md
    assert "- simclr: imbssl-bench 0.2.0 / unknown\n" in md
    assert "†" not in lb.render(RECORDS)


def test_rows_from_several_commits_or_libraries_are_marked() -> None:
    a = "d0b62db6993ada1c5b5760ffa7273f15d497321e"
    b = "ef3945cbd155d90162f1bdb5c285074a3a8752a7"
    one = _code(record("simclr", 1, 0, 0.80), a)
    other = _code(record("simclr", 1, 1, 0.60), b)
    md = lb.render([one, other, record("simsiam", 1, 0, 0.7)])
    assert "| simclr † | base |" in md and "| simsiam | base |" in md
    assert "† Rows whose records come from more than one code commit" in md
    assert "- simclr: commits d0b62db, ef3945c\n" in md
    resumed = _code(record("simclr", 1, 1, 0.60), b, f"0.2.0@{a}", f"0.2.0@{b}")  # one record
    assert "- simclr: commits d0b62db, ef3945c\n" in lb.render([resumed])
    newer = _code(record("simclr", 1, 1, 0.60), a, torch="2.15.0")
    assert "- simclr: torch 2.14.1 / 2.15.0\n" in lb.render([one, newer])
    assert "†" not in lb.render([one, _code(record("simclr", 1, 1, 0.6), a, f"0.2.0@{a}")])


def variant_record(
    variant: str,
    ratio: float,
    seed: int,
    lin: float,
    passes: float | None,
    wall: float = 10.0,
    args: dict | None = None,
    to: list[str] | None = None,
) -> dict:
    """A simsiam record of `variant` (10 epochs; `matched` x2 by default, planned `to` the sam
    run of its ratio and seed); `passes`: its `compute` section (None: an older record
    without one)."""
    r = record("simsiam", ratio, seed, lin)
    if args is None:
        args = {"matched_factor": 2.0, "matched_epochs": 20} if variant == "matched" else {}
    tag = "-".join(f"{v}" for v in args.values())
    r = {
        **r,
        "variant": variant,
        "run_id": f"simsiam-{variant}{tag}-{ratio:g}-{seed}",
        "config": {**r["config"], "variant": variant, "variant_args": args},
    }
    if variant == "matched":
        trained = args["matched_epochs"]
        to = [f"simsiam-sam-{ratio:g}-{seed}"] if to is None else to
        r["train"] = {"epochs": trained}
        r["diagnostics"] = {"matched": {"epochs": trained, "achieved": trained / 10, "to": to}}
    if passes is not None:
        r["compute"] = {
            "steps": 40,
            "passes": 40 * passes,
            "wall_s": wall,
            "base_steps": 40,
            "steps_vs_base": 1.0,
            "passes_vs_base": passes,
        }
    return r


def test_remedies_are_compared_with_base_and_matched_paired_by_seed() -> None:
    records = [
        variant_record("base", 1, 0, 0.80, 1.0, wall=10.0),
        variant_record("base", 1, 1, 0.82, None),  # an older record: no compute
        variant_record("base", 1, 2, 0.84, 1.0),
        variant_record("base", 10, 0, 0.70, 1.0),
        variant_record("sam", 1, 0, 0.83, 2.0, wall=20.0),
        variant_record("sam", 1, 1, 0.86, 2.0, wall=30.0),  # its base has no wall: unpaired
        variant_record("sam", 10, 0, 0.72, 2.0, wall=25.0),
        variant_record("matched", 1, 0, 0.81, 2.0),
        variant_record("matched", 1, 5, 0.90, 2.0),  # no sam record of seed 5: unpaired
    ]
    md = lb.render(records)
    lines = md.splitlines()
    assert "| simsiam | matched | 20 × 64 (×2) |" in md  # what it trained, in the main table
    assert "Scale: at most 20 pre-training epochs" in md
    start = lines.index(next(x for x in lines if x.startswith("Remedies vs controls")))
    table = [x for x in lines[start:] if x.startswith("|")][:3]
    assert table[0] == (
        "| method | variant | passes ×base | wall ×base | matched passes ×base | "
        "Δ base ρ=1 | Δ matched ρ=1 | Δ base ρ=10 | Δ matched ρ=10 |"
    )
    # wall: (20/10 + 25/10) / 2 over the seeds whose base record has a compute section
    assert table[2] == "| simsiam | sam | 2.00 | 2.25 | 2.00 | +3.5 ± 0.7 | +2.0 | +2.0 | – |"


def remedy_rows(md: str) -> dict[str, str]:
    """The remedies table's rows by their `method | variant` cells."""
    rows = md[md.index("Remedies vs controls") :].split("\n\n")[1].splitlines()[2:]
    return {" | ".join(x.split(" | ")[:2]) + " |": x for x in rows}


def test_a_remedy_pairs_only_with_the_matched_run_planned_to_it() -> None:
    inloop, offline = {"rwsam_weights": "inloop"}, {"rwsam_weights": "offline"}
    records = [
        variant_record("base", 1, 0, 0.80, 1.0),
        variant_record("sam", 1, 0, 0.83, 2.0),
        variant_record("rwsam", 1, 0, 0.84, 2.0, args=inloop),
        variant_record("rwsam", 1, 0, 0.85, 3.0, args=offline),
        # x3, planned to the offline rwsam run only: neither sam nor in-loop rwsam (x2)
        variant_record(
            "matched",
            1,
            0,
            0.82,
            3.0,
            args={"matched_factor": 3.0, "matched_epochs": 30},
            to=["simsiam-rwsamoffline-1-0"],
        ),
    ]
    rows = remedy_rows(lb.render(records))
    assert rows["| simsiam | sam |"].endswith("| – | +3.0 | – |")
    assert rows["| simsiam · rwsam_weights=inloop | rwsam |"].endswith("| – | +4.0 | – |")
    assert rows["| simsiam · rwsam_weights=offline | rwsam |"].endswith("| 3.00 | +5.0 | +3.0 |")


def test_a_given_factor_pairs_only_within_five_percent_of_the_remedys_passes() -> None:
    records = [
        variant_record("sam", 1, 0, 0.83, 2.0),
        variant_record("cluster-distill", 1, 0, 0.84, 2.6),
        variant_record("matched", 1, 0, 0.81, 2.0, to=[]),  # --matched-factor 2
    ]
    rows = remedy_rows(lb.render(records))
    assert rows["| simsiam | sam |"].endswith("| 2.00 | – | +2.0 |")
    assert rows["| simsiam | cluster-distill |"].endswith("| – | – | – |")


def test_a_control_whose_compute_differs_by_over_five_percent_is_marked() -> None:
    records = [
        variant_record("cluster-distill", 1, 0, 0.84, 2.6),
        variant_record(
            "matched",
            1,
            0,
            0.81,
            2.3,
            args={"matched_factor": 2.3, "matched_epochs": 23},
            to=["simsiam-cluster-distill-1-0"],
        ),
    ]
    md = lb.render(records)
    assert remedy_rows(md)["| simsiam | cluster-distill |"].endswith("| 2.30 | – | +3.0 ‡ |")
    assert "‡ compute differs by 13%: simsiam cluster-distill at ρ=1 (2.60 vs 2.30" in md
    close = {**records[1], "compute": {**records[1]["compute"], "passes_vs_base": 2.5}}
    assert "‡" not in lb.render([records[0], close])  # 4% apart: matched


def test_records_without_compute_or_matched_show_dashes() -> None:
    records = [
        variant_record("base", 1, 0, 0.80, None),
        variant_record("sam", 1, 0, 0.83, None),
        variant_record("sam", 1, 1, 0.83, None),  # no base of seed 1
    ]
    md = lb.render(records)
    assert "| simsiam | sam | – | – | – | +3.0 | – |" in md
    assert "Remedies vs controls" not in lb.render(RECORDS)  # no remedy: no table


def test_a_published_split_gets_its_own_table_named_by_it() -> None:
    split = record("simsiam", 100, 0, 0.5)
    split["config"]["data"].update(split_name="cifar10_split1_D_i", split_hash="0123456789ab")
    page = lb.render([*RECORDS, split])
    assert page.count("## digits") == 2 and "split: cifar10_split1_D_i" in page
    assert lb.render(RECORDS).count("split:") == 0


def test_a_plugin_remedy_pairs_with_its_controls_and_its_name_has_no_plugin_fields() -> None:
    """A remedy from a plugin package carries ``config.plugins.variant``; base and matched do
    not: they are still its controls, and the row name does not list plugin fields."""
    plugin = {"dist": "my-remedy", "version": "0.1.0", "source": "abc123"}
    remedy = variant_record("resample", 1, 0, 0.85, 2.0, wall=20.0)
    remedy["config"] = {**remedy["config"], "plugins": {"variant": plugin}}
    records = [
        variant_record("base", 1, 0, 0.80, 1.0, wall=10.0),
        remedy,
        variant_record("matched", 1, 0, 0.82, 2.0, to=[remedy["run_id"]]),
    ]
    md = lb.render(records)
    assert "plugin=" not in md
    row = remedy_rows(md)["| simsiam | resample |"]
    assert row.endswith("| 2.00 | 2.00 | 2.00 | +5.0 | +3.0 |")


def test_a_remedys_epochs_cell_states_its_stages() -> None:
    """``compute.stages`` (records since issue 30): stages on the whole subset by their epochs,
    those on parts of it counted; a record without stages keeps the config's epochs."""
    distilled = variant_record("cluster-distill", 1, 0, 0.84, 2.6)
    stage = {"steps": 4, "batch_size": 64, "reused": False}
    distilled["compute"]["stages"] = [
        {**stage, "stage": "base", "epochs": 10, "images": 300},
        {**stage, "stage": "expert-0", "epochs": 30, "images": 100},
        {**stage, "stage": "expert-1", "epochs": 15, "images": 200},
        {**stage, "stage": "student", "epochs": 5, "images": 300},
    ]
    md = lb.render([variant_record("base", 1, 0, 0.80, 1.0), distilled])
    assert "| simsiam | cluster-distill | 10 + 5 × 64 (+2 on parts) |" in md
    md = lb.render([variant_record("sam", 1, 0, 0.83, 2.0)])
    assert "| simsiam | sam | 10 × 64 |" in md
