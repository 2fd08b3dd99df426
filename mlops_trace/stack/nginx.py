"""The ingress hop: an nginx.conf in the shape ingress-nginx renders for the stack's Ingress objects.

Host routing for `ml-api.local`, `/v2/` to Envoy (the `seldon-mesh` Service), request ids kept or made (`$request_id`)
and passed upstream as `X-Request-ID`, the controller's default 17-field `upstreaminfo` access log, an h2c listener
whose gRPC location uses `grpc_pass`, and an answer 404 from the default backend for any other host or path.
The faults change what an Ingress would change: a `/<namespace>` prefix without a rewrite, or no snippet deriving
`seldon-model` for the experiment path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_trace.stack.topology import EXPERIMENT, EXPERIMENT_ROUTE, HOST, NAMESPACE

UPSTREAM_NAME = f"{NAMESPACE}-seldon-mesh-80"
DEFAULT_BACKEND = "upstream-default-backend"
EXPERIMENT_PATH = f"/v2/models/{EXPERIMENT}"
PREFIX_PATH = f"/{NAMESPACE}"

# ingress-nginx's default log_format `upstreaminfo`, whose 17 fields mlops_trace.parsers.nginx_access reads.
UPSTREAMINFO = (
    "'$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" "
    "\"$http_user_agent\" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] "
    "$upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id'"
)

# The configuration-snippet of the experiment's Ingress: name the Experiment when the client did not.
HEADER_SNIPPET = (
    "set $seldon_model $http_seldon_model;\n"
    f'if ($seldon_model = "") {{ set $seldon_model "{EXPERIMENT_ROUTE}"; }}\n'
    "proxy_set_header seldon-model $seldon_model;\n"
)


@dataclass(frozen=True)
class IngressLayout:
    ingress_prefix: bool
    header_derivation: bool


def _proxy_block(indent: str) -> str:
    lines = [
        f'set $proxy_upstream_name "{UPSTREAM_NAME}";',
        "proxy_pass http://seldon_mesh;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header Host $host;",
        "proxy_set_header X-Request-ID $req_id;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Host $host;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Scheme $scheme;",
        "proxy_connect_timeout 5s;",
        "proxy_read_timeout 60s;",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def _prefix_locations(path: str, body: str) -> str:
    """What ingress-nginx writes for a Prefix path without a trailing slash: `location /p/` and `location = /p`, so
    `/p` itself is proxied rather than redirected (301) to `/p/`."""
    return f"    location {path}/ {{\n{body}    }}\n    location = {path} {{\n{body}    }}\n"


def render(
    *,
    layout: IngressLayout,
    http_port: int,
    grpc_port: int,
    envoy_port: int,
    run_dir: Path,
    log_path: Path,
) -> str:
    """The whole nginx.conf (daemon off: the stack tracks the master process by PID)."""
    temp = run_dir / "tmp"
    inner = "        "
    if layout.ingress_prefix:
        # Prefix path without rewrite-target: proxy_pass without a URI part forwards the original URI, prefix and all.
        locations = _prefix_locations(PREFIX_PATH, _proxy_block(inner))
    else:
        locations = f"    location /v2/ {{\n{_proxy_block(inner)}    }}\n"
        if layout.header_derivation:
            snippet = "".join(f"{inner}{line}\n" for line in HEADER_SNIPPET.splitlines())
            locations += _prefix_locations(EXPERIMENT_PATH, _proxy_block(inner) + snippet)
    return f"""\
daemon off;
master_process on;
worker_processes 1;
pid {run_dir / "nginx.pid"};
error_log {log_path} notice;

events {{
    worker_connections 1024;
}}

http {{
    client_body_temp_path {temp / "client_body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    server_tokens off;
    keepalive_timeout 75s;

    log_format upstreaminfo {UPSTREAMINFO};
    map $http_x_request_id $req_id {{
        default $http_x_request_id;
        "" $request_id;
    }}
    access_log {log_path} upstreaminfo;

    upstream seldon_mesh {{
        server 127.0.0.1:{envoy_port};
        keepalive 32;
    }}
    # HTTP/1.1 and HTTP/2 keepalive connections cannot be shared: gRPC gets its own pool to the same Service.
    upstream seldon_mesh_grpc {{
        server 127.0.0.1:{envoy_port};
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{http_port} default_server;
        listen 127.0.0.1:{grpc_port} default_server;
        http2 on;
        server_name _;
        set $proxy_upstream_name "{DEFAULT_BACKEND}";
        set $proxy_alternative_upstream_name "";
        location / {{
            return 404;
        }}
    }}

    server {{
        listen 127.0.0.1:{http_port};
        # The default server turns HTTP/2 on for this address; without it here too, NGINX answers h2c with 421.
        http2 on;
        server_name {HOST};
        set $proxy_upstream_name "-";
        set $proxy_alternative_upstream_name "";
{locations}    }}

    server {{
        listen 127.0.0.1:{grpc_port};
        http2 on;
        server_name {HOST};
        set $proxy_upstream_name "-";
        set $proxy_alternative_upstream_name "";
        location /inference.GRPCInferenceService/ {{
            set $proxy_upstream_name "{UPSTREAM_NAME}";
            grpc_pass grpc://seldon_mesh_grpc;
            grpc_set_header Host $host;
            grpc_set_header X-Request-ID $req_id;
            grpc_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


def temp_dirs(run_dir: Path) -> list[Path]:
    return [run_dir / "tmp" / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
