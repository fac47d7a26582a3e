"""What the Kubernetes adapter actually sends, checked with ``kubernetes-validate --strict``.

The configuration tests validate the rendered manifests; these validate the request bodies
the adapter sent (captured by the fake API server) after a whole install of every
kubernetes and enterprise case of the render matrix, OpenShift on and off, the Prometheus
Operator present and absent: the release record, the ServiceMonitors and every object as
adjusted for applying (an autoscaled Deployment without ``spec.replicas``). Two Kubernetes
versions, the oldest and a newer one the project supports.

kubernetes-validate ships no schemas for custom resources; the OpenShift Route and the
Prometheus Operator's ServiceMonitor and PrometheusRule are checked against the required
fields of their CRDs (route.openshift.io/v1, monitoring.coreos.com/v1) instead, and any
other kind without a schema fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from installer.answers import AnswerFile
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import install, release
from tests.support.render_matrix import CASES, RenderCase, materialize, write_test_pki

pytestmark = pytest.mark.integration

KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
K8S_CASES = [c for c in CASES if c.answers["target"] in ("kubernetes", "enterprise")]
CUSTOM_KINDS = {"Route", "ServiceMonitor", "PrometheusRule"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_test_pki(tmp_path_factory.mktemp("pki"))


def _answers(case: RenderCase, pki: dict[str, Path]) -> tuple[AnswerFile, Any]:
    answers, secrets = materialize(case, pki)
    data = answers.model_dump(exclude_unset=True, mode="json")
    # The matrix names domains, directories, databases, mirrors and certificates that do not
    # exist here: their checks are skipped by name, as on a test cluster without them.
    data["checks"] = {"skip": ["dns", "images", "database", "ldap", "tls", "deepwiki", "supabase"]}
    return AnswerFile.model_validate(data), secrets


def _applied(
    case: RenderCase, pki: dict[str, Path], tmp: Path, *, operator: bool
) -> list[dict[str, Any]]:
    answers, secrets = _answers(case, pki)
    with FakeKubeAPI(
        openshift=answers.kubernetes.openshift,
        prometheus_operator=operator,
        storage_classes=("standard", "fast-ssd"),
    ) as api:
        config = api.write_kubeconfig(tmp / "kubeconfig")
        run = install(
            answers,
            config,
            tmp / "root",
            release_manifest=release(),
            secrets=secrets,
            # The images step asks registries (and pushes the bundle): not what is checked here.
            skip_steps=("images",),
        )
        assert run.exit_code == 0, run.text()
        assert api.fake_failures == []
        bodies = {json.dumps(b, sort_keys=True): b for b in api.applied_bodies}
    return list(bodies.values())


def _check_custom(obj: dict[str, Any]) -> None:
    kind, spec = obj["kind"], obj.get("spec") or {}
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}, obj
    if kind == "Route":
        assert obj["apiVersion"] == "route.openshift.io/v1"
        assert spec["to"]["kind"] == "Service" and spec["to"]["name"]
        assert set(spec) <= {
            "host",
            "path",
            "to",
            "port",
            "tls",
            "wildcardPolicy",
            "alternateBackends",
            "subdomain",
        }
    elif kind == "ServiceMonitor":
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert spec["selector"]["matchLabels"] and spec["endpoints"]
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scheme", "tlsConfig"}
    else:
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert ("alert" in rule or "record" in rule) and rule["expr"]


CASES_AND_OPERATOR = [(c, False) for c in K8S_CASES] + [
    (c, True) for c in K8S_CASES if c.answers.get("monitoring", {}).get("enabled", True)
]


@pytest.mark.parametrize(
    ("case", "operator"),
    CASES_AND_OPERATOR,
    ids=[f"{c.name}{'-operator' if o else ''}" for c, o in CASES_AND_OPERATOR],
)
def test_every_applied_object_passes_kubernetes_validate_strict(
    case: RenderCase, operator: bool, pki: dict[str, Path], tmp_path: Path
) -> None:
    bodies = _applied(case, pki, tmp_path, operator=operator)
    kinds = {b["kind"] for b in bodies}
    assert {"Namespace", "Deployment", "Job", "ConfigMap", "Secret"} <= kinds
    openshift = case.answers.get("kubernetes", {}).get("openshift", False)
    assert ("Route" in kinds) is openshift and ("Ingress" in kinds) is not openshift
    if operator and "prometheus" in case.answers.get("monitoring", {}).get(
        "components", ["prometheus"]
    ):
        assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    for body in bodies:
        if body["kind"] in CUSTOM_KINDS:
            _check_custom(body)
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(body, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{body['kind']} {body['metadata']['name']} on {version}: {e.message}")


def test_the_validator_rejects_what_the_api_would(pki: dict[str, Path]) -> None:
    # The same check on a body the adapter would never send, so a green run means something.
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicaz": 1, "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(body, KUBERNETES_VERSIONS[0], strict=True)
