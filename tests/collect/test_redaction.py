"""Redaction: every pattern is masked, ordinary Seldon/Envoy text is left alone, and the report never holds a value."""

from __future__ import annotations

import json

import pytest
import yaml

from mlops_trace.redaction import (
    REPLACEMENT,
    LineRedactor,
    RedactionReport,
    SecretKind,
    redact_lines,
    redact_object,
    redact_text,
    secret_name,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlciJ9.c2lnbmF0dXJlLXNlY3JldA"

# (line, the secret in it, the kind the report must name)
TEXT_CASES = [
    ("Authorization: Bearer sekr1t-bearer-token-value", "sekr1t-bearer-token-value", SecretKind.BEARER_TOKEN),
    ('headers="authorization: Basic dXNlcjpzM2NyM3Q="', "dXNlcjpzM2NyM3Q=", SecretKind.BASIC_AUTH),
    ("proxy-authorization=Token abcdef123456", "abcdef123456", SecretKind.AUTH_HEADER),
    ("< Authorization:[Bearer zzTOKENzz0987654]", "zzTOKENzz0987654", SecretKind.BEARER_TOKEN),
    ("sending Bearer QWERTYuiop12345678 upstream", "QWERTYuiop12345678", SecretKind.BEARER_TOKEN),
    ("creds Basic YWRtaW46aHVudGVyMg== ok", "YWRtaW46aHVudGVyMg==", SecretKind.BASIC_AUTH),
    ("GET /v2/models/iris/infer?token=q7w8e9r0t1&x=1", "q7w8e9r0t1", SecretKind.TOKEN_PARAM),
    ("access_token: tok-abc-123", "tok-abc-123", SecretKind.TOKEN_PARAM),
    ("password=hunter2hunter2 user=bob", "hunter2hunter2", SecretKind.PASSWORD_PARAM),
    ('{"db_password": "pw-in-json-77"}', "pw-in-json-77", SecretKind.PASSWORD_PARAM),
    ("run --password s3cr3tpass now", "s3cr3tpass", SecretKind.PASSWORD_PARAM),
    ("client_secret=cs-0011223344", "cs-0011223344", SecretKind.SECRET_PARAM),
    ("api_key: ak-live-998877", "ak-live-998877", SecretKind.API_KEY),
    ('{"apiKey":"ak-json-5544"}', "ak-json-5544", SecretKind.API_KEY),
    ("X-Api-Key=xk-321321321", "xk-321321321", SecretKind.API_KEY),
    ("using AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE", SecretKind.AWS_ACCESS_KEY),
    (f"id_token {JWT} received", JWT, SecretKind.JWT),
    ("pull https://robot:p4ssw0rd-url@registry.example.com/v2/", "p4ssw0rd-url", SecretKind.URL_CREDENTIALS),
    ("s3://minio:m1n10-pw@minio.minio:9000/models", "m1n10-pw", SecretKind.URL_CREDENTIALS),
    (
        "key=-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIinline\\n-----END EC PRIVATE KEY-----",
        "MHcCAQEEIinline",
        SecretKind.PRIVATE_KEY,
    ),
]


@pytest.mark.parametrize(
    ("line", "secret", "kind"), TEXT_CASES, ids=[c[2].value + str(i) for i, c in enumerate(TEXT_CASES)]
)
def test_every_text_pattern_is_masked(line: str, secret: str, kind: SecretKind) -> None:
    masked, found = redact_text(line)
    assert secret not in masked
    assert REPLACEMENT in masked
    assert kind in [k for k, _ in found]
    assert all(isinstance(n, int) and n > 0 for _, n in found)


@pytest.mark.parametrize(
    "line",
    [
        'time="2025-06-01T10:00:00Z" level=info msg="Scheduler not ready" func=x source=SchedulerClient',
        'time="x" level=info msg="Remove Routes for model iris" func=RemoveRoute source=SeldonXDSCache',
        "Load model baseline-predictor:3 success",
        "Subscribed to scheduler",
        "http.seldon_http.no_route: 3",
        "cluster.iris_1_http.upstream_rq_total: 40",
        '"POST /v2/models/iris_1/infer HTTP/1.1" 200 OK',
        "token expired for user bob",
        "Basic auth is enabled",
        "Connecting (non-blocking) to scheduler at seldon-scheduler:9005",
        '2025-06-01T10:00:00Z\tERROR\tSchedulerClient.SubscribeModelEvents\tScheduler not ready\t{"error": "x"}',
    ],
)
def test_diagnostic_text_is_left_alone(line: str) -> None:
    masked, found = redact_text(line)
    assert masked == line
    assert found == []


def test_pem_block_across_lines_is_masked_and_the_markers_stay() -> None:
    text = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretline1\nsecretline2==\n-----END RSA PRIVATE KEY-----\nafter\n"
    masked, found = redact_lines(text)
    assert "MIIEsecretline1" not in masked and "secretline2" not in masked
    assert "-----BEGIN RSA PRIVATE KEY-----" in masked and "-----END RSA PRIVATE KEY-----" in masked
    assert masked.startswith("before\n") and masked.endswith("after\n")
    assert [r.where for r in found] == ["line 3", "line 4"]
    assert {r.kind for r in found} == {SecretKind.PRIVATE_KEY}
    assert [r.chars for r in found] == [len("MIIEsecretline1"), len("secretline2==")]


def test_pem_block_that_starts_mid_line_and_never_ends() -> None:
    redactor = LineRedactor()
    out = [
        redactor.line(1, "cert: -----BEGIN PRIVATE KEY-----MIIEfirst\n"),
        redactor.line(2, "MIIEsecond\n"),
        redactor.line(3, "-----END PRIVATE KEY----- tail\n"),
        redactor.line(4, "normal line\n"),
    ]
    joined = "".join(out)
    assert "MIIEfirst" not in joined and "MIIEsecond" not in joined
    assert out[3] == "normal line\n"
    assert out[2].endswith("-----END PRIVATE KEY----- tail\n")


def test_line_endings_are_kept() -> None:
    redactor = LineRedactor()
    assert redactor.line(1, "password=abc12345\r\n").endswith("\r\n")
    assert redactor.line(2, "no newline") == "no newline"


def _pod() -> dict[str, object]:
    last_applied = {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {"containers": [{"name": "c", "env": [{"name": "DB_PASSWORD", "value": "la-pw-0001"}]}]},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "labels": {"app.kubernetes.io/name": "seldon-scheduler"},
            "annotations": {
                "example.com/api-token": "ann-token-0002",
                "example.com/inject-token": "true",
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(last_applied) + "\n",
                "note": f"debug with Bearer {'b' * 12}0003",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "scheduler",
                    "args": ["--api-key=arg-key-0004", "--db-path=/mnt/db"],
                    "env": [
                        {"name": "HF_TOKEN", "value": "hf-0005"},
                        {"name": "MY_SECRET", "value": "sec-0006"},
                        {"name": "S3_ACCESS_KEY", "value": "ak-0007"},
                        {"name": "REGISTRY_CREDENTIALS", "value": "cred-0008"},
                        {"name": "SELDON_SCHEDULER_PORT", "value": "9004"},
                        {"name": "SELDON_SCHEDULER_HOST", "value": "seldon-scheduler"},
                        {"name": "TLS_KEY_PATH", "value": "/tls/tls.key"},
                        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                    ],
                    "httpGet": {"httpHeaders": [{"name": "Authorization", "value": "Bearer hdr-0009-xxxxxxxx"}]},
                }
            ],
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
            "volumes": [{"name": "certs", "secret": {"secretName": "scheduler-tls"}}],
        },
    }


PLANTED = [
    "la-pw-0001",
    "ann-token-0002",
    "0003",
    "arg-key-0004",
    "hf-0005",
    "sec-0006",
    "ak-0007",
    "cred-0008",
    "hdr-0009",
]


def test_objects_mask_env_annotations_args_and_last_applied() -> None:
    pod = _pod()
    before = json.dumps(pod)
    redacted, found = redact_object(pod, "Pod ns/p")
    assert json.dumps(pod) == before, "the input must not be modified"
    text = json.dumps(redacted)
    for value in PLANTED:
        assert value not in text, value
    env = {e["name"]: e.get("value") for e in redacted["spec"]["containers"][0]["env"]}
    assert env["SELDON_SCHEDULER_PORT"] == "9004"
    assert env["SELDON_SCHEDULER_HOST"] == "seldon-scheduler"
    assert env["TLS_KEY_PATH"] == "/tls/tls.key"  # a path to a key, not a key
    assert redacted["spec"]["tolerations"][0]["key"] == "node-role.kubernetes.io/control-plane"
    assert redacted["spec"]["volumes"][0]["secret"]["secretName"] == "scheduler-tls"
    assert redacted["metadata"]["annotations"]["example.com/inject-token"] == "true"
    assert redacted["metadata"]["labels"] == pod["metadata"]["labels"]  # type: ignore[index]
    last_applied = json.loads(redacted["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last_applied["spec"]["containers"][0]["env"][0]["value"] == REPLACEMENT
    kinds = {r.kind for r in found}
    assert {SecretKind.ENV_VALUE, SecretKind.ANNOTATION, SecretKind.API_KEY, SecretKind.BEARER_TOKEN} <= kinds
    wheres = [r.where for r in found]
    assert "Pod ns/p .spec.containers[0].env[0].value (HF_TOKEN)" in wheres
    assert any("last-applied-configuration" in w and "DB_PASSWORD" in w for w in wheres)
    assert all(w.startswith("Pod ns/p ") for w in wheres)


def test_data_entries_and_secret_fields() -> None:
    obj = {
        "kind": "ConfigMap",
        "data": {"db.password": "pw-data-1", "url": "https://u:pw-data-2@h/x", "replicas": "3"},
        "spec": {"password": "pw-field-3", "privateKey": {"inlineBytes": "pem-bytes-4"}, "secretName": "keep-me"},
    }
    redacted, found = redact_object(obj)
    text = json.dumps(redacted)
    for value in ("pw-data-1", "pw-data-2", "pw-field-3", "pem-bytes-4"):
        assert value not in text
    assert redacted["data"]["replicas"] == "3"
    assert redacted["spec"]["secretName"] == "keep-me"
    assert {SecretKind.DATA_VALUE, SecretKind.URL_CREDENTIALS, SecretKind.FIELD_VALUE} <= {r.kind for r in found}


def test_report_names_kind_place_and_length_but_never_the_value() -> None:
    report = RedactionReport()
    _, found = redact_object(_pod(), "Pod ns/p")
    report.add("kube/pods.yaml", found)
    _, lines = redact_lines("x password=line-pw-0010\n" + f"jwt {JWT}\n")
    report.add("logs/ns/p/c.log", lines)
    dumped = yaml.safe_dump(report.to_dict())
    for value in [*PLANTED, "line-pw-0010", JWT]:
        assert value not in dumped, value
    data = report.to_dict()
    assert data["total"] == report.total == len(found) + len(lines)
    entry = data["files"]["logs/ns/p/c.log"][0]
    assert entry == {"kind": "password-param", "where": "line 1", "chars": len("line-pw-0010")}
    assert data["by_kind"]["jwt"] == 1


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("GITHUB_TOKEN", True),
        ("DB_PASSWORD", True),
        ("client-secret", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("apiKey", True),
        ("STRIPE_KEY", True),
        ("REGISTRY_CREDENTIAL", True),
        ("authorization", True),
        ("key", False),
        ("secretName", False),
        ("TLS_KEY_PATH", False),
        ("TOKEN_FILE", False),
        ("SELDON_SCHEDULER_PORT", False),
        ("SELDON_ENVOY_HOST", False),
        ("POD_NAME", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret
