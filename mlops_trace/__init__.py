"""mlops-trace: follow one prediction request through a Kubernetes ML serving stack and name the root cause."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
