"""Names the API server hands us, turned into paths of the bundle: checked once here, before any path is built.

A real API server only accepts DNS-1123 names for the objects we collect (namespaces and containers: labels of at
most 63 characters; pods and other objects: subdomains of at most 253), so such a name is always a safe single path
component: no separator, never `.` or `..`, no NUL, short enough for any file system. A server that is hostile or
broken does not have to keep to that. A name that breaks the rule is refused, never rewritten: an encoded name would
be read back from the bundle as a different pod. `bundle_path` then checks the final path is inside the bundle root
as a second, independent guard.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

# RFC 1123 labels, dot-joined for subdomains (k8s.io/apimachinery/pkg/util/validation).
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL)
_SUBDOMAIN_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_LABEL_MAX = 63
_SUBDOMAIN_MAX = 253
# The most of a refused name a message shows: enough to find it, too little to flood a terminal.
_SHOWN_CHARS = 80
# Most file systems take 255 bytes per path component.
_COMPONENT_MAX_BYTES = 255


class NameRule(StrEnum):
    """Which Kubernetes validation a name must pass."""

    LABEL = "label"  # namespaces, containers: DNS-1123 label
    SUBDOMAIN = "subdomain"  # pods and the other objects we collect: DNS-1123 subdomain


class UnsafePathError(Exception):
    """A path built from API data would leave the bundle root (or is no plain path component)."""


def name_problem(name: object, rule: NameRule) -> str | None:
    """Why `name` is not a valid Kubernetes name under `rule` (None when it is)."""
    if not isinstance(name, str):
        return f"not a string ({type(name).__name__})"
    if not name:
        return "empty"
    limit = _LABEL_MAX if rule is NameRule.LABEL else _SUBDOMAIN_MAX
    if len(name) > limit:
        return f"{len(name)} characters, longer than the {limit} Kubernetes allows"
    if "\x00" in name:
        return "contains a NUL byte"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if name in (".", ".."):
        return f"is {name!r}"
    if rule is NameRule.LABEL and not _LABEL_RE.fullmatch(name):
        return "not a DNS-1123 label (lower-case letters, digits and '-')"
    if rule is NameRule.SUBDOMAIN and not _SUBDOMAIN_RE.fullmatch(name):
        return "not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')"
    return None


def shown(name: object) -> str:
    """A name as a message may print it: quoted, escaped (NUL, control and bidi characters) and cut short."""
    text = name if isinstance(name, str) else str(name)
    if len(text) > _SHOWN_CHARS:
        return f"{text[:_SHOWN_CHARS]!r}... ({len(text)} characters)"
    return repr(text)


def bundle_path(root: Path, *parts: str) -> Path:
    """`root/part/...`, refusing any part that is not one plain path component or a result outside `root`."""
    for part in parts:
        if (
            not part
            or part in (".", "..")
            or "/" in part
            or "\\" in part
            or "\x00" in part
            or len(part.encode("utf-8", "surrogatepass")) > _COMPONENT_MAX_BYTES
        ):
            raise UnsafePathError(f"{shown(part)} is not a plain path component")
    path = root.joinpath(*parts)
    base = root.resolve()
    if not path.resolve().is_relative_to(base):
        raise UnsafePathError(f"{'/'.join(parts)} resolves outside the bundle directory")
    return path
