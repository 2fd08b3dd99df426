"""Lenient reading of Envoy's protobuf JSON: camelCase keys turned into Envoy's snake_case, and typed access to
values that may be missing or of another type (a wrong type reads as absent, never as an error).

Shared by the whole-document read (`document`), the per-resource readers (`resources`) and the streaming read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "SNAKE_CACHE",
    "as_integer",
    "as_list",
    "as_map",
    "as_maps",
    "as_text",
    "as_uint32",
    "snake_key",
    "snake_keys",
    "type_name",
]

_CAMEL_KEY = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+")
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


SNAKE_CACHE: dict[str, str] = {}
_SNAKE_CACHE_LIMIT = 65_536  # key names repeat in every resource; user-chosen metadata keys must not grow it forever


def snake_key(key: object) -> object:
    if not isinstance(key, str):
        return key
    snake = SNAKE_CACHE.get(key)
    if snake is None:
        snake = _CAMEL_BOUNDARY.sub("_", key).lower() if _CAMEL_KEY.fullmatch(key) else key
        if len(SNAKE_CACHE) >= _SNAKE_CACHE_LIMIT:
            SNAKE_CACHE.clear()
        SNAKE_CACHE[key] = snake
    return snake


def snake_keys(value: Any) -> Any:
    """The same JSON value with camelCase object keys turned into Envoy's snake_case (`routeConfigName`)."""
    if isinstance(value, dict):
        return {snake_key(key): snake_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snake_keys(item) for item in value]
    return value


def as_map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_maps(value: object) -> Iterator[Mapping[str, Any]]:
    return (item for item in as_list(value) if isinstance(item, Mapping))


def as_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_uint32(value: object) -> int | None:
    """A proto `UInt32Value` (a cluster weight): a larger or negative number is no value Envoy could hold."""
    number = as_integer(value)
    return number if number is not None and 0 <= number <= 0xFFFFFFFF else None


def as_integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def type_name(document: Mapping[str, Any]) -> str:
    """`type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig` → `DynamicRouteConfig`."""
    type_url = as_text(document.get("@type")) or ""
    return type_url.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
