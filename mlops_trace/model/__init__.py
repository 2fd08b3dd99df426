"""Values shared by every layer: findings, check results and reports."""
