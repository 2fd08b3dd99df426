"""Small text helpers the line parsers share: timestamps, the `kubectl logs --timestamps` prefix, Go-quoted strings.

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

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
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
            value = text[value_start:index]
        if key:
            pairs.append((key, value))
    return pairs


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
