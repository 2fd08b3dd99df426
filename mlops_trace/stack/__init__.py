"""The bundled reference serving stack (`mlops-trace stack up|down|status|logs|faults`).

Real NGINX, Envoy, MLServer and Prometheus on 127.0.0.1, a small local control plane that speaks Seldon's log
dialect, and a Kubernetes view of it all served by `bundle serve`, so the tool can be pointed at something real.
"""
