"""``python -m imbssl_bench.cli``: the same as the ``imbssl-bench`` console script."""

import sys

from imbssl_bench.cli.app import main

sys.exit(main())
