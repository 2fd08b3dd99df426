"""The headers an Ingress's configuration-snippet sets for one request: the reference architecture's default
`seldon-model`, headers-more, and the snippets whose effect is not modelled (None, never a guess)."""

from __future__ import annotations

import pytest

from mlops_trace.analysis.ingress.snippet import CONFIGURATION_SNIPPET, snippet_request_headers
from mlops_trace.snapshot.kube import KubeObject

DEFAULTING = (
    "set $seldon_model $http_seldon_model;\n"
    'if ($seldon_model = "") { set $seldon_model "ab.experiment"; }\n'
    "proxy_set_header seldon-model $seldon_model;\n"
)


def _ingress(snippet: str | None) -> KubeObject:
    annotations = {} if snippet is None else {CONFIGURATION_SNIPPET: snippet}
    raw = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "ml-api", "namespace": "ns", "annotations": annotations}, "spec": {}}
    return KubeObject("Ingress", "ns", "ml-api", raw, "kube/ingress.yaml#1")


def test_a_missing_header_gets_the_default() -> None:
    assert snippet_request_headers(_ingress(DEFAULTING), {}) == {"seldon-model": "ab.experiment"}


def test_a_client_header_is_passed_on() -> None:
    assert snippet_request_headers(_ingress(DEFAULTING), {"seldon-model": "iris"}) == {"seldon-model": "iris"}


def test_an_unconditional_header_and_headers_more() -> None:
    snippet = "proxy_set_header seldon-model 'ab.experiment';\nmore_set_input_headers \"x-team: risk\";\n"
    assert snippet_request_headers(_ingress(snippet), {"seldon-model": "iris"}) == {
        "seldon-model": "ab.experiment",
        "x-team": "risk",
    }


def test_not_equal_and_truthiness() -> None:
    snippet = 'if ($http_x_canary) { set $m "canary"; } if ($http_x_canary != "1") { set $m "main"; }\n' \
              "proxy_set_header seldon-model $m;"
    assert snippet_request_headers(_ingress(snippet), {"x-canary": "1"}) == {"seldon-model": "canary"}
    assert snippet_request_headers(_ingress(snippet), {"x-canary": "0"}) == {"seldon-model": "main"}


def test_no_snippet_and_unrelated_statements_set_nothing() -> None:
    assert snippet_request_headers(_ingress(None), {}) == {}
    assert snippet_request_headers(_ingress("add_header X-Served-By nginx;\nproxy_read_timeout 30s;"), {}) == {}


@pytest.mark.parametrize(
    "snippet",
    [
        'if ($http_seldon_model ~* "^a") { set $m "b"; }\nproxy_set_header seldon-model $m;',  # regex condition
        "proxy_set_header seldon-model $upstream_addr;",  # a variable not modelled
        "rewrite ^/(.*)$ /v2/$1 break;",
        "if ($x = 1) { proxy_set_header a b;",  # unbalanced
    ],
)
def test_what_is_not_modelled_is_unknown(snippet: str) -> None:
    assert snippet_request_headers(_ingress(snippet), {}) is None
