"""Envoy's route selection: which virtual host a request's authority reaches, and which of its routes the path and
headers pick, close enough to explain a 404.

Virtual host by authority: exact domain, then the longest `*suffix`, the longest `prefix*`, then `*`; then the first
route whose path match and header matchers all hold. Query-parameter, `grpc`, runtime-fraction and dynamic-metadata
matchers are ignored (a route with them matches as if they held); a header range matcher never holds, and a route with
no path matcher it understands (`prefix`, `path`, `safe_regex`/`regex`, `path_separated_prefix`) never matches.

The rules read the data model through the small protocols below, so that `model` can call them without this module
importing it back; the kinds of header test (`HeaderMatchKind`) live here, beside what each one means.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Protocol, TypeVar

__all__ = [
    "HeaderMatchKind",
    "first_matching_route",
    "header_matches",
    "route_matches",
    "select_virtual_host",
]


class HeaderMatchKind(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    CONTAINS = "contains"
    REGEX = "regex"
    PRESENT = "present"
    ABSENT = "absent"
    OTHER = "other"  # range or unknown matchers: never evaluated as matching


class HeaderTest(Protocol):
    """What matching reads of a `model.HeaderMatcher`."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> HeaderMatchKind: ...
    @property
    def value(self) -> str | None: ...
    @property
    def invert(self) -> bool: ...
    @property
    def ignore_case(self) -> bool: ...
    @property
    def treat_missing_as_empty(self) -> bool: ...


class RouteMatch(Protocol):
    """What matching reads of a `model.Route`."""

    @property
    def prefix(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def regex(self) -> str | None: ...
    @property
    def prefix_separated(self) -> bool: ...
    @property
    def case_sensitive(self) -> bool: ...
    @property
    def headers(self) -> Sequence[HeaderTest]: ...


class HasDomains(Protocol):
    """What matching reads of a `model.VirtualHost`."""

    @property
    def domains(self) -> Sequence[str]: ...


_Route = TypeVar("_Route", bound=RouteMatch)
_VirtualHost = TypeVar("_VirtualHost", bound=HasDomains)


def header_matches(matcher: HeaderTest, headers: Mapping[str, str]) -> bool:
    """Envoy's HeaderUtility::matchHeaders for one matcher; `headers` has lower-case keys."""
    actual = headers.get(matcher.name.lower())
    if actual is None and matcher.treat_missing_as_empty:
        actual = ""
    if actual is None:
        # A missing header fails every matcher, inverted or not, except the two presence tests that ask for
        # absence: present_match false, or present_match true with invert_match.
        if matcher.kind is HeaderMatchKind.PRESENT:
            return matcher.invert
        if matcher.kind is HeaderMatchKind.ABSENT:
            return not matcher.invert
        return False
    return _value_matches(matcher, actual) != matcher.invert


def _value_matches(matcher: HeaderTest, actual: str) -> bool:
    kind = matcher.kind
    if kind is HeaderMatchKind.PRESENT:
        return True
    if kind is HeaderMatchKind.ABSENT or kind is HeaderMatchKind.OTHER or matcher.value is None:
        return False
    if kind is HeaderMatchKind.REGEX:
        return _regex_fullmatch(matcher.value, actual)
    expected = matcher.value.lower() if matcher.ignore_case else matcher.value
    subject = actual.lower() if matcher.ignore_case else actual
    if kind is HeaderMatchKind.EXACT:
        return subject == expected
    if kind is HeaderMatchKind.PREFIX:
        return subject.startswith(expected)
    if kind is HeaderMatchKind.SUFFIX:
        return subject.endswith(expected)
    return expected in subject


def _path_matches(route: RouteMatch, path: str) -> bool:
    """The path part of the route match. Exact and regex matches ignore the query string, as Envoy does."""
    without_query = path.split("?", 1)[0].split("#", 1)[0]
    fold = (lambda text: text) if route.case_sensitive else str.lower
    if route.prefix is not None:
        if not fold(path).startswith(fold(route.prefix)):
            return False
        if route.prefix_separated:
            remainder = without_query[len(route.prefix) :]
            return remainder == "" or remainder.startswith("/")
        return True
    if route.path is not None:
        return fold(without_query) == fold(route.path)
    if route.regex is not None:
        return _regex_fullmatch(route.regex, without_query)
    return False


def route_matches(route: RouteMatch, path: str, headers: Mapping[str, str]) -> bool:
    """Path match and every header matcher; header names in `headers` may be in any case."""
    if not _path_matches(route, path):
        return False
    lowered = {name.lower(): value for name, value in headers.items()}
    return all(header_matches(matcher, lowered) for matcher in route.headers)


def first_matching_route(routes: Iterable[_Route], path: str, headers: Mapping[str, str]) -> _Route | None:
    """The first of a virtual host's `routes` (in Envoy's order) that the request matches."""
    return next((route for route in routes if route_matches(route, path, headers)), None)


def _regex_fullmatch(pattern: str, subject: str) -> bool:
    """RE2 patterns as Python `re` patterns (the common subset agrees); a pattern `re` rejects matches nothing."""
    try:
        return re.fullmatch(pattern, subject) is not None
    except re.error:
        return False


def _host_candidates(authority: str) -> list[str]:
    host = authority.strip().lower()
    candidates = [host]
    if host.startswith("["):
        bracket = host.find("]")
        if bracket > 0 and bracket + 1 < len(host) and host[bracket + 1] == ":":
            candidates.append(host[: bracket + 1])
    elif host.count(":") == 1:
        candidates.append(host.rsplit(":", 1)[0])
    return candidates


def select_virtual_host(virtual_hosts: Iterable[_VirtualHost], authority: str) -> _VirtualHost | None:
    """The virtual host Envoy picks for `authority`, or None."""
    hosts = tuple(virtual_hosts)
    # Envoy compares the whole Host header (port included) unless told to strip the port; trying both is a superset.
    for host in _host_candidates(authority):
        for virtual_host in hosts:
            if host in (domain.lower() for domain in virtual_host.domains):
                return virtual_host
        best: tuple[int, _VirtualHost] | None = None
        for virtual_host in hosts:
            for domain in virtual_host.domains:
                domain = domain.lower()
                suffix_matches = domain != "*" and domain.startswith("*") and host.endswith(domain[1:])
                # A wildcard stands for at least one character.
                if suffix_matches and len(host) >= len(domain) and (best is None or len(domain) > best[0]):
                    best = (len(domain), virtual_host)
        if best is not None:
            return best[1]
        for virtual_host in hosts:
            for domain in virtual_host.domains:
                domain = domain.lower()
                prefix_matches = domain != "*" and domain.endswith("*") and host.startswith(domain[:-1])
                if prefix_matches and len(host) >= len(domain) and (best is None or len(domain) > best[0]):
                    best = (len(domain), virtual_host)
        if best is not None:
            return best[1]
    return next((virtual_host for virtual_host in hosts if "*" in virtual_host.domains), None)
