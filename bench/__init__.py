"""Benchmarks of displayd's hot paths; `bench.harness` holds what the scripts share."""
