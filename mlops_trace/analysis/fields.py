"""Typed readers for the values of Kubernetes objects, one per rule of the API.

Objects reach the checks as plain YAML or JSON, and a hand-written bundle (or a lax CRD) may hold anything where a
number, a port or a name belongs: `.nan`, `.inf`, `true`, `-1`, `"9002x"`, a list, an integer of 400 digits. Each
reader here states one rule and returns None for a value that breaks it, so a check treats that value as unknown (or
reports it as invalid) instead of crashing on it; `shown` quotes such a value in a finding, whatever it is.

Hand-written YAML often quotes numbers (`replicas: "2"`), so the integer readers accept a string of ASCII digits, as
the checks always have; they accept a float only when it is a whole number (`9000.0`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "INT32_MAX",
    "MAX_PORT",
    "UINT32_MAX",
    "WEIGHT_RULE",
    "integer",
    "port",
    "port_name",
    "port_number",
    "replicas",
    "shown",
    "weight",
]

INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
MAX_PORT = 65535
WEIGHT_RULE = f"a whole number from 0 to {UINT32_MAX}"

# IANA_SVC_NAME, the form Kubernetes requires of a port name: at most 15 characters of a-z, 0-9 and '-', at least one
# letter, no '-' at either end and no '--'.
_PORT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,13}[a-z0-9])?")
_SHOWN_WIDTH = 40


def integer(value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """An integer field within [minimum, maximum]; None for anything else (a bool, NaN, infinity, a fraction, a
    string that is not all ASCII digits, a list or a mapping)."""
    number: int
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        # isdigit() alone would accept '²', which int() refuses; a digit string past any field's range is not read.
        if not text or not text.isascii() or not text.isdigit() or len(text) > 20:
            return None
        number = int(text)
    else:
        return None
    if minimum is not None and number < minimum:
        return None
    if maximum is not None and number > maximum:
        return None
    return number


def port_number(value: Any) -> int | None:
    """A port number (`containerPort`, a Service `port`): an integer from 1 to 65535."""
    return integer(value, minimum=1, maximum=MAX_PORT)


def port_name(value: Any) -> str | None:
    """A port name as Kubernetes accepts it (IANA_SVC_NAME: `http`, `agent-grpc`), else None."""
    if not isinstance(value, str) or "--" in value or not _PORT_NAME.fullmatch(value):
        return None
    return value if any("a" <= char <= "z" for char in value) else None


def port(value: Any) -> int | str | None:
    """An IntOrString port (`targetPort`, a NetworkPolicy port): a port number, or a port name; None when it is
    neither (absent, `true`, `-1`, `.nan`, a list…)."""
    number = port_number(value)
    if number is not None:
        return number
    return port_name(value)


def replicas(value: Any) -> int | None:
    """`spec.replicas` of a workload: absent or null means 1 (the API's default); None when it is not a count."""
    if value is None:
        return 1
    return integer(value, minimum=0, maximum=INT32_MAX)


def weight(value: Any) -> int | None:
    """The weight of an Experiment candidate (a uint32 in Seldon's API): absent or null means 0; None when it is not
    a whole number from 0 to 2**32-1 (negative, NaN, infinite, a fraction, `true`, text)."""
    if value is None:
        return 0
    return integer(value, minimum=0, maximum=UINT32_MAX)


def shown(value: Any) -> str:
    """A field value quoted the way YAML writes it, on one short line: `.nan`, `-.inf`, `true`, `null`, `'9002x'`,
    `a list`, and an integer too long to print as its number of digits."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 64:
            # str() of a huge int is slow and, past 4300 digits, refused outright.
            digits = int(value.bit_length() * math.log10(2)) + 1
            return f"a{' negative' if value < 0 else 'n'} integer of about {digits} digits"
        return str(value)
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= _SHOWN_WIDTH else text[: _SHOWN_WIDTH - 4] + "...'"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
