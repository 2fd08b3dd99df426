"""Manifests read into the official Kubernetes Python models (`kubernetes.client`), and back: a field the model does
not know (a typo, a wrong level) is dropped on the way in, so the round trip shows it; a missing required field or a
wrong type raises. `ApiClient.deserialize` changed shape in kubernetes 32 (text, type, content type); both are met."""

from __future__ import annotations

import inspect
import json
from typing import Any

MODEL_OF_KIND = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("batch/v1", "CronJob"): "V1CronJob",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
}


class _Response:
    def __init__(self, text: str) -> None:
        self.data = text


def to_model(document: dict[str, Any]) -> Any:
    """The model object of a built-in kind (KeyError for a kind this table does not know)."""
    from kubernetes.client import ApiClient

    model = MODEL_OF_KIND[(document["apiVersion"], document["kind"])]
    api = ApiClient()
    text = json.dumps(document)
    if "response_text" in inspect.signature(api.deserialize).parameters:
        return api.deserialize(text, model, "application/json")
    return api.deserialize(_Response(text), model)


def round_trip(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the model holds it (what the API server would be sent)."""
    from kubernetes.client import ApiClient

    back: dict[str, Any] = ApiClient().sanitize_for_serialization(to_model(document))
    return back


def _normalized(value: Any) -> Any:
    """JSON-equal form: Kubernetes quantities and int-or-strings keep their YAML type on both sides."""
    return json.loads(json.dumps(value))


def unknown_fields(document: dict[str, Any]) -> list[str]:
    """Paths of fields the model dropped (not in the API schema), e.g. `spec.template.spec.containers[0].imagee`."""
    lost: list[str] = []
    _diff(_normalized(document), _normalized(round_trip(document)), "", lost)
    return lost


def _diff(original: Any, kept: Any, path: str, lost: list[str]) -> None:
    if isinstance(original, dict):
        kept_map = kept if isinstance(kept, dict) else {}
        for key, value in original.items():
            where = f"{path}.{key}" if path else key
            if key not in kept_map:
                lost.append(where)
            else:
                _diff(value, kept_map[key], where, lost)
    elif isinstance(original, list):
        kept_list = kept if isinstance(kept, list) else []
        for index, value in enumerate(original):
            if index >= len(kept_list):
                lost.append(f"{path}[{index}]")
            else:
                _diff(value, kept_list[index], f"{path}[{index}]", lost)
