"""Tollgate's benchmark: `python -m benchmarks.run` (see README, Performance)."""
