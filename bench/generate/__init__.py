"""Write a large synthetic bundle in the DESIGN.md layout, for `doctor` at scale.

Shape (full size): 200 namespaces and 10,000 Models. One namespace, `ml-prod`, is the big one: half the Models, a
~100 MB Envoy `config_dump.json` shaped like Seldon's xDS output, and a ~1 GB scheduler log in logrus' text format.
The other namespaces are small: the rest of the Models spread evenly, a small Envoy dump, short scheduler and agent
logs. A handful of Models are left not Ready (unschedulable) and a few Ready Models lack Envoy routes, so the checks
have findings to build, not only passes to report. Everything is derived from a fixed seed: the same size gives the
same bytes.

One module per thing synthesised:

- `layout` — sizes, namespaces and their Models, and the names, addresses and clock the writers share;
- `kube` — the Kubernetes objects (`kube/**.yaml`);
- `logs` — the short logs: controller manager, agents, the small namespaces' schedulers;
- `scheduler_log` — the big scheduler log and its documented line mix (`LOG_MIX`);
- `envoy` — the Envoy `config_dump.json` of each namespace;
- `bundle` — the cache directory of a size, and writing the whole bundle from the parts above.
"""

from __future__ import annotations

from bench.generate.bundle import GENERATOR_VERSION, SEED, GeneratedBundle, bundle_dir, generate
from bench.generate.layout import (
    BIG_NAMESPACE,
    CONTROL_NAMESPACE,
    SIZES,
    START,
    UNROUTED,
    UNSCHEDULABLE,
    Size,
)
from bench.generate.scheduler_log import LOG_MIX, THRASH_BURSTS, THRASH_ROUNDS

__all__ = [
    "BIG_NAMESPACE",
    "CONTROL_NAMESPACE",
    "GENERATOR_VERSION",
    "LOG_MIX",
    "SEED",
    "SIZES",
    "START",
    "THRASH_BURSTS",
    "THRASH_ROUNDS",
    "UNROUTED",
    "UNSCHEDULABLE",
    "GeneratedBundle",
    "Size",
    "bundle_dir",
    "generate",
]
