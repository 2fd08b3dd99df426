"""Benchmarks of mlops-trace against the tools users would otherwise reach for; `python -m bench` runs them all and
rewrites docs/BENCHMARKS.md. Never part of the test suite's pass/fail."""
