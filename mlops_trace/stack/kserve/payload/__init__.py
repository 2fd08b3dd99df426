"""Programs the KServe stack runs inside its own venv (kserve 0.21.0): never imported by the CLI."""
