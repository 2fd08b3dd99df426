"""`request --isvc`: one prediction request to a KServe InferenceService followed hop by hop, in both deployment
modes (Knative/Serverless behind Istio and Knative; Standard/RawDeployment behind an Ingress or a Gateway API route),
with the same hop table, waterfall, JSON keys and failure-at-hop verdict as the Seldon path.

`target` resolves the InferenceService (its Host, its path by protocol), `path` and `path_standard` rebuild the hops
from the Snapshot, `logs` finds the request's lines (Istio gateway, queue-proxy, model server), `explain` places a
failure at its hop from the answer's shape, `attribution` times each hop from its source, `canary` compares the
canary split three ways, `runner` sends and assembles, `command` fills in the flags and the reference stack's defaults.
"""
