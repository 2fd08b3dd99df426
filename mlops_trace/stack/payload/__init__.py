"""Scripts that run inside the stack's own environment (MLServer's venv), never imported by the CLI."""
