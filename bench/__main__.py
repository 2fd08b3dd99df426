"""`python -m bench` runs every benchmark and rewrites docs/BENCHMARKS.md (see bench/run.py)."""

from __future__ import annotations

from bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
