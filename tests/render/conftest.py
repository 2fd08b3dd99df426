"""A small report that exercises every renderer: two namespaces and a cluster-wide finding, all severities, every
check status, an input problem, and evidence carrying `|`, `<`, `&`, backticks, unicode, a multi-line excerpt and
control characters from a log."""

from __future__ import annotations

import pytest

from mlops_trace.findings import (
    CheckId,
    CheckResult,
    CheckStatus,
    Evidence,
    Finding,
    InputProblem,
    Report,
    Severity,
)


def make_finding(
    check_id: str,
    slug: str,
    severity: Severity,
    namespace: str | None,
    obj: str,
    *,
    title: str = "Something is wrong",
    message: str = "It is wrong.",
    evidence: tuple[Evidence, ...] = (),
    fix: str = "Make it right.",
) -> Finding:
    return Finding(
        id=CheckId(check_id),
        slug=slug,
        severity=severity,
        title=title,
        message=message,
        namespace=namespace,
        object=obj,
        evidence=evidence,
        playbook=slug,
        fix=fix,
    )


def make_rich_report() -> Report:
    findings = (
        make_finding(
            "MT304",
            "experiment-invalid",
            Severity.WARNING,
            "seldon-a",
            "Experiment/iris-ab",
            title="Experiment default is not a candidate",
            message="The default model `iris-c` is not among the candidates | iris-a, iris-b.",
            evidence=(
                Evidence("kube/seldon-a/experiments.yaml:7", "default: iris-c  # candidates: iris-a | iris-b"),
                Evidence("Experiment/iris-ab .status.conditions[0]", "Ready=False <reason: DefaultNotCandidate>"),
            ),
            fix="Set spec.default to one of the candidates, or add iris-c to spec.candidates.",
        ),
        make_finding(
            "MT101",
            "scheduler-split-brain",
            Severity.CRITICAL,
            "seldon-a",
            "Deployment/seldon-scheduler",
            title="Two schedulers claim the models of seldon-a",
            message="A local seldon-scheduler runs with replicas: 1 while agents dial the central one & the "
            "controller points at seldon-system.",
            evidence=(
                Evidence("kube/seldon-a/scheduler.yaml:14", "replicas: 1"),
                Evidence(
                    "logs/seldon-a/mlserver-0/agent.log:12-13",
                    'level=info msg="Subscribed to scheduler" addr=seldon-scheduler.seldon-system:9005\n'
                    'level=warn msg="reconnecting" addr=seldon-scheduler:9005',
                ),
            ),
            fix="Scale the local seldon-scheduler to 0 and keep the ExternalName alias to seldon-system.",
        ),
        make_finding(
            "MT301",
            "seldon-model-header-missing",
            Severity.WARNING,
            "ml-prod",
            "Ingress/iris",
            title="Requests to the experiment lack the seldon-model header",
            message="404 answers on /v2/models/iris-ab/infer: the header seldon-model: iris-ab.experiment is never set.",
            evidence=(
                Evidence(
                    "logs/ingress-nginx/controller-7d9/controller.log:1042",
                    '"POST /v2/models/iris-ab/infer HTTP/1.1" 404 <no route> — café ✓ \x1b[31mERR\x1b[0m\x00 ]]>',
                ),
                Evidence("kube/ml-prod/ingress.yaml", "no configuration-snippet sets seldon-model"),
            ),
            fix='Add `more_set_input_headers "seldon-model: iris-ab.experiment";` to the Ingress.',
        ),
        make_finding(
            "MT305",
            "candidates-share-storage",
            Severity.INFO,
            "ml-prod",
            "Experiment/iris-ab",
            title="Candidates load the same artifact",
            message="iris-a and iris-b both load gs://models/iris/1 → the A/B test compares a model with itself.",
            evidence=(Evidence("Model/iris-a .spec.storageUri", "gs://models/iris/1 & gs://models/iris/1"),),
            fix="Point iris-b at its own storageUri.",
        ),
        make_finding(
            "MT107",
            "namespace-not-watched",
            Severity.CRITICAL,
            None,
            "Deployment/seldon-v2-controller-manager",
            title="The controller does not watch ml-prod",
            message="clusterwide is false and ml-prod holds Seldon resources, so nothing reconciles them.",
            evidence=(Evidence("kube/seldon-system/controller.yaml:41", "--clusterwide=false"),),
            fix="Install the controller with controller.clusterwide=true or add ml-prod to its watched namespaces.",
        ),
    )
    checks = (
        CheckResult(CheckId("MT101"), "scheduler-split-brain", CheckStatus.FAIL),
        CheckResult(CheckId("MT103"), "scheduler-alias-missing", CheckStatus.PASS),
        CheckResult(CheckId("MT107"), "namespace-not-watched", CheckStatus.FAIL),
        CheckResult(CheckId("MT201"), "netpol-blocks-intra-namespace", CheckStatus.PASS),
        CheckResult(CheckId("MT301"), "seldon-model-header-missing", CheckStatus.FAIL),
        CheckResult(CheckId("MT302"), "envoy-route-missing", CheckStatus.PASS),
        CheckResult(CheckId("MT304"), "experiment-invalid", CheckStatus.FAIL),
        CheckResult(CheckId("MT305"), "candidates-share-storage", CheckStatus.FAIL),
        CheckResult(
            CheckId("MT401"), "latency-slo", CheckStatus.SKIP, "no Prometheus query results in the bundle (prometheus/)"
        ),
        CheckResult(
            CheckId("MT403"),
            "split-imbalance",
            CheckStatus.ERROR,
            "KeyError: 'weights' while reading Experiment/iris-ab | see <stderr>",
        ),
    )
    problems = (
        InputProblem("kube/ml-prod/broken.yaml", "YAML parse error at line 3: mapping values are not allowed here"),
        InputProblem("logs/ml-prod/modèle-0/agent.log", "not UTF-8 & not gzip"),
    )
    return Report(source="bundles/incident-42.tar.gz", findings=findings, checks=checks, input_problems=problems)


@pytest.fixture
def rich_report() -> Report:
    return make_rich_report()


@pytest.fixture
def clean_report() -> Report:
    checks = (
        CheckResult(CheckId("MT101"), "scheduler-split-brain", CheckStatus.PASS),
        CheckResult(CheckId("MT103"), "scheduler-alias-missing", CheckStatus.PASS),
    )
    return Report(source="cluster: kind-dev", findings=(), checks=checks)
