"""Read an evidence `where` as a place in the input: the bundle file it names, and the line or document in that file.

Checks write `where` in a few shapes (see `findings.Evidence`): a log line `logs/ns/pod/c.log:12` (or `:12-13`,
`:12:5`), an object field `kube/x.yaml#2 Service/foo .spec.type` (the file and the index of the document or List
item in it, then what in it), a recorded request `requests/recorded.json#0`, a file and what in it
`envoy/ns/pod/config_dump.json clusters`, a whole file `prometheus/latency_p95.json`, and words that name no file
(`objective`, `kube/ IPAddressPool`, `NetworkPolicy evaluation (...)`). `evidence_ref` turns the first kinds into an
`EvidenceRef` and the last into None.

A document index is not a line: the renderers see a Report, never the bundle, so they cannot find where document 2
starts. `EvidenceRef.line` is then None and `document` carries the index; a renderer that must name a line (SARIF for
GitHub code scanning) uses line 1 of the file and keeps the index beside it. Evidence that knows both, written
`kube/x.yaml:14#2 Service/foo .spec.type` (the document's first line, then its index), gives both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Files a bundle holds (DESIGN.md bundle format, plus prometheus/ and requests/). A closed list of suffixes keeps
# `Kind/name`, `host:port` and `svc.cluster.local:9004` from being mistaken for files.
FILE_SUFFIXES = frozenset(
    {"yaml", "yml", "json", "jsonl", "ndjson", "log", "txt", "conf", "cfg", "ini", "toml", "prom", "xml", "csv", "tsv"}
)
_WHERE = re.compile(
    r"^(?P<path>[^\s:#]+\.(?P<suffix>[A-Za-z0-9]+))"
    r"(?::(?P<start>[1-9][0-9]*)(?:-(?P<end>[1-9][0-9]*)|:(?P<column>[1-9][0-9]*))?)?(?:#(?P<document>[0-9]+))?"
    r"(?:\s+(?P<detail>\S.*))?$",
    re.DOTALL,
)


@dataclass(frozen=True)
class EvidenceRef:
    """A bundle-relative file and, when the evidence says so, a line range, a column or a document index in it."""

    path: str
    line: int | None = None
    end_line: int | None = None
    column: int | None = None
    document: int | None = None  # index of the YAML document / List item / JSON record (from 0)
    detail: str = ""  # what in the file: `Service/foo .spec.type`, `clusters`


def evidence_ref(where: str) -> EvidenceRef | None:
    """The file an evidence `where` names, or None when it names no file of the bundle."""
    text = where.strip()
    match = _WHERE.match(text)
    if match is None or match["suffix"].lower() not in FILE_SUFFIXES or "://" in text:
        return None
    path = match["path"]
    first_segment, _, rest = path.partition("/")
    if rest and "/" not in rest and first_segment[:1].isupper():
        return None  # `Kind/name.yaml`-shaped: an object whose name ends like a file, not a file
    line = int(match["start"]) if match["start"] is not None else None
    end_line = int(match["end"]) if match["end"] is not None else None
    if line is not None and end_line is not None and end_line < line:
        end_line = None
    return EvidenceRef(
        path=path.replace("\\", "/"),
        line=line,
        end_line=end_line,
        column=int(match["column"]) if match["column"] is not None else None,
        document=int(match["document"]) if match["document"] is not None else None,
        detail=" ".join((match["detail"] or "").split()),
    )
