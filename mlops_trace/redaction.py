"""Mask secrets in everything a collector writes: Kubernetes objects, logs, Envoy admin output.

Two layers. In objects (plain dicts as the API returns them) the structure says what is secret: env-style
`name`/`value` pairs and mapping keys whose name looks like a credential (`*TOKEN*`, `*PASSWORD*`, `*SECRET*`, `*KEY*`,
`*CREDENTIAL*` …), annotations with such names, `data`/`stringData` entries, and the JSON inside
`kubectl.kubernetes.io/last-applied-configuration`. In every string (object leaves, log lines, Envoy stats) the text
says it: `Authorization: Bearer …`/`Basic …`, `token=…`/`password=…`/`api_key=…`, AWS access key ids, JWTs, PEM
private key blocks, and URLs that carry `user:password@`.

Each masked value becomes `***REDACTED***` and is noted in a `RedactionReport`: which file, what kind of value,
where (object field path or line number) and how many characters. The report never holds the value itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

REPLACEMENT = "***REDACTED***"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class SecretKind(StrEnum):
    """What kind of value was masked (the report names it; the value itself is never kept)."""

    ENV_VALUE = "env-value"  # value of a name/value pair whose name looks secret (env, parameters, headers)
    FIELD_VALUE = "field-value"  # value of a mapping key whose name looks secret
    ANNOTATION = "annotation"  # value of an annotation whose name looks secret
    DATA_VALUE = "data-value"  # a data/stringData entry whose name looks secret
    BEARER_TOKEN = "bearer-token"
    BASIC_AUTH = "basic-auth"
    AUTH_HEADER = "authorization-header"  # any other Authorization scheme
    TOKEN_PARAM = "token-param"  # token=… / access_token: …
    PASSWORD_PARAM = "password-param"
    SECRET_PARAM = "secret-param"  # client_secret=…, secret: …
    API_KEY = "api-key"
    AWS_ACCESS_KEY = "aws-access-key-id"
    JWT = "jwt"
    PRIVATE_KEY = "private-key"  # PEM private key block
    URL_CREDENTIALS = "url-password"


@dataclass(frozen=True)
class Redaction:
    """One masked value: where it was and how long it was, never what it was."""

    kind: SecretKind
    where: str  # "line 17" or an object field path such as "Pod ns/name .spec.containers[0].env[2].value"
    chars: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "where": self.where, "chars": self.chars}


@dataclass
class RedactionReport:
    """Masked values per written file (bundle-relative paths)."""

    files: dict[str, list[Redaction]] = field(default_factory=dict)

    def add(self, file: str, redactions: Iterable[Redaction]) -> None:
        items = list(redactions)
        if items:
            self.files.setdefault(file, []).extend(items)

    def merge(self, other: RedactionReport) -> None:
        for file, items in other.files.items():
            self.add(file, items)

    @property
    def total(self) -> int:
        return sum(len(items) for items in self.files.values())

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for items in self.files.values():
            for item in items:
                counts[item.kind.value] = counts.get(item.kind.value, 0) + 1
        return {
            "replacement": REPLACEMENT,
            "total": self.total,
            "by_kind": dict(sorted(counts.items())),
            "files": {name: [item.to_dict() for item in self.files[name]] for name in sorted(self.files)},
        }


# --- names that say "this holds a secret" --------------------------------------------------------------------------

_SECRET_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "KEY", "CREDENTIAL", "PWD", "AUTHORIZATION")
# A name that ends like these holds a reference to a secret (a path, a Secret's name), not the secret itself.
_REFERENCE_SUFFIXES = ("_PATH", "_FILE", "_DIR", "_LOCATION", "_NAME", "_REF", "_KEYREF", "_TYPE", "_ENABLED", "_PORT")


def _normal_name(name: str) -> str:
    """`secretKeyRef` → `SECRET_KEY_REF`, `api-key` → `API_KEY`: one spelling for the word tests."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^A-Za-z0-9]+", "_", spaced).upper().strip("_")


def secret_name(name: str) -> bool:
    """Whether an env var, parameter, annotation or data key name says its value is a secret."""
    normal = _normal_name(name)
    if not normal or normal in ("KEY", "KEYS"):
        return False  # a bare `key` names something (tolerations, selectors, header entries), it is not a secret
    if normal.endswith(_REFERENCE_SUFFIXES):
        return False
    return any(word in normal for word in _SECRET_WORDS)


# Keys whose whole subtree is key material (Envoy `private_key: {inline_bytes: …}`, a `password: {value: …}` block).
_SUBTREE_WORDS = ("PRIVATE_KEY", "PASSWORD", "PASSPHRASE")


def _secret_subtree(name: str) -> bool:
    normal = _normal_name(name)
    return any(word in normal for word in _SUBTREE_WORDS) and not normal.endswith(_REFERENCE_SUFFIXES)


# --- text patterns ---------------------------------------------------------------------------------------------------

_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY( BLOCK)?-----")
_PEM_END = re.compile(r"-----END ([A-Z0-9 ]*)PRIVATE KEY( BLOCK)?-----")
_PEM_INLINE = re.compile(
    r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)",
    re.DOTALL,
)
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*\[?[\"']?\s*)"
    r"(Bearer|Basic|Token|Digest|Negotiate|AWS4-HMAC-SHA256|ApiKey)?(\s*)([^\s\"'\],;}][^\"'\]\n,;}]*)"
)
_BEARER = re.compile(r"\b(Bearer)(\s+)([A-Za-z0-9._~+/=-]{8,})")
_BASIC = re.compile(r"\b(Basic)(\s+)([A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])")
_URL_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@\"']+:)([^/\s@\"']+)(@)")
_AWS_KEY_ID = re.compile(r"\b((?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16})\b")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# `key=value`, `key: value`, `"key": "value"`, `--key value`, where the key names a credential.
_PARAM = re.compile(
    r"(?i)(?P<key>(?:--?)?\b[A-Za-z0-9_.-]*?(?:access[_-]?token|refresh[_-]?token|id[_-]?token|token|password|passwd|pwd"
    r"|passphrase|client[_-]?secret|secret[_-]?access[_-]?key|secret|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|credentials?)[A-Za-z0-9_.-]*)"
    r"(?P<sep>[\"']?\s*[:=]\s*|\s+)"
    r"(?P<quote>[\"']?)"
    r"(?P<value>[^\s\"'&,;}\]]+)"
)


def _param_kind(key: str) -> SecretKind:
    normal = _normal_name(key)
    if "TOKEN" in normal:
        return SecretKind.TOKEN_PARAM
    if any(word in normal for word in ("PASSWORD", "PASSWD", "PWD", "PASSPHRASE")):
        return SecretKind.PASSWORD_PARAM
    if "KEY" in normal and "SECRET" not in normal:
        return SecretKind.API_KEY
    return SecretKind.SECRET_PARAM


def _is_basic_credentials(encoded: str) -> bool:
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


_Found = list[tuple[SecretKind, int]]


def redact_text(text: str) -> tuple[str, _Found]:
    """Mask secrets in one string (a line, an annotation value, an object leaf). Returns the new text and the
    (kind, length) of every masked value. Multi-line PEM blocks inside one string are masked whole."""
    found: _Found = []
    if not text or len(text) < 6:
        return text, found

    def sub(pattern: re.Pattern[str], kind: SecretKind | None, group: int, current: str) -> str:
        def replace(match: re.Match[str]) -> str:
            value = match.group(group)
            if REPLACEMENT in value or not value:
                return match.group(0)
            found.append((kind or SecretKind.SECRET_PARAM, len(value)))
            start, end = match.start(group) - match.start(0), match.end(group) - match.start(0)
            whole = match.group(0)
            return whole[:start] + REPLACEMENT + whole[end:]

        return pattern.sub(replace, current)

    out = text
    if "PRIVATE KEY" in out:
        out = sub(_PEM_INLINE, SecretKind.PRIVATE_KEY, 2, out)
        begin = _PEM_BEGIN.search(out)
        if begin is not None and _PEM_END.search(out, begin.end()) is None:
            # A block cut off (tail of a log line, truncated value): mask to the end.
            rest = out[begin.end() :]
            if rest and REPLACEMENT not in rest:
                found.append((SecretKind.PRIVATE_KEY, len(rest)))
                out = out[: begin.end()] + REPLACEMENT
    out = _redact_auth_headers(out, found)
    out = sub(_BEARER, SecretKind.BEARER_TOKEN, 3, out)
    out = _redact_basic(out, found)
    out = sub(_URL_CREDENTIALS, SecretKind.URL_CREDENTIALS, 2, out)
    out = sub(_JWT, SecretKind.JWT, 0, out)
    out = sub(_AWS_KEY_ID, SecretKind.AWS_ACCESS_KEY, 1, out)
    out = _redact_params(out, found)
    return out, found


def _redact_auth_headers(text: str, found: _Found) -> str:
    if "uthorization" not in text and "UTHORIZATION" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        prefix, scheme, space, value = match.group(1), match.group(2), match.group(3), match.group(4)
        value = value.rstrip()
        if not value or REPLACEMENT in value or _is_reference_value(value):
            return match.group(0)
        if scheme and scheme.lower() == "bearer":
            kind = SecretKind.BEARER_TOKEN
        elif scheme and scheme.lower() == "basic":
            kind = SecretKind.BASIC_AUTH
        else:
            kind = SecretKind.AUTH_HEADER
        found.append((kind, len(value)))
        trailing = match.group(4)[len(value) :]
        return f"{prefix}{scheme or ''}{space}{REPLACEMENT}{trailing}"

    return _AUTH_HEADER.sub(replace, text)


def _redact_basic(text: str, found: _Found) -> str:
    def replace(match: re.Match[str]) -> str:
        value = match.group(3)
        if not _is_basic_credentials(value):
            return match.group(0)
        found.append((SecretKind.BASIC_AUTH, len(value)))
        return f"{match.group(1)}{match.group(2)}{REPLACEMENT}"

    return _BASIC.sub(replace, text)


def _redact_params(text: str, found: _Found) -> str:
    def replace(match: re.Match[str]) -> str:
        key, sep, quote, value = match.group("key"), match.group("sep"), match.group("quote"), match.group("value")
        if REPLACEMENT in value or value.startswith("***"):
            return match.group(0)
        if sep.strip() == "" and not key.startswith("-"):
            return match.group(0)  # only `--password hunter2`: a bare word followed by a space is ordinary prose
        if quote and value.endswith(quote):
            value = value[:-1]
        if not value or _is_reference_value(value):
            return match.group(0)
        found.append((_param_kind(key), len(value)))
        rest = match.group("value")[len(value) :]
        return f"{key}{sep}{quote}{REPLACEMENT}{rest}"

    return _PARAM.sub(replace, text)


def _worth_masking(value: str) -> bool:
    """A structural secret slot holding a flag or a reference has nothing to hide (and keeping it helps diagnosis)."""
    return bool(value) and not _is_reference_value(value)


def _is_reference_value(value: str) -> bool:
    """Values that point at a secret instead of holding one: `$(VAR)`, `${VAR}`, `<redacted>`, `[redacted]`."""
    return value.startswith(("$(", "${", "<", "[")) or value.lower() in ("true", "false", "null", "none", "")


# --- streaming text (logs, stats) ------------------------------------------------------------------------------------


class LineRedactor:
    """Masks a text stream line by line; remembers an open PEM block across lines."""

    def __init__(self) -> None:
        self.redactions: list[Redaction] = []
        self._in_pem = False

    def line(self, lineno: int, text: str) -> str:
        where = f"line {lineno}"
        if self._in_pem:
            end = _PEM_END.search(text)
            if end is None:
                if text.strip():
                    self.redactions.append(Redaction(SecretKind.PRIVATE_KEY, where, len(text.rstrip("\r\n"))))
                    return REPLACEMENT + _newline(text)
                return text
            self._in_pem = False
            body = text[: end.start()]
            if body.strip():
                self.redactions.append(Redaction(SecretKind.PRIVATE_KEY, where, len(body)))
                text = REPLACEMENT + text[end.start() :]
        begin = _PEM_BEGIN.search(text)
        if begin is not None and _PEM_END.search(text, begin.end()) is None:
            tail = text[begin.end() :].rstrip("\r\n")
            self._in_pem = True
            head, found = redact_text(text[: begin.end()])
            self.redactions.extend(Redaction(kind, where, n) for kind, n in found)
            if tail.strip():
                self.redactions.append(Redaction(SecretKind.PRIVATE_KEY, where, len(tail)))
                return head + REPLACEMENT + _newline(text)
            return head + _newline(text)
        masked, found = redact_text(text)
        self.redactions.extend(Redaction(kind, where, n) for kind, n in found)
        return masked

    def lines(self, lines: Iterable[str]) -> Iterator[str]:
        for lineno, text in enumerate(lines, start=1):
            yield self.line(lineno, text)


def _newline(text: str) -> str:
    if text.endswith("\r\n"):
        return "\r\n"
    return "\n" if text.endswith("\n") else ""


def redact_lines(text: str) -> tuple[str, list[Redaction]]:
    """Whole text, masked line by line (Envoy stats, small text files)."""
    redactor = LineRedactor()
    masked = "".join(redactor.lines(text.splitlines(keepends=True)))
    return masked, redactor.redactions


# --- objects ---------------------------------------------------------------------------------------------------------


def redact_object(obj: Any, where: str = "") -> tuple[Any, list[Redaction]]:
    """A redacted deep copy of a JSON-like value and what was masked. `where` prefixes the field paths
    (e.g. `Pod serving/mlserver-0`). The input is not modified."""
    found: list[Redaction] = []
    prefix = f"{where} " if where else ""
    result = _walk(obj, "", prefix, found, parent_key=None)
    return result, found


def _walk(value: Any, path: str, prefix: str, found: list[Redaction], parent_key: str | None) -> Any:
    if isinstance(value, Mapping):
        return _walk_mapping(value, path, prefix, found, parent_key)
    if isinstance(value, list):
        return [_walk(item, f"{path}[{index}]", prefix, found, parent_key) for index, item in enumerate(value)]
    if isinstance(value, str):
        return _scan_string(value, path, prefix, found)
    return value


def _walk_mapping(
    value: Mapping[str, Any], path: str, prefix: str, found: list[Redaction], parent_key: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pair_name = _pair_name(value)
    pair_secret = pair_name is not None and secret_name(pair_name)
    for raw_key, item in value.items():
        key = str(raw_key)
        child = _child_path(path, key)
        if key == "value" and pair_secret and isinstance(item, str) and _worth_masking(item):
            found.append(Redaction(SecretKind.ENV_VALUE, f"{prefix}{child} ({pair_name})", len(item)))
            out[raw_key] = REPLACEMENT
            continue
        if parent_key == "annotations" and isinstance(item, str):
            out[raw_key] = _annotation(key, item, child, prefix, found)
            continue
        if parent_key in ("data", "stringData", "binaryData") and isinstance(item, str):
            if secret_name(key) and _worth_masking(item):
                found.append(Redaction(SecretKind.DATA_VALUE, f"{prefix}{child}", len(item)))
                out[raw_key] = REPLACEMENT
            else:
                out[raw_key] = _scan_string(item, child, prefix, found)
            continue
        if isinstance(item, str) and _worth_masking(item) and secret_name(key) and key not in _STRUCTURAL_KEYS:
            found.append(Redaction(SecretKind.FIELD_VALUE, f"{prefix}{child}", len(item)))
            out[raw_key] = REPLACEMENT
            continue
        if isinstance(item, (Mapping, list)) and _secret_subtree(key):
            out[raw_key] = _mask_leaves(item, child, prefix, found)
            continue
        out[raw_key] = _walk(item, child, prefix, found, parent_key=key)
    return out


# Keys that hold names of things, not secrets, even though the word test would match them.
_STRUCTURAL_KEYS = frozenset({"key", "keys", "secretName", "tokenPath", "keyRef", "secretRef"})


def _pair_name(value: Mapping[str, Any]) -> str | None:
    """The name of a name/value (or key/value, header/value) pair: env entries, parameters, header lists."""
    if "value" not in value:
        return None
    for name_key in ("name", "key", "header"):
        name = value.get(name_key)
        if isinstance(name, str) and name:
            return name
    return None


def _annotation(key: str, item: str, child: str, prefix: str, found: list[Redaction]) -> str:
    if key == LAST_APPLIED:
        return _last_applied(item, child, prefix, found)
    if secret_name(key.rsplit("/", 1)[-1]) and _worth_masking(item):
        found.append(Redaction(SecretKind.ANNOTATION, f"{prefix}{child}", len(item)))
        return REPLACEMENT
    return _scan_string(item, child, prefix, found)


def _last_applied(item: str, child: str, prefix: str, found: list[Redaction]) -> str:
    """The annotation is the object as the user applied it, JSON in a string: redact it as an object."""
    try:
        parsed = json.loads(item)
    except ValueError:
        return _scan_string(item, child, prefix, found)
    inner: list[Redaction] = []
    redacted = _walk(parsed, "", "", inner, parent_key=None)
    if not inner:
        return item
    for r in inner:
        found.append(Redaction(r.kind, f"{prefix}{child} -> {r.where.strip()}", r.chars))
    text = json.dumps(redacted, separators=(",", ":"), ensure_ascii=False)
    return text + ("\n" if item.endswith("\n") else "")


def _mask_leaves(value: Any, path: str, prefix: str, found: list[Redaction]) -> Any:
    if isinstance(value, Mapping):
        return {k: _mask_leaves(v, _child_path(path, str(k)), prefix, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_leaves(v, f"{path}[{i}]", prefix, found) for i, v in enumerate(value)]
    if isinstance(value, str) and _worth_masking(value):
        found.append(Redaction(SecretKind.FIELD_VALUE, f"{prefix}{path}", len(value)))
        return REPLACEMENT
    return value


def _scan_string(value: str, path: str, prefix: str, found: list[Redaction]) -> str:
    masked, hits = redact_text(value)
    for kind, chars in hits:
        found.append(Redaction(kind, f"{prefix}{path}", chars))
    return masked


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _child_path(path: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}"
    return f'{path}["{key}"]'
