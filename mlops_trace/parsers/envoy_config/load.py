"""Reading a `/config_dump` file: streamed when the streaming reader can promise `json.load`'s result, else read
whole; either way the error names the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlops_trace.errors import InputError
from mlops_trace.parsers.envoy_config.document import parse_document, require_routing
from mlops_trace.parsers.envoy_config.model import ConfigDumpWithoutRouting, EnvoyConfig
from mlops_trace.parsers.envoy_config.streaming import NotStreamable, stream_config_dump

__all__ = ["load_config_dump"]


def load_config_dump(path: Path) -> EnvoyConfig:
    """Read a `/config_dump` JSON file. Raises InputError naming the file when it cannot be read or is not a dump,
    and its subclass ConfigDumpWithoutRouting (`<path>: holds only ECDS, Secrets: no listeners, routes or clusters to
    check`) when it is a dump with no Listeners, Routes or Clusters section.

    The file is streamed (ijson): each route, cluster and endpoint entry is turned into its small parsed form as
    soon as it is read, so memory follows what the EnvoyConfig keeps, not the size of the JSON. A file the
    streaming reader cannot take exactly as `json.load` would (a syntax error, duplicate keys on the way to the
    resources, a lone surrogate escape, a section whose `@type` is not its first key), or in a shape it does not
    stream (the map form of `configs`, bare RouteConfiguration entries), is read whole instead, which gives the same
    result or the same error. A leading UTF-8 byte-order mark is dropped, as `utf-8-sig` does.
    """
    try:
        config = stream_config_dump(path)
    except NotStreamable:
        config = _load_whole(path)
    try:
        return require_routing(config)
    except ConfigDumpWithoutRouting as error:
        raise ConfigDumpWithoutRouting(f"{path}: {error}", error.sections) from None


def _load_whole(path: Path) -> EnvoyConfig:
    try:
        with path.open("r", encoding="utf-8-sig") as handle:
            document = json.load(handle)
    except OSError as error:
        raise InputError(f"{path}: cannot read config_dump ({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: config_dump is not UTF-8 text") from error
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}: config_dump is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from error
    except RecursionError as error:
        raise InputError(f"{path}: config_dump JSON is nested too deeply") from error
    try:
        return parse_document(document)
    except InputError as error:
        raise InputError(f"{path}: {error}") from error
