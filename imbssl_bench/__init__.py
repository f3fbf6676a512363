"""imbssl-bench: benchmark self-supervised learning on class-imbalanced image data.

Data flows one way: config -> dataset -> imbalanced subset -> method (plugin) -> Lightning
training -> frozen features -> probes -> metrics -> JSON record -> leaderboard.
"""

from importlib.metadata import PackageNotFoundError, version

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError

try:
    __version__ = version("imbssl-bench")  # one source: pyproject.toml's `version`
except PackageNotFoundError:  # a checkout on sys.path that was never installed
    __version__ = "unknown"

__all__ = ["RunConfig", "UserError", "__version__"]
