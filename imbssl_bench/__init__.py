"""imbssl-bench: benchmark self-supervised learning on class-imbalanced image data.

Data flows one way: config -> dataset -> imbalanced subset -> method (plugin) -> Lightning
training -> frozen features -> probes -> metrics -> JSON record -> leaderboard.
"""

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError

__version__ = "0.1.0"

__all__ = ["RunConfig", "UserError", "__version__"]
