"""`python -m mlops_trace` runs the CLI."""

from __future__ import annotations

from mlops_trace.cli import main

if __name__ == "__main__":
    main()
