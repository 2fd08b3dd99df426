# mypy: ignore-errors
"""Train the stack's model once: a logistic regression on iris-like data generated here (three classes of four
measurements around the iris species' means, fixed seed), saved as `model.joblib` in the given directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

MEANS = ((5.0, 3.4, 1.5, 0.2), (5.9, 2.8, 4.3, 1.3), (6.6, 3.0, 5.6, 2.0))
SPREAD = (0.35, 0.35, 0.3, 0.15)


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    features = np.vstack([rng.normal(mean, SPREAD, size=(50, 4)) for mean in MEANS])
    labels = np.repeat(np.arange(3), 50)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    joblib.dump(model, out / "model.joblib")
    report = {"model": "LogisticRegression", "samples": int(labels.size), "accuracy": float(model.score(features, labels))}
    (out.parent / "training.json").write_text(json.dumps(report) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
