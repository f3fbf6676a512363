"""Planning the `matched` control: its factor is the cost of the grid's costliest other variant
of the same method, ratio and seed (`Variant.cost`), and its record names the runs it is the
control of (`follow_remedies`: a remedy with a new run id keeps its control)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError
from imbssl_bench.running.records import read_record, write_record
from imbssl_bench.variants import get_variant


def follow_remedies(plan: list[Any], note: Callable[[str], None]) -> None:
    """An ``ok`` `matched` record names the remedy runs it was planned to (``diagnostics.
    matched.to``). When this grid plans it to runs it does not name (its remedy got a new run
    id: a new plugin version or source; or a remedy of the same cost joined), the record is
    rewritten to name those too: its training depends on its factor alone, so it is their
    control as well, and the leaderboard pairs them. Nothing trains again."""
    for run in plan:
        if not run.matched_to or run.status != "ok":
            continue
        record = read_record(run.path)
        matched = (record.get("diagnostics") or {}).get("matched")
        if matched is None or set(run.matched_to) <= set(matched.get("to", [])):
            continue
        matched["to"] = sorted({*matched.get("to", []), *run.matched_to})
        write_record(run.path, record)
        note(f"{run.run_id}: the matched control of {', '.join(matched['to'])} now")


def variant_cost(cfg: RunConfig) -> float:
    """The forward-backward passes the resolved run `cfg` plans, relative to plain `base`."""
    cost = get_variant(cfg.variant).cost
    return float(cost(cfg.variant_args, cfg)) if cost is not None else 1.0


def match_compute(
    configs: list[RunConfig], num_classes: int
) -> list[tuple[RunConfig, tuple[str, ...]]]:
    """Each resolved config with the runs it is matched to: a `matched` run without a factor
    gets the cost of the costliest other variant of the same method, ratio and seed (the run
    ids of those variants' runs; () for the others and for a given factor)."""
    out = []
    for cfg in configs:
        if cfg.variant != "matched" or cfg.variant_args.get("matched_factor") is not None:
            out.append((cfg, ()))
            continue
        point = (cfg.method, cfg.imbalance.ratio, cfg.seed)
        costs = {
            c.run_id(): variant_cost(c)
            for c in configs
            if (c.method, c.imbalance.ratio, c.seed) == point and c.variant != "matched"
        }
        top = max(costs.values(), default=1.0)
        if top <= 1.0:
            raise UserError(
                f"variant 'matched' trains as long as the grid's costliest other variant, and "
                f"{cfg.method} has none costlier than base here; add a remedy to --variants "
                "(e.g. sam, cluster-distill) or give --variant-arg matched_factor=X"
            )
        values = {**cfg.variant_args, "matched_factor": round(top, 4)}
        args = get_variant("matched").resolve_args(values, cfg, num_classes)
        to = tuple(sorted(run_id for run_id, c in costs.items() if c == top))
        out.append((dataclasses.replace(cfg, variant_args=args), to))
    return out
