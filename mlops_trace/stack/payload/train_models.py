# mypy: ignore-errors
"""Train the stack's two models from synthetic data with a fixed seed; runs in the stack's venv (scikit-learn).

Input like the write-ups: FP32 `[1, 10, 35]` (10 time steps of 35 features), flattened to 350 features by the
first step of each pipeline, so MLServer's scikit-learn runtime can serve the tensor as sent. The baseline is a
logistic regression, the enhanced predictor a random forest. Usage: python train_models.py OUT_DIR [SEED]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

STEPS, FEATURES = 10, 35
WIDTH = STEPS * FEATURES


def synthetic(seed: int, rows: int = 3000):
    """Feature windows and an up/down label that depends on a trend in a few features and their interaction."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, STEPS, FEATURES)).astype(np.float32)
    trend = x[:, -3:, :4].mean(axis=(1, 2)) - x[:, :3, :4].mean(axis=(1, 2))
    interaction = x[:, -1, 5] * x[:, -1, 6]
    y = ((trend + 0.5 * interaction + rng.normal(scale=0.3, size=rows)) > 0).astype(np.int64)
    return x.reshape(rows, WIDTH), y


def flatten():
    return FunctionTransformer(np.reshape, kw_args={"shape": (-1, WIDTH)})


def main() -> None:
    out = Path(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20250712
    x, y = synthetic(seed)
    split = int(len(x) * 0.8)
    models = {
        "baseline-predictor": make_pipeline(flatten(), LogisticRegression(max_iter=500)),
        "enhanced-predictor": make_pipeline(flatten(), RandomForestClassifier(n_estimators=40, max_depth=8,
                                                                              random_state=seed, n_jobs=1)),
    }
    report = {}
    for name, model in models.items():
        model.fit(x[:split], y[:split])
        accuracy = float((model.predict(x[split:]) == y[split:]).mean())
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, target / "model.joblib")
        report[name] = {"accuracy": round(accuracy, 4), "seed": seed, "rows": len(x)}
    (out / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
