"""Redaction misses an audit found, one reproducer each: a kubeconfig held in an env var, the argument after a secret
flag, Envoy generic secrets, tokens that name their issuer, cookies; and what it masked needlessly (Envoy
`runtime_key` and other lookup keys), which must stay readable."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from mlops_trace.redaction import (
    REPLACEMENT,
    RedactionReport,
    SecretKind,
    redact_lines,
    redact_object,
    redact_text,
    secret_name,
)

KEY_PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKsecretKEYbody01\n-----END RSA PRIVATE KEY-----\n"
CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIBpublicCERTbody02\n-----END CERTIFICATE-----\n"
KEY_B64 = base64.b64encode(KEY_PEM.encode()).decode()
CERT_B64 = base64.b64encode(CERT_PEM.encode()).decode()


def _kubeconfig() -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": "https://10.0.0.1:6443", "certificate-authority-data": CERT_B64}}
        ],
        "users": [
            {"name": "a", "user": {"client-certificate-data": CERT_B64, "client-key-data": KEY_B64}},
            {"name": "b", "user": {"token": "kc-token-0001"}},
            {"name": "c", "user": {"username": "kube-admin", "password": "kc-pw-0002"}},
        ],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "a"}}],
        "current-context": "c",
    }


def _pod_with_env(name: str, value: str) -> dict[str, object]:
    return {"kind": "Pod", "spec": {"containers": [{"name": "c", "env": [{"name": name, "value": value}]}]}}


# --- 1. a kubeconfig held in an env var ------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True], ids=["yaml", "json"])
def test_kubeconfig_in_an_env_value_masks_key_token_and_password(as_json: bool) -> None:
    text = json.dumps(_kubeconfig()) if as_json else yaml.safe_dump(_kubeconfig(), sort_keys=False)
    redacted, found = redact_object(_pod_with_env("KUBECONFIG_CONTENT", text), "Pod ns/p")
    value = redacted["spec"]["containers"][0]["env"][0]["value"]
    for secret in (KEY_B64, "kc-token-0001", "kc-pw-0002"):
        assert secret not in value
    parsed = json.loads(value) if as_json else yaml.safe_load(value)
    users = {u["name"]: u["user"] for u in parsed["users"]}
    # Certificates are public: only the key goes.
    assert users["a"] == {"client-certificate-data": CERT_B64, "client-key-data": REPLACEMENT}
    assert users["b"]["token"] == REPLACEMENT and users["c"]["password"] == REPLACEMENT
    assert users["c"]["username"] == "kube-admin"
    assert parsed["clusters"][0]["cluster"]["certificate-authority-data"] == CERT_B64
    assert sorted(r.chars for r in found) == sorted([len(KEY_B64), len("kc-token-0001"), len("kc-pw-0002")])
    assert all(r.where.startswith("Pod ns/p .spec.containers[0].env[0].value -> .users[") for r in found)


def test_kubeconfig_text_that_does_not_parse_is_still_masked_by_its_text() -> None:
    cut = yaml.safe_dump(_kubeconfig(), sort_keys=False)
    cut = cut[: cut.index("contexts:")] + "contexts:\n- {name: c, context: [unclosed\n"
    redacted, found = redact_object(_pod_with_env("KUBECONFIG_CONTENT", cut))
    value = redacted["spec"]["containers"][0]["env"][0]["value"]
    assert KEY_B64 not in value and "kc-token-0001" not in value and "kc-pw-0002" not in value
    assert CERT_B64 in value
    assert SecretKind.PRIVATE_KEY in {r.kind for r in found}


def test_client_key_data_in_a_log_line() -> None:
    masked, found = redact_lines(f"    client-key-data: {KEY_B64}\n    client-certificate-data: {CERT_B64}\n")
    assert KEY_B64 not in masked and CERT_B64 in masked
    assert [(r.kind, r.where, r.chars) for r in found] == [(SecretKind.PRIVATE_KEY, "line 1", len(KEY_B64))]


# --- 2. the argument after a secret flag -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "kind"),
    [
        ("--token", SecretKind.TOKEN_PARAM),
        ("--auth-token", SecretKind.TOKEN_PARAM),
        ("--password", SecretKind.PASSWORD_PARAM),
        ("--api-key", SecretKind.API_KEY),
        ("--client-secret", SecretKind.SECRET_PARAM),
        ("--secret", SecretKind.SECRET_PARAM),
        ("-secret", SecretKind.SECRET_PARAM),
        ("--access-key", SecretKind.API_KEY),
    ],
)
def test_flag_then_value_in_an_args_list(flag: str, kind: SecretKind) -> None:
    pod = {"spec": {"containers": [{"args": ["--port", "9004", flag, "flagval-0003", "--log-level", "debug"]}]}}
    redacted, found = redact_object(pod, "Pod ns/p")
    args = redacted["spec"]["containers"][0]["args"]
    assert args == ["--port", "9004", flag, REPLACEMENT, "--log-level", "debug"]
    assert [(r.kind, r.where, r.chars) for r in found] == [
        (kind, f"Pod ns/p .spec.containers[0].args[3] (after {flag})", len("flagval-0003"))
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--token", "--verbose"],  # the flag has no value here
        ["--token", "$(SELDON_TOKEN)"],  # a reference
        ["--token-file", "/var/run/secrets/token"],  # where the secret is
        ["--tls-private-key-file", "/tls/tls.key"],
        ["--key", "/tls/tls.key"],
        ["--tls-key", "/tls/tls.key"],
        ["--max-tokens", "512"],
        ["--tokenizer", "bert-base-uncased"],
        ["--db-path", "/mnt/db"],
        ["--token"],
    ],
)
def test_args_that_hold_no_secret_stay(args: list[str]) -> None:
    redacted, found = redact_object({"args": args})
    assert redacted == {"args": args}
    assert found == []


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("exec /bin/scheduler --token tok-sp-0004 --port 9004", "tok-sp-0004", SecretKind.TOKEN_PARAM),
        ("run --api-key ak-sp-0005", "ak-sp-0005", SecretKind.API_KEY),
        ("cmd --client-secret cs-sp-0006", "cs-sp-0006", SecretKind.SECRET_PARAM),
        ("cmd\t--secret\tsec-sp-0007", "sec-sp-0007", SecretKind.SECRET_PARAM),
        ("the password --password pw-sp-0008", "pw-sp-0008", SecretKind.PASSWORD_PARAM),
        ('args=["--token", "tok-list-0009"]', "tok-list-0009", SecretKind.TOKEN_PARAM),
        ("args: ['--password', 'pw-list-0010']", "pw-list-0010", SecretKind.PASSWORD_PARAM),
        ("args:\n  - --token\n  - tok-yaml-0011\n", "tok-yaml-0011", SecretKind.TOKEN_PARAM),
    ],
)
def test_flag_then_value_in_text(text: str, secret: str, kind: SecretKind) -> None:
    masked, found = redact_text(text)
    assert secret not in masked and REPLACEMENT in masked
    assert found == [(kind, len(secret))]


@pytest.mark.parametrize(
    "text",
    [
        "use --token --verbose",
        "pre-token refresh",
        "mount --token-file /var/run/secrets/token",
        "secret_name=seldon-db token_type=Bearer",
        "flags --max-tokens 512 --tokenizer gpt2",
        'names ["password", "hunter"]',  # only a flag takes a value after a comma
    ],
)
def test_flag_lookalikes_in_text_stay(text: str) -> None:
    assert redact_text(text) == (text, [])


# --- 3. Envoy secrets ------------------------------------------------------------------------------------------------


ENVOY_MASKED_BYTES = "W3JlZGFjdGVkXQ=="  # base64 of "[redacted]": how Envoy masks inline_bytes itself


def _generic_secret(name: str, source: dict[str, str]) -> dict[str, object]:
    return {"name": name, "secret": {"name": name, "generic_secret": {"secret": source}}}


def test_envoy_generic_and_tls_secrets_in_a_config_dump() -> None:
    dump = {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
                "dynamic_active_secrets": [
                    _generic_secret("s1", {"inline_string": "gs-0012"}),
                    _generic_secret("s2", {"inline_bytes": "Z3MtMDAxMw=="}),
                    _generic_secret("s3", {"environment_variable": "HMAC"}),
                    _generic_secret("s4", {"inline_string": "[redacted]"}),  # Envoy's own mask
                ],
                "static_secrets": [
                    {
                        "name": "tls",
                        "secret": {
                            "name": "tls",
                            "tls_certificate": {
                                "certificate_chain": {"inline_string": CERT_PEM},
                                "private_key": {"inline_string": KEY_PEM},
                            },
                        },
                    },
                    {
                        "name": "tls-file",
                        "secret": {
                            "tls_certificate": {
                                "certificate_chain": {"filename": "/etc/tls/tls.crt"},
                                "private_key": {"filename": "/etc/tls/tls.key"},
                            }
                        },
                    },
                    {
                        "name": "envoy-masked",
                        "secret": {"tls_certificate": {"private_key": {"inline_bytes": ENVOY_MASKED_BYTES}}},
                    },
                ],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "transport_socket": {
                    "common_tls_context": {"tls_certificates": [{"private_key": {"inline_bytes": "cGstMDAxNA=="}}]},
                    "session_ticket_keys": {"keys": [{"inline_bytes": "c3RrLTAwMTU="}]},
                },
            },
        ]
    }
    redacted, found = redact_object(dump)
    text = json.dumps(redacted)
    for secret in ("gs-0012", "Z3MtMDAxMw==", "MIIBOgIBAAJBAKsecretKEYbody01", "cGstMDAxNA==", "c3RrLTAwMTU="):
        assert secret not in text, secret
    secrets = redacted["configs"][0]
    generic = [s["secret"]["generic_secret"]["secret"] for s in secrets["dynamic_active_secrets"]]
    assert generic == [
        {"inline_string": REPLACEMENT},
        {"inline_bytes": REPLACEMENT},
        {"environment_variable": "HMAC"},
        {"inline_string": "[redacted]"},
    ]
    tls = [s["secret"]["tls_certificate"] for s in secrets["static_secrets"]]
    assert tls[0] == {"certificate_chain": {"inline_string": CERT_PEM}, "private_key": {"inline_string": REPLACEMENT}}
    assert tls[1]["private_key"] == {"filename": "/etc/tls/tls.key"}
    assert tls[2]["private_key"] == {"inline_bytes": ENVOY_MASKED_BYTES}
    assert sorted(r.chars for r in found) == sorted([7, 12, len(KEY_PEM), 12, 12])
    assert {r.kind for r in found} == {SecretKind.FIELD_VALUE}
    assert ".configs[0].dynamic_active_secrets[1].secret.generic_secret.secret.inline_bytes" in [r.where for r in found]


def test_inline_sources_that_are_not_secrets_stay() -> None:
    route = {
        "direct_response": {"status": 503, "body": {"inline_string": "no healthy upstream for iris"}},
        "lua": {"default_source_code": {"inline_string": "function envoy_on_request(h) end"}},
        "validation_context": {"trusted_ca": {"inline_string": CERT_PEM}},
    }
    assert redact_object(route) == (route, [])


# --- 4. tokens that name their issuer --------------------------------------------------------------------------------

ISSUER_TOKENS = [
    "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "gho_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "ghu_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "ghs_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "ghr_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "github_pat_11ABCDEFG0a1b2c3d4e5f6_g7h8i9j0k1l2m3n4o5p6q7r8s9t0",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "xoxp-123456789012-1234567890123-AbCdEfGhIjKl",
    "glpat-a1B2c3D4e5F6g7H8i9J0",
    "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",
    "sk-proj-a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0",
    "sk-ant-api03-a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0",
    "sk-a1B2c3D4e5F6g7H8i9J0T3BlbkFJk1L2m3N4o5P6q7R8s9T0u1V2",
    "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
]


@pytest.mark.parametrize("token", ISSUER_TOKENS, ids=[t.split("_")[0].split("-")[0] for t in ISSUER_TOKENS])
def test_issuer_tokens_in_text_and_in_an_env_var_with_a_plain_name(token: str) -> None:
    for line in (f"GH_AUTH={token}", f'msg="login with {token} ok"', f'{{"config": "{token}"}}'):
        masked, found = redact_text(line)
        assert token not in masked, line
        assert found == [(SecretKind.PROVIDER_TOKEN, len(token))], line
    redacted, objects = redact_object(_pod_with_env("CONFIG", token))
    assert redacted["spec"]["containers"][0]["env"][0]["value"] == REPLACEMENT
    assert [r.kind for r in objects] == [SecretKind.PROVIDER_TOKEN]


@pytest.mark.parametrize(
    ("line", "secret", "kind"),
    [
        ("key id AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE", SecretKind.AWS_ACCESS_KEY),
        (
            "GET /m.joblib?X-Amz-Credential=ASIAIOSFODNN7EXAMPLE%2F2025&X-Amz-Signature=0a1b2c3d4e5f60718293",
            "0a1b2c3d4e5f60718293",
            SecretKind.URL_SIGNATURE,
        ),
        ("blob?sv=2022-11-02&sr=b&sig=AbCdEf0123%2Bxyz%3D", "AbCdEf0123%2Bxyz%3D", SecretKind.URL_SIGNATURE),
        (
            "DefaultEndpointsProtocol=https;AccountName=models;AccountKey=QWJjZGVmZ2hpams=;EndpointSuffix=x",
            "QWJjZGVmZ2hpams=",
            SecretKind.API_KEY,
        ),
    ],
)
def test_other_self_identifying_secrets(line: str, secret: str, kind: SecretKind) -> None:
    masked, found = redact_text(line)
    assert secret not in masked
    assert kind in [k for k, _ in found]


@pytest.mark.parametrize(
    "text",
    [
        "Load model sk-learn-iris-classifier-with-a-long-name-0001:3 success",  # Kubernetes names are lower case
        "loading 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 from the hub",  # an identifier, not a token
        "model hf_distilbert_base_uncased_finetuned_sst_2_english ready",
        "image docker.io/seldonio/mlserver:1.6.1@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f0",
        "pod uid 3f1c9a2e-77aa-4bd1-9b8e-1f2e3d4c5b6a ready",
        "server mlserver-0 task-abcdefghijklmnopqrstuvwxyz0123456789 done",
        "client-certificate-data: " + CERT_B64,
        "usage prompt_tokens=33 completion_tokens=120 total_tokens=153 max_tokens=512",
        "loading tokenizer=distilbert-base-uncased",
        "GET /v2/models/iris/ready?sig_version=2 HTTP/1.1",
    ],
)
def test_ordinary_serving_text_stays(text: str) -> None:
    assert redact_text(text) == (text, [])


# --- 5. cookies ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "secrets", "kept"),
    [
        ("Cookie: session=ck-0016; csrftoken=ck-0017", ["ck-0016", "ck-0017"], ["session=", "csrftoken="]),
        ("< set-cookie: sid=ck-0018; Path=/; HttpOnly; Max-Age=3600", ["ck-0018"], ["Path=/", "Max-Age=3600"]),
        ('{"headers": {"Cookie": ["session=ck-0019"]}}', ["ck-0019"], ['"Cookie": ["session=']),
        ("{'cookie': 'a=ck-0020; b=ck-0021'}", ["ck-0020", "ck-0021"], ["'a=", "; b="]),
        ('"cookie":"session=ck-0022","upstream_host":"10.0.0.1"', ["ck-0022"], ['"upstream_host":"10.0.0.1"']),
    ],
)
def test_cookie_values_are_masked_and_their_names_stay(line: str, secrets: list[str], kept: list[str]) -> None:
    masked, found = redact_text(line)
    for secret in secrets:
        assert secret not in masked
    for text in kept:
        assert text in masked
    assert found == [(SecretKind.COOKIE, len(s)) for s in secrets]


@pytest.mark.parametrize("line", ["cookie jar is empty", "Cookies: 3 set", "cookie: none", "cookie_name=session"])
def test_cookie_lookalikes_stay(line: str) -> None:
    assert redact_text(line) == (line, [])


def test_cookie_header_pair_in_an_object() -> None:
    probe = {
        "httpHeaders": [{"name": "Cookie", "value": "session=ck-0023"}, {"name": "X-Seldon-Route", "value": ":iris_1:"}]
    }
    redacted, found = redact_object(probe)
    assert redacted["httpHeaders"] == [
        {"name": "Cookie", "value": REPLACEMENT},
        {"name": "X-Seldon-Route", "value": ":iris_1:"},
    ]
    assert [(r.kind, r.chars) for r in found] == [(SecretKind.COOKIE, len("session=ck-0023"))]


# --- 6. lookup keys are not secrets ----------------------------------------------------------------------------------


def test_envoy_runtime_keys_and_header_keys_stay_readable() -> None:
    route = {
        "match": {
            "prefix": "/v2",
            "runtime_fraction": {"default_value": {"numerator": 50}, "runtime_key": "routing.traffic_shift.iris"},
        },
        "route": {"weighted_clusters": {"clusters": [{"name": "iris_1"}], "runtime_key_prefix": "upstream.iris"}},
        "request_headers_to_add": [
            {"header": {"key": "x-seldon-route", "value": ":iris_1:"}},
            {"header": {"key": "x-api-key", "value": "hdr-key-0024"}},
        ],
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "u"}}]}],
        "access_log": {"status_code_filter": {"comparison": {"value": {"runtime_key": "status_code"}}}},
        "metadata": {"filter_metadata": {"envoy.lb": {"key": "canary"}}},
        "topologySpreadConstraints": [{"topologyKey": "topology.kubernetes.io/zone"}],
        "matchLabelKeys": ["pod-template-hash"],
    }
    redacted, found = redact_object(route)
    expected = json.loads(json.dumps(route))
    expected["request_headers_to_add"][1]["header"]["value"] = REPLACEMENT  # a header named like a key still is one
    assert redacted == expected
    assert [(r.kind, r.chars) for r in found] == [(SecretKind.ENV_VALUE, len("hdr-key-0024"))]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("runtime_key", False),
        ("runtime_key_prefix", False),
        ("topologyKey", False),
        ("descriptor_key", False),
        ("metadata_key", False),
        ("matchLabelKeys", False),
        ("HF_TOKENIZER", False),
        ("MLSERVER_MODEL_HUGGINGFACE_TOKENIZER", False),
        ("client-key-data", True),
        ("client-certificate-data", False),
        ("API_KEY", True),
        ("HF_TOKENIZER_TOKEN", True),
        ("SIGNING_KEY", True),
    ],
)
def test_lookup_key_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def test_token_counts_stay_but_token_values_do_not() -> None:
    env = [
        {"name": "MAX_TOKENS", "value": "512"},
        {"name": "MLSERVER_MODEL_HUGGINGFACE_MAX_NEW_TOKENS", "value": "256"},
        {"name": "API_TOKENS", "value": "tok-a-0025,tok-b-0026"},
    ]
    redacted, found = redact_object({"env": env})
    assert [e["value"] for e in redacted["env"]] == ["512", "256", REPLACEMENT]
    assert len(found) == 1


def test_every_new_kind_reaches_the_report_without_its_value() -> None:
    lines = "\n".join(
        [
            "Cookie: session=ck-0027",
            f"auth {ISSUER_TOKENS[0]}",
            "GET /x?X-Amz-Signature=0a1b2c3d4e5f",
            "run --token tok-0028",
        ]
    )
    _, found = redact_lines(lines + "\n")
    report = RedactionReport()
    report.add("logs/ns/p/c.log", found)
    data = report.to_dict()
    assert data["by_kind"] == {"cookie": 1, "provider-token": 1, "token-param": 1, "url-signature": 1}
    dumped = yaml.safe_dump(data)
    for value in ("ck-0027", ISSUER_TOKENS[0], "0a1b2c3d4e5f", "tok-0028"):
        assert value not in dumped


def test_a_password_quoted_inside_a_json_string_is_masked_whole() -> None:
    # A JSON log line quotes the value as \"...\": the backslash is the quote's, the whole value is the secret.
    line = '{"level": "info", "msg": "dsn host=db password=\\"PLANTEDjsonPW7\\" sslmode=require"}\n'
    text, found = redact_lines(line)
    assert "PLANTEDjsonPW7" not in text and found
    assert json.loads(text)["msg"].startswith("dsn host=db password=")  # still one valid JSON line
