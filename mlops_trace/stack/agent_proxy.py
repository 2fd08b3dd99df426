"""The server-pod hop: a second Envoy in front of MLServer doing what Seldon's agent reverse proxy does for routing.

For REST it takes `seldon-internal-model` (set by Seldon's Envoy) and rewrites the path to `/v2/models/<m>_<v>/…`,
whatever model the URL named; for gRPC it rewrites the request's `model_name` (field 1 of ModelInferRequest,
ModelMetadataRequest and ModelReadyRequest) inside the gRPC frame. It keeps an incoming `x-request-id` and makes one
when there is none (a UUID, where Seldon's agent makes a 20-character xid). It does not put `x-request-id` in gRPC
trailers as Seldon's agent does. Without `seldon-internal-model` it answers like the agent: 404 `404 page not found`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

AGENT_LUA = r"""
local function encode_varint(n)
  local out = {}
  while n >= 128 do
    out[#out + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
  return table.concat(out)
end

local function read_varint(s, pos)
  local value, scale = 0, 1
  while pos <= #s do
    local b = string.byte(s, pos)
    pos = pos + 1
    value = value + (b % 128) * scale
    if b < 128 then return value, pos end
    scale = scale * 128
  end
  return nil, pos
end

-- Protobuf writes fields in number order, so a set model name (field 1, wire type 2) is the first field.
local function with_model_name(message, model)
  local rest = message
  if string.byte(message, 1) == 10 then
    local length, pos = read_varint(message, 2)
    if length == nil then return nil end
    rest = string.sub(message, pos + length)
  end
  return "\10" .. encode_varint(#model) .. model .. rest
end

local function frame(message)
  local n = #message
  return string.char(0, math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256,
    n % 256) .. message
end

local NAMED = {ModelInfer = true, ModelMetadata = true, ModelReady = true}

function envoy_on_request(handle)
  local headers = handle:headers()
  local path = headers:get(":path") or ""
  local model = headers:get("seldon-internal-model")
  local content_type = headers:get("content-type") or ""
  local grpc = string.find(content_type, "application/grpc", 1, true) ~= nil
  if model == nil or model == "" then
    if string.find(path, "^/v2/models/") or string.find(path, "^/inference%.GRPCInferenceService/Model") then
      handle:logWarn("Failed to extract model name seldon-internal-model:[] seldon-model:[" ..
        (headers:get("seldon-model") or "") .. "]")
      if grpc then
        handle:respond({[":status"] = "200", ["content-type"] = "application/grpc", ["grpc-status"] = "5",
          ["grpc-message"] = "failed to extract model name"}, "")
      else
        handle:respond({[":status"] = "404", ["content-type"] = "text/plain; charset=utf-8"}, "404 page not found\n")
      end
    end
    return
  end
  if grpc then
    local method = string.match(path, "^/inference%.GRPCInferenceService/(%w+)$")
    if method ~= nil and NAMED[method] then
      local body = handle:body()
      if body == nil then return end
      local raw = body:getBytes(0, body:length())
      if #raw >= 5 and string.byte(raw, 1) == 0 then
        local rewritten = with_model_name(string.sub(raw, 6), model)
        if rewritten ~= nil then body:setBytes(frame(rewritten)) end
      end
    end
    return
  end
  local rest = string.match(path, "^/v2/models/[^/?]+(.*)$")
  if rest ~= nil then
    headers:replace(":path", "/v2/models/" .. model .. rest)
  end
end
"""


def _listener(name: str, port: int, cluster: str, access_log: Path) -> dict[str, Any]:
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": _HCM,
                            "stat_prefix": name,
                            "codec_type": "AUTO",
                            "generate_request_id": True,
                            "preserve_external_request_id": True,
                            "always_set_request_id_in_response": True,
                            "server_header_transformation": "PASS_THROUGH",
                            "route_config": {
                                "name": name,
                                "virtual_hosts": [
                                    {
                                        "name": name,
                                        "domains": ["*"],
                                        "routes": [
                                            {"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "0s"}}
                                        ],
                                    }
                                ],
                            },
                            "access_log": [
                                {
                                    "name": "envoy.access_loggers.file",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3."
                                        "FileAccessLog",
                                        "path": str(access_log),
                                    },
                                }
                            ],
                            "http_filters": [
                                {
                                    "name": "envoy.filters.http.lua",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                                        "default_source_code": {"inline_string": AGENT_LUA},
                                    },
                                },
                                {
                                    "name": "envoy.filters.http.router",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                                        "suppress_envoy_headers": True,
                                    },
                                },
                            ],
                        },
                    }
                ]
            }
        ],
    }


def _cluster(name: str, port: int, http2: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                                                "port_value": port}}}}]}
            ],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return cluster


def bootstrap(
    *, admin_port: int, http_port: int, grpc_port: int, mlserver_http: int, mlserver_grpc: int, access_log: Path
) -> dict[str, Any]:
    """Static config: `agent_http` (Seldon's 9001) to MLServer HTTP, `agent_grpc` (9501) to MLServer gRPC."""
    return {
        "node": {"id": "agent", "cluster": "mlserver"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                _listener("agent_http", http_port, "mlserver_http", access_log),
                _listener("agent_grpc", grpc_port, "mlserver_grpc", access_log),
            ],
            "clusters": [_cluster("mlserver_http", mlserver_http, False), _cluster("mlserver_grpc", mlserver_grpc, True)],
        },
    }
