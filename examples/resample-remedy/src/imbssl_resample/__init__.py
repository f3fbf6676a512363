"""An example remedy written against `imbssl_bench.api` alone: `density-resample`."""
