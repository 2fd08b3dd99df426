# mypy: ignore-errors
"""Our stand-in for Knative's queue-proxy (a Go binary, not available here), configured by the environment variables
Knative's revision reconciler gives the `queue-proxy` container (knative/serving
pkg/reconciler/revision/resources/queue.go): it listens on QUEUE_SERVING_PORT and proxies every request to
127.0.0.1:USER_PORT.

Semantics kept (knative/serving pkg/http/handler/timeout.go at 34da024, KSERVE-FACTS §4.3/§5.4):
- REVISION_TIMEOUT_SECONDS bounds the whole request and REVISION_RESPONSE_START_TIMEOUT_SECONDS (when > 0) the wait
  for the first response byte; either gives `504` with the body `request timeout` (no newline; Go sniffs
  `text/plain; charset=utf-8`) and a zap warning `Request timeout: <timeout>` / `Response start timeout: <timeout>`;
- a refused connection to the user container gives `502` with Go's dial error text and the zap error
  `error reverse proxying request; sockstat: …` (knative.dev/pkg network/error_handler.go);
- with SERVING_ENABLE_REQUEST_LOG=true, one request-log line per request rendering the fields of the
  `logging.request-log-template` example of config-observability (knative/serving
  config/core/configmaps/observability.yaml) — only that template's fields, it is no Go template engine;
- zap JSON logs (config-logging: timestamp, severity, logger `queueproxy`, caller, message) with `knative.dev/key`
  `<ns>/<revision>` and `knative.dev/pod`.
Not kept: concurrency limits and the breaker, metrics on 9090/9091, the admin port, probes of the user container.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                        "upgrade", "host", "content-length"})
TIMEOUT_BODY = b"request timeout"


def _env_seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def _sockstat() -> str:
    try:
        with open("/proc/net/sockstat", encoding="ascii") as handle:
            return handle.read()
    except OSError as exc:
        return str(exc)


def _go_duration(seconds: float) -> str:
    return f"{seconds:g}s"


class QueueProxy:
    def __init__(self) -> None:
        self.user_port = int(os.environ["USER_PORT"])
        self.port = int(os.environ["QUEUE_SERVING_PORT"])
        self.timeout = _env_seconds("REVISION_TIMEOUT_SECONDS", 300.0)
        self.response_start = _env_seconds("REVISION_RESPONSE_START_TIMEOUT_SECONDS", 0.0)
        self.key = f"{os.environ.get('SERVING_NAMESPACE', '')}/{os.environ.get('SERVING_REVISION', '')}"
        self.pod = os.environ.get("SERVING_POD", "")
        self.pod_ip = os.environ.get("SERVING_POD_IP", "")
        self.request_log = (os.environ.get("SERVING_ENABLE_REQUEST_LOG") == "true"
                            and bool(os.environ.get("SERVING_REQUEST_LOG_TEMPLATE")))
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.user_port}", trust_env=False,
                                        timeout=httpx.Timeout(None))

    def log(self, severity: str, caller: str, message: str, **fields: Any) -> None:
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        line = {"severity": severity, "timestamp": now, "logger": "queueproxy", "caller": caller,
                "message": message, **fields, "knative.dev/key": self.key, "knative.dev/pod": self.pod}
        print(json.dumps(line), flush=True)

    def access(self, request: Request, body: bytes, code: int, size: int, started: float) -> None:
        if not self.request_log:
            return
        client = request.client
        line = {"httpRequest": {
            "requestMethod": request.method,
            "requestUrl": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "requestSize": str(len(body)), "status": code, "responseSize": str(size),
            "userAgent": request.headers.get("user-agent", ""),
            "remoteIp": f"{client.host}:{client.port}" if client else "",
            "serverIp": self.pod_ip, "referer": request.headers.get("referer", ""),
            "latency": f"{time.monotonic() - started:.9f}s", "protocol": f"HTTP/{request.scope.get('http_version')}",
        }, "traceId": request.headers.get("x-b3-traceid", "")}
        print(json.dumps(line), flush=True)

    def _timeout_response(self, which: str, seconds: float) -> Response:
        self.log("WARN", "handler/timeout.go", f"{which}: {_go_duration(seconds)}")
        return Response(TIMEOUT_BODY, status_code=504, headers={"content-type": "text/plain; charset=utf-8",
                                                                "date": formatdate(usegmt=True)})

    async def handle(self, request: Request) -> Response:
        started = time.monotonic()
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        headers.append(("host", request.headers.get("host", "")))
        forwarded = request.headers.get("x-forwarded-for")
        client_ip = request.client.host if request.client else ""
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
        headers.append(("x-forwarded-for", f"{forwarded}, {client_ip}" if forwarded else client_ip))
        limit = self.timeout
        which = "Request timeout"
        if 0 < self.response_start < limit:
            limit, which = self.response_start, "Response start timeout"
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            upstream = await asyncio.wait_for(self.client.request(request.method, url, content=body, headers=headers),
                                              timeout=limit)
        except TimeoutError:
            response = self._timeout_response(which, limit)
        except httpx.ConnectError as exc:
            self.log("ERROR", "network/error_handler.go", "error reverse proxying request; sockstat: " + _sockstat(),
                     error=str(exc))
            text = f"dial tcp 127.0.0.1:{self.user_port}: connect: connection refused\n"
            response = Response(text.encode(), status_code=502, headers={
                "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff",
                "date": formatdate(usegmt=True)})
        else:
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            response = Response(upstream.content, status_code=upstream.status_code, headers=kept)
        self.access(request, body, response.status_code, len(response.body), started)
        return response


def main() -> None:
    proxy = QueueProxy()
    app = Starlette(routes=[Route("/{path:path}", proxy.handle, methods=["GET", "POST", "PUT", "DELETE", "HEAD",
                                                                         "OPTIONS", "PATCH"])])
    proxy.log("INFO", "sharedmain/main.go", "Starting queue-proxy")
    proxy.log("INFO", "sharedmain/main.go", f"Starting http server main:{proxy.port}")
    # proxy_headers off: the request log's remoteIp is the TCP peer, as Go's RemoteAddr is.
    uvicorn.run(app, host="127.0.0.1", port=proxy.port, log_level="warning", access_log=False,
                server_header=False, date_header=False, proxy_headers=False)
    sys.exit(0)


if __name__ == "__main__":
    main()
