"""`stack up --profile kserve`: a KServe InferenceService (transformer + sklearn predictor) behind Istio's ingress
gateway and Knative's queue-proxy, made of real programs on 127.0.0.1 (see docs/stack.md, "KServe profile")."""
