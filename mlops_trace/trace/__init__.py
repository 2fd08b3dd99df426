"""`mlops-trace request`: send V2 inference requests, rebuild their 7-hop path, time every hop, verify the A/B split.

Modules, one job each: `payload` (V2 bodies), `target` (URL, path, headers), `rest` and `grpc_client` (send, with
client-side phase timing), `accesslogs` and `metrics` (find our requests in logs and metrics after the run), `path`
(the hops from a Snapshot), `attribution` (per-hop durations with their sources), `probes` (differential probes),
`explain` (why a request failed, at which hop), `split` and `stats` (A/B split and statistics), `runner` (one
request or many), `render` and `otlp` (output), `record` (the values everything above exchanges).
"""
