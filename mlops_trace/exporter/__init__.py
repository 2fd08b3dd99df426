"""`mlops-trace exporter`: run the check catalog on a schedule against one or more clusters and serve the open
findings, the per-check status and the run's own health on `/metrics` for Prometheus.

- `settings`: what to watch and how often (validated flags).
- `state`: the latest run of each cluster, shared by the schedule loop and the scrape handler.
- `metrics`: the prometheus_client Collector that turns that state into series (a cleared finding has none).
- `runner`: the schedule loop (one `doctor.run_doctor` per cluster and round, bounded), the HTTP server, SIGTERM.
"""
