"""Prometheus as an input: which serving metrics exist, the PromQL the service-level checks need, the query client,
and the `prometheus/<name>.json` files of a bundle that carry the results to the checks.

Modules, one job each: `metrics` (the metric names of Seldon's Envoy, the Seldon agent and MLServer), `promql`
(query builders), `plan` (which metrics answer which check, best first), `client` (HTTP through
prometheus-api-client), `collect` (probe, plan, query, write the files), `snapshot` (read the files back into the
Snapshot), `series` (turn samples into namespaces, objects, numbers and evidence), `attach` (query a live Prometheus
into a Snapshot), `options` (the command-line options the commands share).
"""
