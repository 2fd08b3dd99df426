"""Prometheus as a live input: the query client (`client`, through prometheus-api-client), the collector that
probes, plans and writes the `prometheus/<name>.json` files of a bundle (`collect`), querying a live Prometheus into a
Snapshot (`attach`), and the command-line options the commands share (`options`).

What the queries mean lives elsewhere, because the checks read it too: the metric families, query builders and the
query plan in `mlops_trace.promql`, the Snapshot's Prometheus section in `mlops_trace.snapshot.prometheus`, and
samples turned into namespaces, objects and evidence in `mlops_trace.analysis.series`.
"""
