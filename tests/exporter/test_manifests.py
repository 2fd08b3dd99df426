"""deploy/: the kustomize base (and its PodMonitor variant), the Helm chart and the image's Dockerfile.

Every built-in object is read into the official Kubernetes models with no field lost; the ClusterRole holds exactly
deploy/rbac-readonly.yaml's rules and the PrometheusRule is `alerts.build_exporter_rule`'s (both generated:
`python -m tests.exporter.manifests --write`); the workloads run non-root on a read-only root filesystem with the
read-only ServiceAccount; the exporter's arguments parse as the `exporter` command's flags; the monitors select the
exporter's Service or pods. `kubectl kustomize` builds the overlays when kubectl is installed. `helm template` runs
when a helm binary is on PATH: neither Debian (bookworm) nor PyPI ships one, so on this project's machines the chart
is checked without rendering (its values and files exist, the same generated rules)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from mlops_trace.cli import app
from tests.exporter import manifests
from tests.exporter.kube_models import MODEL_OF_KIND, to_model, unknown_fields

KUSTOMIZE = manifests.DEPLOY / "kustomize"
DOCKERFILE = manifests.DEPLOY / "docker" / "Dockerfile"
SCRIPT = manifests.DEPLOY / "docker" / "doctor-reports.sh"
KUBECTL = shutil.which("kubectl")
HELM = shutil.which("helm")
PROMTOOL = shutil.which("promtool")


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _base_documents() -> list[dict[str, Any]]:
    """The base's resources as written (no kustomize), the namespace set as kustomize would."""
    kustomization = yaml.safe_load((KUSTOMIZE / "base" / "kustomization.yaml").read_text("utf-8"))
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs.extend(_docs((KUSTOMIZE / "base" / resource).read_text("utf-8")))
    return docs


def _kustomize(overlay: str) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    built = subprocess.run([KUBECTL, "kustomize", str(KUSTOMIZE / overlay)], capture_output=True, text=True,
                           timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    return _docs(built.stdout)


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob" else spec["template"]
    pod: dict[str, Any] = template["spec"]
    return pod


def check_objects(docs: list[dict[str, Any]], monitor_kind: str) -> None:
    """What every rendering of deploy/ must hold."""
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment",
                            "PersistentVolumeClaim", "CronJob", "PrometheusRule", monitor_kind,
                            *(["Namespace"] if "Namespace" in kinds else [])])
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in MODEL_OF_KIND:
            assert to_model(doc) is not None
            assert unknown_fields(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"
    assert _one(docs, "ClusterRole")["rules"] == manifests.readonly_rules()
    account = _one(docs, "ServiceAccount")["metadata"]["name"]
    binding = _one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == _one(docs, "ClusterRole")["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [account]
    assert _one(docs, "PrometheusRule")["spec"] == manifests.exporter_rule()["spec"]
    for workload in (_one(docs, "Deployment"), _one(docs, "CronJob")):
        pod = _pod_spec(workload)
        assert pod["serviceAccountName"] == account
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    _check_exporter(docs, monitor_kind)
    cron = _pod_spec(_one(docs, "CronJob"))["containers"][0]
    assert cron["command"] == ["mlops-trace-doctor-reports"]
    claim = _one(docs, "PersistentVolumeClaim")["metadata"]["name"]
    reports = next(v for v in _pod_spec(_one(docs, "CronJob"))["volumes"] if v["name"] == "reports")
    assert reports["persistentVolumeClaim"]["claimName"] == claim


def _check_exporter(docs: list[dict[str, Any]], monitor_kind: str) -> None:
    import typer

    deployment, service, monitor = _one(docs, "Deployment"), _one(docs, "Service"), _one(docs, monitor_kind)
    (container,) = _pod_spec(deployment)["containers"]
    args = container["args"]
    assert args[0] == "exporter"
    command = typer.main.get_command(app).commands["exporter"]  # type: ignore[attr-defined]
    params = command.make_context("exporter", list(args[1:])).params  # unknown flags or bad values raise here
    assert params["address"] == "0.0.0.0" and params["kubeconfig"] is None and not params["context"]
    (port,) = container["ports"]
    assert port["containerPort"] == params["port"] and port["name"] == "metrics"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    if monitor_kind == "ServiceMonitor":
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        endpoints = monitor["spec"]["endpoints"]
    else:
        assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        endpoints = monitor["spec"]["podMetricsEndpoints"]
    (endpoint,) = endpoints
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert {"targetLabel": "job", "replacement": "mlops-trace-exporter"} in endpoint["relabelings"]


def test_generated_parts_are_up_to_date() -> None:
    stale = [str(p) for p, text in manifests.generated().items() if not p.is_file() or p.read_text("utf-8") != text]
    assert stale == [], "run: python -m tests.exporter.manifests --write"


def test_the_base_as_written() -> None:
    check_objects(_base_documents(), "ServiceMonitor")


def test_a_misspelt_field_is_caught() -> None:
    deployment = _one(_base_documents(), "Deployment")
    _pod_spec(deployment)["containers"][0]["readOnlyRootFileSystem"] = True
    assert unknown_fields(deployment) == ["spec.template.spec.containers[0].readOnlyRootFileSystem"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (its built-in kustomize) is not installed")
@pytest.mark.parametrize(("overlay", "monitor"), [("base", "ServiceMonitor"), ("podmonitor", "PodMonitor")])
def test_kustomize_builds(overlay: str, monitor: str) -> None:
    docs = _kustomize(overlay)
    check_objects(docs, monitor)
    namespaced = [d for d in docs if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"mlops-trace"}


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_the_deployed_rules(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rule = _one(_base_documents(), "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    checked = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(HELM is None, reason="no helm binary: neither Debian bookworm nor PyPI ships one")
@pytest.mark.parametrize(("monitor", "values"), [("ServiceMonitor", []), ("PodMonitor", ["--set",
                                                                                          "monitor.kind=PodMonitor"])])
def test_helm_template(monitor: str, values: list[str]) -> None:
    assert HELM is not None
    rendered = subprocess.run([HELM, "template", "mlops-trace", str(manifests.CHART), "--namespace", "mlops-trace",
                               *values], capture_output=True, text=True, timeout=120, check=False)
    assert rendered.returncode == 0, rendered.stderr
    check_objects(_docs(rendered.stdout), monitor)


def _value_paths(values: Any, prefix: str = "") -> set[str]:
    paths = {prefix} if prefix else set()
    if isinstance(values, dict):
        for key, value in values.items():
            paths |= _value_paths(value, f"{prefix}.{key}" if prefix else key)
    return paths


def test_the_chart_s_values_and_files_exist() -> None:
    import re

    chart = yaml.safe_load((manifests.CHART / "Chart.yaml").read_text("utf-8"))
    assert chart["apiVersion"] == "v2" and chart["name"] == "mlops-trace"
    known = _value_paths(yaml.safe_load((manifests.CHART / "values.yaml").read_text("utf-8")))
    used: set[str] = set()
    files: set[str] = set()
    for template in (manifests.CHART / "templates").iterdir():
        text = template.read_text("utf-8")
        used |= set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text))
        files |= set(re.findall(r'\.Files\.Get "([^"]+)"', text))
    assert used and used <= known, sorted(used - known)
    assert files == {"files/clusterrole-rules.yaml", "files/prometheusrule-groups.yaml"}
    assert all((manifests.CHART / f).is_file() for f in files)


def test_dockerfile_multi_stage_non_root() -> None:
    parser = DockerfileParser(path=str(DOCKERFILE))
    instructions = parser.structure
    stages = [i for i in instructions if i["instruction"] == "FROM"]
    assert len(stages) >= 2
    final = [i for i in instructions if i["startline"] > stages[-1]["startline"]]
    (user,) = [i["value"] for i in final if i["instruction"] == "USER"]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) >= 1000
    assert [i["value"] for i in final if i["instruction"] == "ENTRYPOINT"] == ['["mlops-trace"]']
    ignored = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text("utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    for copy in (i for i in instructions if i["instruction"] == "COPY" and "--from" not in i["value"]):
        sources = [w for w in copy["value"].split() if not w.startswith("--")][:-1]
        for source in sources:
            assert (manifests.ROOT / source).exists(), source
            assert source.rstrip("/").removeprefix("./") in allowed, f"{source} is left out by the .dockerignore"
    installed = [i["value"] for i in final if i["instruction"] == "COPY" and "doctor-reports.sh" in i["value"]]
    assert installed and installed[0].endswith("/usr/local/bin/mlops-trace-doctor-reports")
    assert "HOME=/tmp" in parser.content  # nothing to write outside the /tmp emptyDir
