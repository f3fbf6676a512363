"""imbssl-bench: benchmark self-supervised learning on class-imbalanced image data.

Data flows one way: config -> dataset -> imbalanced subset -> method (plugin) x variant
(plugin) -> Lightning training -> frozen features -> probes -> metrics -> JSON record ->
leaderboard (docs/architecture.md). `ImbalancedDataset` wraps any labelled dataset alone.
"""

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError
from imbssl_bench.version import __version__


def __getattr__(name: str) -> object:
    """`ImbalancedDataset` on first use, so that importing the package does not load torch."""
    if name == "ImbalancedDataset":
        from imbssl_bench.data.wrappers import ImbalancedDataset

        return ImbalancedDataset
    raise AttributeError(f"module 'imbssl_bench' has no attribute {name!r}")


__all__ = ["ImbalancedDataset", "RunConfig", "UserError", "__version__"]
