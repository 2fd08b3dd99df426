"""Small text helpers the line parsers share: timestamps, the `kubectl logs --timestamps` prefix, the prefixes that
`kubectl logs --prefix`, stern and kubetail put before each line, Go-quoted strings, typographic quotes from pastes.

Nothing here raises on bad input: every helper returns None (or the input unchanged) when it cannot make sense of it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone

# `kubectl logs --timestamps` puts an RFC3339Nano time and one space before each line.
_KUBECTL_PREFIX = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) ")

_ISO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?"
)

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# `kubectl logs --prefix`: `[pod/NAME/CONTAINER] ` (the kind is `pod` for every line kubectl prints).
_KUBECTL_SOURCE = re.compile(r"\[pod/([a-z0-9][-a-z0-9.]*)/([a-z0-9][-a-z0-9]*)\] ?")
# stern (`POD CONTAINER message`, `NAMESPACE POD CONTAINER message` with --all-namespaces), a pod name alone (k9s and
# friends) and kubetail (`[POD] message`, `[POD CONTAINER] message`). A pod name has a `-` (generated names always do),
# so that ordinary words are not taken for one.
_NAME = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
_POD = r"[a-z0-9][-a-z0-9.]*-[-a-z0-9.]*[a-z0-9]"
_TAILER_SOURCES = (
    (re.compile(rf"({_POD}) ({_NAME}) +"), ("pod", "container")),
    (re.compile(rf"({_POD}) +"), ("pod",)),
    (re.compile(rf"({_NAME}) ({_POD}) ({_NAME}) +"), ("namespace", "pod", "container")),
    (re.compile(rf"\[({_POD})(?: ({_NAME}))?\] +"), ("pod", "container")),
)
# Typographic double quotes (and the double prime some fonts give) that word processors and chat tools put in place
# of `"`. Single ones (‘ ’) are left alone: in a log line they are apostrophes of the message.
_TYPOGRAPHIC_DOUBLE_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'})

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
_METHOD = re.compile(r"[A-Z][A-Z_-]*")
_NGINX_TIME = re.compile(r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?: ([+-])(\d{2})(\d{2}))?")

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
_HEX_ESCAPE_LENGTHS = {"x": 2, "u": 4, "U": 8}


def strip_line_end(line: str) -> str:
    """The line without its trailing newline (LF or CRLF)."""
    return line.removesuffix("\n").removesuffix("\r")


def strip_ansi(text: str) -> str:
    """Text without terminal colour escapes (zap and uvicorn colour their level when they think they own a TTY)."""
    return _ANSI_ESCAPE.sub("", text) if "\x1b" in text else text


def split_kubectl_timestamp(line: str) -> tuple[datetime | None, str]:
    """Split a `kubectl logs --timestamps` prefix off `line`: (its time, the rest), or (None, line) without one."""
    match = _KUBECTL_PREFIX.match(line)
    if match is None:
        return None, line
    when = parse_timestamp(match.group(1))
    if when is None:
        return None, line
    return when, line[match.end() :]


def split_source_prefix(line: str) -> tuple[dict[str, str], str]:
    """Split a `kubectl logs --prefix` source (`[pod/NAME/CONTAINER] `) off `line`: ({"pod": …, "container": …}, the
    rest), or ({}, line) without one. The prefixes of stern and kubetail are ambiguous with plain text, see
    `tailer_prefix_splits`."""
    if not line.startswith("[pod/"):
        return {}, line
    match = _KUBECTL_SOURCE.match(line)
    if match is None:
        return {}, line
    return {"pod": match.group(1), "container": match.group(2)}, line[match.end() :]


def tailer_prefix_splits(line: str) -> list[tuple[dict[str, str], str]]:
    """The ways `line` may begin with a prefix of stern (`POD CONTAINER `, `NAMESPACE POD CONTAINER `), of a tool that
    prints the pod name alone, or of kubetail (`[POD] `, `[POD CONTAINER] `): (source fields, the rest) for each, most
    likely first. Plain text can look the same, so a caller keeps a split only when the rest is a known log format."""
    splits: list[tuple[dict[str, str], str]] = []
    # Every form has a pod name, with its `-`, in its first two words: most lines are ruled out here, cheaply.
    first_space = line.find(" ")
    if first_space < 0:
        return splits
    if "-" not in line[:first_space]:
        second_space = line.find(" ", first_space + 1)
        second = line[first_space + 1 : second_space] if second_space > 0 else line[first_space + 1 :]
        if len(second) < 3 or "-" not in second:
            return splits
    for pattern, names in _TAILER_SOURCES:
        match = pattern.match(line)
        if match is not None and match.end() < len(line):
            source = {name: value for name, value in zip(names, match.groups(), strict=True) if value is not None}
            splits.append((source, line[match.end() :]))
    return splits


def straighten_quotes(text: str) -> str:
    """`text` with typographic double quotes (“ ” „ ″) turned into `"`, as a paste through a word processor, a chat
    tool or a blog engine needs before its quoted values can be read."""
    return text.translate(_TYPOGRAPHIC_DOUBLE_QUOTES)


def has_typographic_quotes(text: str) -> bool:
    """Whether `text` holds a typographic double quote that `straighten_quotes` would replace."""
    if text.isascii():  # nearly every line: one fast pass instead of four searches
        return False
    return "\u201c" in text or "\u201d" in text or "\u201e" in text or "\u2033" in text


def split_http_request(request: str) -> tuple[str | None, str | None, str | None]:
    """(method, path, protocol) of an HTTP request line (`POST /v2/models/x/infer HTTP/1.1`), Nones when it is not
    one (TLS bytes sent to a plain port, a truncated line)."""
    parts = request.split(" ")
    if len(parts) == 3 and _METHOD.fullmatch(parts[0]) is not None and parts[2].startswith("HTTP/"):
        return parts[0], parts[1], parts[2]
    return None, None, None


def _zone(text: str | None) -> timezone | None:
    if text is None:
        return None
    if text in ("Z", "z", "UTC"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    if hours > 23 or minutes > 59:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_timestamp(text: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 time (`T` or space, `.` or `,` fraction of any length, optional zone), or None.

    The result is timezone-aware exactly when the text carries a zone. Nanoseconds are truncated to microseconds.
    """
    match = _ISO_TIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone_text = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        zone = _zone(zone_text)
        if zone_text is not None and zone is None:
            return None
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=zone)
    except ValueError:
        return None


def parse_epoch(value: float | str) -> datetime | None:
    """A Unix time in seconds (or ms / µs / ns, told apart by magnitude) as an aware UTC datetime, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number) or number < 0:  # before 1970: not a log timestamp
        return None
    for limit, divisor in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
        if number >= limit:
            number /= divisor
            break
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_nginx_time(text: str) -> datetime | None:
    """nginx `$time_local` (`12/Jul/2025:18:30:09 +0000`) without depending on the process locale."""
    match = _NGINX_TIME.fullmatch(text.strip())
    if match is None:
        return None
    day, month_name, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None:
        return None
    zone: timezone | None = None
    if sign is not None:
        offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        zone = timezone(-offset if sign == "-" else offset)
    try:
        return datetime(int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=zone)
    except ValueError:
        return None


def read_go_quoted(text: str, start: int) -> tuple[str, int]:
    """Decode the Go-quoted string (strconv.Quote) that opens at `text[start] == '"'`.

    Returns the decoded value and the index just past the closing quote. An unterminated string takes the rest of the
    line; an unknown escape is kept as written, so a malformed value degrades instead of failing.
    """
    out: list[str] = []
    index = start + 1
    length = len(text)
    while index < length:
        char = text[index]
        if char == '"':
            return "".join(out), index + 1
        if char != "\\" or index + 1 >= length:
            out.append(char)
            index += 1
            continue
        code = text[index + 1]
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
            index += 2
        elif code in _HEX_ESCAPE_LENGTHS:
            width = _HEX_ESCAPE_LENGTHS[code]
            digits = text[index + 2 : index + 2 + width]
            decoded = _decode_number(digits, 16, width)
            out.append(decoded if decoded is not None else text[index : index + 2])
            index += 2 + width if decoded is not None else 2
        elif code in "01234567":
            digits = text[index + 1 : index + 4]
            decoded = _decode_number(digits, 8, 3)
            out.append(decoded if decoded is not None else text[index : index + 2])
            index += 4 if decoded is not None else 2
        else:
            out.append(text[index : index + 2])
            index += 2
    return "".join(out), length


def _decode_number(digits: str, base: int, width: int) -> str | None:
    if len(digits) != width:
        return None
    try:
        return chr(int(digits, base))
    except ValueError:
        return None


def read_logfmt_pairs(text: str, start: int = 0) -> list[tuple[str, str]]:
    """`key=value` pairs (values bare or Go-quoted) from `text[start:]`, in order.

    Tokens without `=` are skipped; a key with nothing after `=` gets the empty string.
    """
    pairs: list[tuple[str, str]] = []
    index = start
    length = len(text)
    while index < length:
        while index < length and text[index] in " \t":
            index += 1
        if index >= length:
            break
        token_start = index
        while index < length and text[index] not in " \t=":
            index += 1
        if index >= length or text[index] != "=":
            continue  # a bare word: not a pair
        key = text[token_start:index]
        index += 1
        if index < length and text[index] == '"':
            value, index = read_go_quoted(text, index)
        else:
            value_start = index
            while index < length and text[index] not in " \t":
                index += 1
            value = unquote_stray(text[value_start:index])
        if key:
            pairs.append((key, value))
    return pairs


def unquote_stray(value: str) -> str:
    """A bare logfmt value without the one stray quote a paste left at its end (`Name=Agent"`)."""
    if value.endswith('"') and value.count('"') == 1:
        return value[:-1]
    return value


def stringify(value: object) -> str:
    """A JSON value as text: strings as they are, everything else in JSON notation (`true`, `1.5`, `{"a": 1}`)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def to_int(text: str | None) -> int | None:
    """An integer from text, None for `-`, empty or anything else."""
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def to_float(text: str | None) -> float | None:
    """A float from text, None for `-`, empty, NaN or anything else."""
    if text is None:
        return None
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return None if math.isnan(number) else number
