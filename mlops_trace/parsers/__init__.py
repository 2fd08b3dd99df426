"""Parsers: Kubernetes documents, container logs, ingress-nginx and Envoy access logs, Envoy config_dump and stats."""
