"""PromQL as data: the serving metrics we know (`families`), safe query builders (`builders`), and which query
answers each service-level check (`plan`). Pure text, read by the Prometheus collector, the snapshot reader, the
checks and the alert rules alike."""
