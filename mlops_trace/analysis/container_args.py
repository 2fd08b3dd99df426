"""Reading a container's command line as Kubernetes runs it: `--flag=value` / `-flag value` tokens and `$(VAR)`
references expanded from the container's env."""

from __future__ import annotations

import re
from collections.abc import Mapping

VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_vars(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion in command and args: an undefined variable stays as written."""
    return VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def split_flag(token: str) -> tuple[str | None, str | None]:
    """`--name=value` / `-name value` → (name, value or None); a non-flag token gives (None, None)."""
    if not token.startswith("-") or token in ("-", "--"):
        return None, None
    body = token.lstrip("-")
    if "=" in body:
        name, value = body.split("=", 1)
        return name, value
    return body, None
