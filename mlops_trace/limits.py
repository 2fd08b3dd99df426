"""The bounds on what one run reads from an untrusted input, with their documented defaults (docs/SECURITY.md).

A bundle is often a support bundle from a cluster its reader does not control, so every way it could make the
tool use unbounded time, memory or disk has a named limit here. Hitting one is an input problem that names the file
(or, for an archive, the archive); exit 2 follows only when nothing usable is left. `--limit NAME=VALUE` changes a
limit for one run; sizes take the suffixes KiB, MiB, GiB (or K, M, G).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from mlops_trace.errors import UsageError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class InputLimits:
    """Every bound on one input; the field names (with `_` as `-`) are the names `--limit` takes."""

    # A .tar.gz bundle: what it may unpack to, in bytes and in entries, before we stop unpacking it.
    archive_bytes: int = 2 * GIB
    archive_entries: int = 50_000
    # One YAML or JSON file that is read whole (kube/, bundle.yaml, requests/, prometheus/). Envoy config_dumps are
    # streamed and logs are read line by line, so they are not bound by this.
    file_bytes: int = 256 * MIB
    # Nodes that YAML aliases may add when expanded (the "billion laughs" document adds 10^9 from 500 bytes).
    yaml_alias_nodes: int = 100_000
    # How deep a YAML or JSON document may nest; Kubernetes objects (managedFields, CRD schemas) stay under 60.
    nesting_depth: int = 200
    # A log line longer than this is read in pieces of this many characters, each kept, and the file is named.
    line_chars: int = 1 * MIB


DEFAULT_LIMITS = InputLimits()

# Seconds a whole live run (collection included) may take, on top of --request-timeout for each call.
DEFAULT_LIVE_DEADLINE = 300.0

_SIZE = re.compile(r"^\s*(\d+)\s*(KiB|MiB|GiB|K|M|G|k|m|g)?\s*$")
_MULTIPLIER = {None: 1, "k": KIB, "m": MIB, "g": GIB}


def limit_names() -> list[str]:
    return [f.name.replace("_", "-") for f in fields(InputLimits)]


def describe_limits(limits: InputLimits = DEFAULT_LIMITS) -> str:
    """`name=value` for each limit, as `--limit` takes them (for help texts and docs)."""
    return ", ".join(f"{f.name.replace('_', '-')}={getattr(limits, f.name)}" for f in fields(InputLimits))


def parse_limits(assignments: Iterable[str], base: InputLimits = DEFAULT_LIMITS) -> InputLimits:
    """Apply `NAME=VALUE` settings (`archive-bytes=4GiB`, `nesting-depth=500`) to `base`; UsageError on a bad one."""
    known = {f.name.replace("_", "-"): f.name for f in fields(InputLimits)}
    changes: dict[str, int] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        name = name.strip().lower().replace("_", "-")
        if not sep or name not in known:
            raise UsageError(f"--limit takes NAME=VALUE with NAME one of {', '.join(known)} (got {assignment!r})")
        match = _SIZE.match(value)
        if match is None or int(match.group(1)) <= 0:
            raise UsageError(f"--limit {name}: expected a positive whole number, optionally with KiB/MiB/GiB "
                             f"(got {value!r})")
        suffix = match.group(2)
        changes[known[name]] = int(match.group(1)) * _MULTIPLIER[suffix[0].lower() if suffix else None]
    return replace(base, **changes)


def human_size(count: int) -> str:
    """`2 GiB`, `512 MiB`, `1536 B`: how a limit is named in a message."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} B"
