"""With the Prometheus Operator, alerting goes to the cluster's Alertmanager: an
AlertmanagerConfig with our routing, a Secret with the receivers' secrets, an uptime Probe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.credentials import Secrets
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import answers, install

NAMESPACE = "codequal"
HOOK = "https://hooks.slack.com/services/T0/B0/operator-hook-secret-31"
PD_KEY = "pd-operator-secret-32"
SMTP = "smtp-operator-secret-33"
ALERTING = {
    "enabled": True,
    "email": {
        "smtp_host": "smtp.example.com:587",
        "from_address": "cq@example.com",
        "to": ["ops@example.com"],
        "username": "cq",
    },
    "slack": {"channel": "#ops"},
    "pagerduty": {},
}
SECRETS = Secrets.model_validate(
    {"slack_webhook_url": HOOK, "pagerduty_routing_key": PD_KEY, "smtp_password": SMTP}
)


def test_the_clusters_alertmanager_gets_our_routing(tmp_path: Path) -> None:
    with FakeKubeAPI(prometheus_operator=True) as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        answer_file = answers(monitoring={"components": ["prometheus"]}, alerting=ALERTING)
        run = install(answer_file, config, tmp_path / "root", secrets=SECRETS)
        assert run.exit_code == 0, run.text()
        routing = api.get_object(
            "monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "codequal", NAMESPACE
        )
        receivers = api.get_object("v1", "Secret", "alertmanager-receivers", NAMESPACE)
        probe = api.get_object("monitoring.coreos.com/v1", "Probe", "codequal-uptime", NAMESPACE)
        own = [
            api.get_object("apps/v1", "Deployment", name, NAMESPACE)
            for name in ("prometheus", "alertmanager", "blackbox")
        ]
    assert routing is not None and receivers is not None and probe is not None
    spec = routing["spec"]
    critical, warning, info = spec["route"]["routes"]
    assert critical == {
        "receiver": "critical",
        "matchers": [{"name": "severity", "value": "critical", "matchType": "="}],
    }
    assert warning["receiver"] == "warning"
    assert info["groupBy"] == ["severity"] and info["repeatInterval"] == "24h"
    assert spec["inhibitRules"][0]["equal"] == ["service", "provider"]
    by_name = {r["name"]: r for r in spec["receivers"]}
    assert set(by_name["critical"]) == {"name", "pagerdutyConfigs", "slackConfigs"}
    assert by_name["critical"]["slackConfigs"][0]["apiURL"] == {
        "name": "alertmanager-receivers",
        "key": "slack_webhook_url",
    }
    assert by_name["info-digest"]["emailConfigs"][0]["authPassword"]["key"] == "smtp_password"
    # The AlertmanagerConfig refers to the secrets; only the Secret holds them.
    text = json.dumps(routing)
    assert not any(value in text for value in (HOOK, PD_KEY, SMTP))
    data = receivers.get("stringData") or receivers.get("data") or {}
    assert set(data) == {"slack_webhook_url", "pagerduty_routing_key", "smtp_password"}
    assert probe["spec"]["prober"]["url"] == f"blackbox.{NAMESPACE}.svc.cluster.local:9115"
    domain = answers().domain
    assert probe["spec"]["targets"]["staticConfig"]["static"] == [f"https://{domain}/health"]
    # Ours would be idle: the cluster's Prometheus and Alertmanager do their work; the
    # prober stays (the Probe goes through it).
    prometheus, alertmanager, blackbox = own
    assert prometheus is None and alertmanager is None and blackbox is not None
    for text in run.messages:
        assert not any(value in text for value in (HOOK, PD_KEY, SMTP))


@pytest.mark.parametrize("operator", [False, True])
def test_with_our_own_prometheus_our_alertmanager_stays(operator: bool, tmp_path: Path) -> None:
    with FakeKubeAPI(prometheus_operator=operator) as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        components = ["prometheus", "grafana"] if operator else ["prometheus"]
        answer_file = answers(monitoring={"components": components}, alerting=ALERTING)
        run = install(answer_file, config, tmp_path / "root", secrets=SECRETS)
        assert run.exit_code == 0, run.text()
        alertmanager = api.get_object("apps/v1", "Deployment", "alertmanager", NAMESPACE)
        secret = api.get_object("v1", "Secret", "alertmanager-config", NAMESPACE)
    assert alertmanager is not None and secret is not None
