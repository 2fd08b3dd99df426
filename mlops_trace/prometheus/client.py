"""Talk to a Prometheus server through prometheus-api-client (imported when a client is made): instant queries
with a bearer token or basic auth, TLS verified by default (system CAs, or `--prometheus-cacert`).

Every failure is a `ClusterError` with one line that names the server and what went wrong (unreachable, TLS,
credentials refused, query rejected); a token or password never appears in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

from mlops_trace.errors import ClusterError, InputError, UsageError

_STATUS = re.compile(r"HTTP Status Code (\d{3})")


class QuerySource(Protocol):
    """Anything that answers an instant PromQL query with the API's `data.result` (the collector's only need)."""

    def query(self, promql: str) -> Any: ...


@dataclass(frozen=True)
class PrometheusConfig:
    url: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    cacert: Path | None = None
    insecure: bool = False
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--prometheus must be an http(s) URL such as http://prometheus:9090 (got {self.url!r})")
        if self.token and (self.username or self.password):
            raise UsageError("--prometheus-token and --prometheus-user/--prometheus-password do not go together")
        if bool(self.username) != bool(self.password):
            raise UsageError("basic auth needs both --prometheus-user and --prometheus-password")
        if self.cacert is not None and self.insecure:
            raise UsageError("--prometheus-cacert and --prometheus-insecure do not go together")
        if self.cacert is not None and not self.cacert.is_file():
            raise InputError(f"--prometheus-cacert {self.cacert}: no such file")
        if self.timeout <= 0:
            raise UsageError("the Prometheus timeout must be above 0 seconds")

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def verify(self) -> bool | str:
        """What `requests` verifies TLS with: a CA file, the system CAs (True), or nothing (False)."""
        if self.insecure:
            return False
        return str(self.cacert) if self.cacert is not None else True


class PrometheusClient:
    """Instant queries against one server. Use as a context manager so the HTTP session is closed."""

    def __init__(self, config: PrometheusConfig) -> None:
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.config = config
        session = requests.Session()
        session.verify = config.verify()
        # One quick retry on gateway errors; a refused connection is reported at once.
        retry = Retry(total=1, connect=0, read=0, status=1, backoff_factor=0.2, status_forcelist=(502, 503, 504),
                      allowed_methods=frozenset({"GET"}), raise_on_status=False)
        auth = (config.username, config.password) if config.username and config.password else None
        self._connection: Any = PrometheusConnect(
            url=config.base_url,
            headers=config.headers() or None,
            disable_ssl=config.insecure,
            retry=retry,
            auth=auth,
            session=session,
            timeout=config.timeout,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def all_targets_scraped(self) -> bool | None:
        """Whether every active scrape target has been scraped at least once; None when the server has no targets
        API (a Thanos or Mimir query front end) or refuses it."""
        import requests
        from prometheus_api_client.exceptions import PrometheusApiClientException

        try:
            data = self._connection.get_targets(state="active")
        except (requests.exceptions.RequestException, PrometheusApiClientException, ValueError, KeyError):
            return None
        targets = data.get("activeTargets") if isinstance(data, Mapping) else None
        if not isinstance(targets, list):
            return None
        return bool(targets) and not any(_never(t.get("lastScrape")) for t in targets if isinstance(t, Mapping))

    def query(self, promql: str) -> Any:
        """The `data.result` of an instant query (a list of samples, or `[time, value]` for a scalar)."""
        import requests
        from prometheus_api_client.exceptions import PrometheusApiClientException

        where = self.config.base_url
        try:
            return self._connection.custom_query(promql)
        except requests.exceptions.SSLError as exc:
            raise ClusterError(
                f"Prometheus at {where}: TLS verification failed ({_first_line(exc)}); give --prometheus-cacert, "
                "or --prometheus-insecure to skip verification"
            ) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise ClusterError(f"cannot reach Prometheus at {where}: {_connect_reason(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            raise ClusterError(f"Prometheus at {where}: {_first_line(exc)}") from exc
        except PrometheusApiClientException as exc:
            raise ClusterError(_api_error(where, str(exc), promql)) from exc
        except ValueError as exc:  # a 200 that is not the API's JSON (a login page, a proxy)
            raise ClusterError(f"Prometheus at {where} did not answer the query API's JSON ({exc})") from exc
        except KeyError as exc:
            raise ClusterError(f"Prometheus at {where} answered without data.result") from exc


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def _connect_reason(exc: BaseException) -> str:
    """The socket-level reason buried in requests' and urllib3's wrapped messages (`Connection refused`)."""
    text = str(exc)
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return "timed out"
    match = _ERRNO.search(text)
    return match.group(1).strip() if match else _first_line(exc)


def _never(last_scrape: object) -> bool:
    """Prometheus reports a target it has not scraped yet with Go's zero time."""
    return not isinstance(last_scrape, str) or last_scrape.startswith("0001-01-01")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _api_error(where: str, message: str, promql: str) -> str:
    match = _STATUS.search(message)
    status = int(match.group(1)) if match else None
    if status in (401, 403):
        return f"Prometheus at {where} refused the credentials (HTTP {status}): check --prometheus-token or " \
               "--prometheus-user/--prometheus-password"
    if status == 404:
        return f"Prometheus at {where} has no /api/v1/query (HTTP 404): is the URL the server's root?"
    detail = _api_error_text(message)
    if status in (400, 422):
        return f"Prometheus at {where} rejected the query {promql!r}: {detail}"
    return f"Prometheus at {where} answered HTTP {status if status is not None else '?'}: {detail}"


def _api_error_text(message: str) -> str:
    """The API's own `error` text when the message carries its JSON body, else the message's first line."""
    import json

    start = message.find("{")
    end = message.rfind("}")
    if start != -1 and end > start:
        try:
            body = json.loads(message[start : end + 1].encode().decode("unicode_escape"))
        except (ValueError, UnicodeDecodeError):
            body = None
        if isinstance(body, Mapping) and isinstance(body.get("error"), str):
            return str(body["error"])[:300]
    return message.splitlines()[0][:300] if message else "no detail"
