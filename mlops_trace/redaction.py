"""Mask secrets in everything a collector writes: Kubernetes objects, logs, Envoy admin output.

Two layers. In objects (plain dicts as the API returns them) the structure says what is secret: env-style
`name`/`value` pairs and mapping keys whose name looks like a credential (`*TOKEN*`, `*PASSWORD*`, `*SECRET*`, `*KEY*`,
`*CREDENTIAL*` …), annotations with such names, `data`/`stringData` entries, the argument after a `--token`-like flag
in a list (container `args`/`command`), the inline value of an Envoy data source that holds a secret
(`generic_secret.secret.inline_string`, `private_key.inline_bytes`), and the documents inside strings: the JSON of
`kubectl.kubernetes.io/last-applied-configuration` and a kubeconfig held in an env var. In every string (object leaves,
log lines, Envoy stats) the text says it: `Authorization: Bearer …`/`Basic …`, `Cookie:`/`Set-Cookie:` values,
`token=…`/`password=…`/`api_key=…`/`--token …`, tokens whose shape names their issuer (AWS access key ids, GitHub
`ghp_…`, Slack `xoxb-…`, GitLab `glpat-…`, Hugging Face `hf_…`, `sk-…` API keys, …), JWTs, PEM private key blocks (also
base64-encoded, as in a kubeconfig's `client-key-data`), URLs that carry `user:password@` and signed-URL signatures.

Names that only look secret stay readable: lookup keys (`runtime_key`, `topologyKey`), references to a secret
(`*_FILE`, `*_PATH`, `secretName`), tokenizer names and token counts (`max_tokens=512`).

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

import yaml

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
    PROVIDER_TOKEN = "provider-token"  # a token whose shape names its issuer: ghp_…, xoxb-…, glpat-…, hf_…, sk-…
    COOKIE = "cookie"  # a Cookie/Set-Cookie value
    URL_SIGNATURE = "url-signature"  # the signature of a pre-signed URL (X-Amz-Signature=, sig=)


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
# Names whose KEY is a lookup key, not a key to anything: Envoy `runtime_key`/`runtime_key_prefix`, rate limit
# `descriptor_key`, Kubernetes `topologyKey`, `matchLabelKeys`.
_LOOKUP_KEY_SUFFIXES = (
    "RUNTIME_KEY",
    "_KEY_PREFIX",
    "TOPOLOGY_KEY",
    "METADATA_KEY",
    "DESCRIPTOR_KEY",
    "LABEL_KEY",
    "LABEL_KEYS",
    "HEADER_KEY",
    "PARTITION_KEY",
)


def _normal_name(name: str) -> str:
    """`secretKeyRef` → `SECRET_KEY_REF`, `api-key` → `API_KEY`: one spelling for the word tests."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^A-Za-z0-9]+", "_", spaced).upper().strip("_")


def secret_name(name: str) -> bool:
    """Whether an env var, parameter, annotation or data key name says its value is a secret."""
    normal = _normal_name(name)
    if not normal or normal in ("KEY", "KEYS"):
        return False  # a bare `key` names something (tolerations, selectors, header entries), it is not a secret
    if normal.endswith(_REFERENCE_SUFFIXES) or normal.endswith(_LOOKUP_KEY_SUFFIXES):
        return False
    normal = normal.replace("TOKENIZER", "").replace("TOKENISER", "")  # a model's tokenizer, not a token
    return any(word in normal for word in _SECRET_WORDS)


def _token_count(name: str, value: str) -> bool:
    """`max_tokens=512`, `MAX_NEW_TOKENS: "256"`: LLM serving settings and usage counts, not tokens."""
    return value.isdigit() and "TOKENS" in _normal_name(name)


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
# base64 of "-----BEGIN": a PEM block encoded once more (kubeconfig `client-key-data`, Secret-like data).
_PEM_BASE64_MARK = "LS0tLS1CRUdJTi"
_PEM_BASE64 = re.compile(_PEM_BASE64_MARK + r"[A-Za-z0-9+/]*={0,2}")
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*\[?[\"']?\s*)"
    r"(Bearer|Basic|Token|Digest|Negotiate|AWS4-HMAC-SHA256|ApiKey)?(\s*)([^\s\"'\],;}][^\"'\]\n,;}]*)"
)
_COOKIE_HEADER = re.compile(r"(?i)\b(set-cookie|cookie)[\"']?\s*[:=]\s*\[?\s*[\"']?")
_COOKIE_PAIR = re.compile(r"[ \t]*([^=;,\s\"'\]]+)=([^;\s\"'\]]*)")
_BEARER = re.compile(r"\b(Bearer)(\s+)([A-Za-z0-9._~+/=-]{8,})")
_BASIC = re.compile(r"\b(Basic)(\s+)([A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])")
_URL_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@\"']+:)([^/\s@\"']+)(@)")
_URL_SIGNATURE = re.compile(r"(?i)([?&](?:x-amz-signature|signature|sig)=)([^&\s\"'#]+)")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# Tokens that say who issued them. The `issuer` ones are unmistakable by their prefix; the `random` ones (`hf_…`,
# `sk-…`) could also start a name, so they must look random too (see `_looks_random`).
# Grouped by first letter: it runs on every line, and this shape lets the regex engine skip most positions fast.
_KNOWN_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_])(?:"
    r"(?P<aws>A(?:KIA|SIA|GPA|IDA|ROA|NPA)[A-Z0-9]{16})(?![A-Za-z0-9_])"
    r"|(?P<issuer>AIza[A-Za-z0-9_-]{35}"
    r"|g(?:h[pousr]_[A-Za-z0-9]{30,}|ithub_pat_[A-Za-z0-9_]{30,}|lpat-[A-Za-z0-9_-]{20,})"
    r"|x(?:ox[abposr]|app-[0-9])-[A-Za-z0-9-]{10,}|npm_[A-Za-z0-9]{36,}|pypi-AgE[A-Za-z0-9_-]{50,}"
    r"|[sr]k_live_[A-Za-z0-9]{20,})(?![A-Za-z0-9_-])"
    r"|(?P<random>hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{32,})(?![A-Za-z0-9_-])"
    r")"
)
# `key=value`, `key: value`, `"key": "value"`, and for flags also `--key value`, `"--key", "value"` (a list written
# out) and a YAML list item on the next line. A key is a whole run of name characters holding a credential word.
_PARAM_WORDS = (
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|token(?!i[sz]e)|password|passwd|pwd|passphrase"
    r"|client[_-]?secret|secret[_-]?access[_-]?key|secret|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|client[_-]?key[_-]?data|account[_-]?key|credentials?"
)
# `_PARAM` runs on the lower-cased line (several times faster than IGNORECASE); `_PARAM_ANY_CASE` when lowering
# changes the length and so the offsets.
_PARAM = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<key>(?P<dash>--?)?[A-Za-z0-9_.-]*?(?:" + _PARAM_WORDS + r")[A-Za-z0-9_.-]*)"
    r"(?P<sep>[\"']?\s*[:=]\s*|(?(dash)(?:[\"']\s*,\s*(?=[\"'])|[ \t]*\r?\n[ \t]*-[ \t]+|[ \t]+)|(?!)))"
    # a value quoted inside a JSON string is quoted as `\"`: the backslash belongs to the quote, not the value
    r"(?P<quote>\\?[\"']?)"
    r"(?P<value>(?:[^\s\"'&,;}\]\\]|\\(?![\"']))+)"
)
_PARAM_ANY_CASE = re.compile(_PARAM.pattern, re.IGNORECASE)
# Cheap test before `_PARAM`: most log lines hold none of these stems, and `_PARAM` is the costliest pattern.
_PARAM_STEMS = ("token", "pass", "pwd", "secret", "key", "credential")


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


def _looks_random(value: str) -> bool:
    """Both cases, and a digit or many capitals: a generated token, not a name (Kubernetes names are lower case) nor
    a CamelCase identifier (`AutoModelForSequenceClassification`: a capital per word)."""
    upper = sum(1 for c in value if c.isupper())
    lower = sum(1 for c in value if c.islower())
    if not upper or not lower:
        return False
    return any(c.isdigit() for c in value) or upper >= 0.3 * (upper + lower)


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
    # Each pattern runs only when the text it needs is there: a substring test costs a small part of a regex scan,
    # and this runs on every line of every log.
    if _PEM_BASE64_MARK in out:
        out = _redact_pem_base64(out, found)
    out = _redact_auth_headers(out, found)
    if "ookie" in out or "OOKIE" in out:
        out = _redact_cookies(out, found)
    if "Bearer" in out:
        out = sub(_BEARER, SecretKind.BEARER_TOKEN, 3, out)
    if "Basic" in out:
        out = _redact_basic(out, found)
    if "@" in out:
        out = sub(_URL_CREDENTIALS, SecretKind.URL_CREDENTIALS, 2, out)
    if "?" in out:
        out = sub(_URL_SIGNATURE, SecretKind.URL_SIGNATURE, 2, out)
    if "eyJ" in out:
        out = sub(_JWT, SecretKind.JWT, 0, out)
    out = _redact_known_tokens(out, found)
    lowered = out.lower()
    if any(stem in lowered for stem in _PARAM_STEMS):
        out = _redact_params(out, lowered, found)
    return out, found


def _redact_pem_base64(text: str, found: _Found) -> str:
    def replace(match: re.Match[str]) -> str:
        encoded = match.group(0)
        head = encoded[:64]
        try:
            decoded = base64.b64decode(head[: len(head) - len(head) % 4])
        except (binascii.Error, ValueError):
            return encoded
        if b"PRIVATE KEY" not in decoded:
            return encoded  # a certificate or a public key: public, and useful to read
        found.append((SecretKind.PRIVATE_KEY, len(encoded)))
        return REPLACEMENT

    return _PEM_BASE64.sub(replace, text)


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


def _redact_cookies(text: str, found: _Found) -> str:
    """`Cookie: a=1; b=2` masks every value; `Set-Cookie: a=1; Path=/; HttpOnly` only the first (the rest are
    attributes). Cookie names stay: they tell which session or service it was."""
    pieces: list[str] = []
    done = 0
    for header in _COOKIE_HEADER.finditer(text):
        if header.start() < done:
            continue
        only_first = header.group(1).lower() == "set-cookie"
        pos = header.end()
        while True:
            pair = _COOKIE_PAIR.match(text, pos)
            if pair is None:
                break
            value = pair.group(2)
            if value and REPLACEMENT not in value and not _is_reference_value(value):
                found.append((SecretKind.COOKIE, len(value)))
                pieces.append(text[done : pair.start(2)])
                pieces.append(REPLACEMENT)
                done = pair.end(2)
            pos = pair.end()
            if only_first or not text.startswith(";", pos):
                break
            pos += 1
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _redact_basic(text: str, found: _Found) -> str:
    def replace(match: re.Match[str]) -> str:
        value = match.group(3)
        if not _is_basic_credentials(value):
            return match.group(0)
        found.append((SecretKind.BASIC_AUTH, len(value)))
        return f"{match.group(1)}{match.group(2)}{REPLACEMENT}"

    return _BASIC.sub(replace, text)


def _redact_known_tokens(text: str, found: _Found) -> str:
    def replace(match: re.Match[str]) -> str:
        value = match.group(0)
        if match.lastgroup == "aws":
            found.append((SecretKind.AWS_ACCESS_KEY, len(value)))
        elif match.lastgroup == "random" and not _looks_random(value[3:]):
            return value
        else:
            found.append((SecretKind.PROVIDER_TOKEN, len(value)))
        return REPLACEMENT

    return _KNOWN_TOKEN.sub(replace, text)


def _redact_params(text: str, lowered: str, found: _Found) -> str:
    if len(lowered) == len(text):
        matches = _PARAM.finditer(lowered)
    else:
        matches = _PARAM_ANY_CASE.finditer(text)
    pieces: list[str] = []
    done = 0
    for match in matches:
        key = text[match.start("key") : match.end("key")]
        sep = match.group("sep")
        start = match.start("value")
        value = text[start : match.end("value")]
        if REPLACEMENT in value or value.startswith("***"):
            continue
        if match.start("dash") >= 0 and ":" not in sep and "=" not in sep and value.startswith("-"):
            continue  # `--token --verbose`: the flag has no value here
        quote = match.group("quote")
        if quote and value.endswith(quote):
            value = value[:-1]
        if not value or _is_reference_value(value) or _token_count(key, value):
            continue
        if _normal_name(key).endswith(_REFERENCE_SUFFIXES):
            continue  # `--token-file /var/run/token`, `secret_name=…`: where the secret is, not it
        found.append((_param_kind(key), len(value)))
        pieces.append(text[done:start])
        pieces.append(REPLACEMENT)
        done = start + len(value)
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _worth_masking(value: str, name: str = "") -> bool:
    """A structural secret slot holding a flag or a reference has nothing to hide (and keeping it helps diagnosis)."""
    return bool(value) and not _is_reference_value(value) and not _token_count(name, value)


def _is_reference_value(value: str) -> bool:
    """Values that point at a secret instead of holding one: `$(VAR)`, `${VAR}`, `<redacted>`, `[redacted]` (and
    Envoy's own mask of `inline_bytes`, base64 of `[redacted]`)."""
    return value.startswith(("$(", "${", "<", "[")) or value.lower() in _NOTHING_TO_HIDE


_NOTHING_TO_HIDE = frozenset({"true", "false", "null", "none", "", "w3jlzgfjdgvkxq=="})


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
        return _walk_list(value, path, prefix, found, parent_key)
    if isinstance(value, str):
        return _scan_string(value, path, prefix, found)
    return value


# A flag whose name holds a credential word as the text patterns know them (`--tls-key /path` is not one).
_SECRET_FLAG = re.compile(r"--?(?=[a-z])[a-z0-9_.-]*?(?:" + _PARAM_WORDS + r")[a-z0-9_.-]*")


def _walk_list(value: list[Any], path: str, prefix: str, found: list[Redaction], parent_key: str | None) -> list[Any]:
    """Items as `_walk` does them, and in an argument list (`["--token", "abc"]`) the value after a secret flag."""
    out: list[Any] = []
    flag: str | None = None
    for index, item in enumerate(value):
        child = f"{path}[{index}]"
        if flag is not None and isinstance(item, str) and not item.startswith("-") and _worth_masking(item, flag):
            found.append(Redaction(_param_kind(flag), f"{prefix}{child} (after {flag})", len(item)))
            out.append(REPLACEMENT)
            flag = None
            continue
        out.append(_walk(item, child, prefix, found, parent_key))
        flag = item if isinstance(item, str) and item.startswith("-") and _secret_flag(item) else None
    return out


def _secret_flag(item: str) -> bool:
    """`--token`, `-password`, `--api-key`: a flag, without `=value`, whose name says its value is a secret."""
    return _SECRET_FLAG.fullmatch(item.lower()) is not None and secret_name(item)


def _walk_mapping(
    value: Mapping[str, Any], path: str, prefix: str, found: list[Redaction], parent_key: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pair_name = _pair_name(value)
    pair_kind: SecretKind | None = None
    if pair_name is not None:
        if secret_name(pair_name):
            pair_kind = SecretKind.ENV_VALUE
        elif pair_name.lower() in ("cookie", "set-cookie"):
            pair_kind = SecretKind.COOKIE
    for raw_key, item in value.items():
        key = str(raw_key)
        child = _child_path(path, key)
        if key == "value" and pair_kind is not None and isinstance(item, str) and _worth_masking(item, pair_name or ""):
            found.append(Redaction(pair_kind, f"{prefix}{child} ({pair_name})", len(item)))
            out[raw_key] = REPLACEMENT
            continue
        if key in _INLINE_SOURCE_KEYS and isinstance(item, str) and _secret_source(parent_key) and _worth_masking(item):
            found.append(Redaction(SecretKind.FIELD_VALUE, f"{prefix}{child}", len(item)))
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
        if isinstance(item, str) and _worth_masking(item, key) and secret_name(key) and key not in _STRUCTURAL_KEYS:
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
# The inline forms of an Envoy DataSource, and the forms that only point at the secret.
_INLINE_SOURCE_KEYS = frozenset({"inline_string", "inline_bytes", "inlineString", "inlineBytes"})
_SOURCE_REFERENCE_KEYS = frozenset({"filename", "environment_variable", "environmentVariable"})


def _secret_source(name: str | None) -> bool:
    """Whether an Envoy data source named so holds a secret: `generic_secret.secret`, `hmac_secret`, session ticket
    `keys` (not `certificate_chain`, `trusted_ca`, a direct response `body` or Lua code)."""
    return name is not None and (secret_name(name) or name == "keys")


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
        return {
            k: v if k in _SOURCE_REFERENCE_KEYS else _mask_leaves(v, _child_path(path, str(k)), prefix, found)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_leaves(v, f"{path}[{i}]", prefix, found) for i, v in enumerate(value)]
    if isinstance(value, str) and _worth_masking(value):
        found.append(Redaction(SecretKind.FIELD_VALUE, f"{prefix}{path}", len(value)))
        return REPLACEMENT
    return value


def _scan_string(value: str, path: str, prefix: str, found: list[Redaction]) -> str:
    if "users" in value and "clusters" in value and "contexts" in value:
        embedded = _kubeconfig(value, path, prefix, found)
        if embedded is not None:
            return embedded
    masked, hits = redact_text(value)
    for kind, chars in hits:
        found.append(Redaction(kind, f"{prefix}{path}", chars))
    return masked


def _kubeconfig(value: str, path: str, prefix: str, found: list[Redaction]) -> str | None:
    """A whole kubeconfig in a string (an env var such as `KUBECONFIG_CONTENT`, a ConfigMap entry): redacted as an
    object so `client-key-data`, `token`, `password`, exec env and args are found by their place. None when the
    string is not a kubeconfig or nothing in it is secret (the caller then scans it as text)."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        parsed = yaml.load(value, Loader=loader)  # noqa: S506 - a safe loader, the C one when there is one
    except (yaml.YAMLError, ValueError, RecursionError):  # ValueError: a timestamp-looking scalar that is no date
        return None
    if not isinstance(parsed, Mapping) or not isinstance(parsed.get("users"), list):
        return None
    inner: list[Redaction] = []
    redacted = _walk(parsed, "", "", inner, parent_key=None)
    if not inner:
        return None
    for r in inner:
        found.append(Redaction(r.kind, f"{prefix}{path} -> {r.where.strip()}", r.chars))
    if value.lstrip().startswith("{"):
        return json.dumps(redacted, ensure_ascii=False, default=str) + ("\n" if value.endswith("\n") else "")
    text: str = yaml.safe_dump(redacted, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _child_path(path: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}"
    return f'{path}["{key}"]'
