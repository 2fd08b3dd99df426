"""The request headers an Ingress's `configuration-snippet` sets, for one client request.

Some installs fill Seldon's `seldon-model` header at the ingress, e.g. the reference architecture's experiment
Ingress: `set $seldon_model $http_seldon_model; if ($seldon_model = "") { set $seldon_model "E.experiment"; }
proxy_set_header seldon-model $seldon_model;`. To say which Envoy route such a request takes, the path trace needs
what NGINX sends, not what the client sent. This evaluates the small subset of the nginx language such snippets use:
`set`, `if` on `=`/`!=`/truthiness, `proxy_set_header`, and headers-more's `more_set_input_headers "Name: value"`.
Anything else that could change a header (a regex `if`, a `map` variable, `$upstream_*`) makes the answer unknown
(None) rather than a guess; statements that set no request header (`add_header`, `proxy_*`) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_trace.snapshot.kube import KubeObject

CONFIGURATION_SNIPPET = "nginx.ingress.kubernetes.io/configuration-snippet"

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|([{};()])|([^\s{};()"\']+)')
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class _Unknown(Exception):
    """The snippet does something to a header that this evaluator does not model."""


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(text):
        double, single, punct, word = match.groups()
        if punct is not None:
            tokens.append(_Token(punct, False))
        elif word is not None:
            tokens.append(_Token(word, False))
        else:
            tokens.append(_Token(double if double is not None else single or "", True))
    return tokens


class _Evaluator:
    def __init__(self, tokens: list[_Token], client_headers: Mapping[str, str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.variables: dict[str, str] = {}
        self.client = {name.lower().replace("-", "_"): value for name, value in client_headers.items()}
        self.sent: dict[str, str] = {}

    def run(self) -> dict[str, str]:
        self._block(until_brace=False, active=True)
        return self.sent

    def _next(self) -> _Token | None:
        if self.pos >= len(self.tokens):
            return None
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _block(self, *, until_brace: bool, active: bool) -> None:
        while True:
            token = self._next()
            if token is None:
                if until_brace:
                    raise _Unknown("unbalanced braces")
                return
            if token.text == "}" and not token.quoted:
                if not until_brace:
                    raise _Unknown("unbalanced braces")
                return
            if token.text == ";" and not token.quoted:
                continue
            if token.text == "if" and not token.quoted:
                condition = self._condition()
                opening = self._next()
                if opening is None or opening.text != "{":
                    raise _Unknown("if without a block")
                self._block(until_brace=True, active=active and (self._holds(condition) if active else False))
                continue
            args = self._arguments()
            if active:
                self._statement(token.text, args)

    def _arguments(self) -> list[_Token]:
        args: list[_Token] = []
        while True:
            token = self._next()
            if token is None or (token.text == ";" and not token.quoted):
                return args
            if token.text in ("{", "}") and not token.quoted:
                raise _Unknown(f"a block after {token.text!r} that this evaluator does not model")
            args.append(token)

    def _condition(self) -> list[_Token]:
        opening = self._next()
        if opening is None or opening.text != "(":
            raise _Unknown("if without a condition")
        parts: list[_Token] = []
        while True:
            token = self._next()
            if token is None:
                raise _Unknown("unterminated if condition")
            if token.text == ")" and not token.quoted:
                return parts
            parts.append(token)

    def _holds(self, condition: list[_Token]) -> bool:
        if len(condition) == 1:
            value = self._expand(condition[0])
            return value not in ("", "0")
        if len(condition) == 3 and condition[1].text in ("=", "!="):
            left, right = self._expand(condition[0]), self._expand(condition[2])
            return (left == right) == (condition[1].text == "=")
        raise _Unknown("an if condition other than =, != or a variable")

    def _statement(self, directive: str, args: list[_Token]) -> None:
        if directive == "set" and len(args) == 2 and args[0].text.startswith("$"):
            self.variables[args[0].text[1:]] = self._expand(args[1])
        elif directive == "proxy_set_header" and len(args) == 2:
            self.sent[args[0].text.lower()] = self._expand(args[1])
        elif directive == "more_set_input_headers":
            for arg in args:
                if arg.text.startswith("-"):
                    raise _Unknown("more_set_input_headers with options")
                name, sep, value = self._expand(arg).partition(":")
                if sep:
                    self.sent[name.strip().lower()] = value.strip()
        elif directive in ("more_clear_input_headers", "rewrite", "return", "map"):
            raise _Unknown(f"{directive} may change the request")

    def _expand(self, token: _Token) -> str:
        def value_of(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name in self.variables:
                return self.variables[name]
            if name.startswith("http_"):
                return self.client.get(name.removeprefix("http_"), "")
            raise _Unknown(f"${name} is not modelled")

        return _VARIABLE.sub(value_of, token.text)


def snippet_request_headers(ingress: KubeObject, client_headers: Mapping[str, str]) -> dict[str, str] | None:
    """The request headers the Ingress's configuration-snippet sets for a request with `client_headers` (lower-case
    names): {} when it has no snippet or sets none; None when the snippet does something not modelled."""
    snippet = ingress.annotations.get(CONFIGURATION_SNIPPET)
    if not snippet:
        return {}
    try:
        return _Evaluator(_tokens(snippet), client_headers).run()
    except _Unknown:
        return None
