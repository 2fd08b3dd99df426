"""Service-level objectives and the CI gate of `mlops-trace smoke`: thresholds shared by the MT4xx checks, gates
(`GateResult`), stored baselines, the smoke report and its renderers (text, JSON, JUnit, SARIF).
"""
