"""Live collectors: read a cluster over the Kubernetes API (and Envoy admin) into a redacted DESIGN.md bundle.

`bundle_writer.collect_bundle` is the entry point; `live.open_live_snapshot` collects into a temporary directory and
loads it, so a live `doctor` sees exactly what `doctor --bundle` sees on a collected bundle.
"""
