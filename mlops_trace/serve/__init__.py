"""Serve a bundle read-only over the Kubernetes REST API, so kubectl and our live collectors can read it."""
