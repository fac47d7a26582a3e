"""Alerting, read by the real tools: Alertmanager's ``amtool``, the blackbox exporter, promtool.

For each answer file of a matrix (both engines; every mix of email, Slack and PagerDuty; TLS
self-signed, provided, none and an OpenShift router's; a token budget or not) the plan is
written and:

* ``amtool check-config`` accepts Alertmanager's configuration (Debian's
  prometheus-alertmanager), and ``amtool config routes test`` names the receiver of a
  critical, a warning and an info alert, whose integrations are the ones the section asks for;
* ``prometheus-blackbox-exporter --config.check`` accepts the prober's modules;
* ``promtool check config`` and ``check rules`` accept Prometheus's files, and
  ``promtool test rules`` shows every alert of the rendered rule file firing at its
  threshold and not below it (a rule without a scenario here fails the test);
* on Kubernetes, ``kubernetes-validate --strict`` accepts every object.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from installer.release import load_release
from installer.render import RenderedPlan, render_plan, write_plan
from tests.support.render_matrix import RenderCase, materialize, write_test_pki

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("without_proxy")]

RELEASE = load_release("0.1.0")
SECRETS = {
    "smtp_password": "smtp-test-value-0101",
    "slack_webhook_url": "https://hooks.slack.com/services/T000/B000/slack-test-value-0102",
    "pagerduty_routing_key": "pd-test-value-0103",
}
EMAIL = {
    "smtp_host": "smtp.example.com:587",
    "from_address": "codequal@example.com",
    "to": ["ops@example.com", "oncall@example.com"],
}


def _case(name: str, answers: dict[str, Any], **kwargs: Any) -> RenderCase:
    return RenderCase(name, {"version": 1, **answers}, **kwargs)


CASES: tuple[RenderCase, ...] = (
    _case(
        "production-every-receiver-budget",
        {
            "target": "production",
            "domain": "codequal.example.com",
            "alerting": {
                "enabled": True,
                "email": {**EMAIL, "username": "codequal"},
                "slack": {"channel": "#codequal-alerts"},
                "pagerduty": {},
                "external_monitor_url": "https://status.example.com/codequal",
                "llm_daily_token_budget": 1000000,
            },
        },
        secrets=SECRETS,
    ),
    _case(
        "production-slack-only-provided-tls",
        {
            "target": "production",
            "domain": "codequal.example.com",
            "tls": {"mode": "provided"},
            "monitoring": {"enabled": True, "components": ["prometheus"]},
            "alerting": {"enabled": True, "slack": {"channel": "#ops"}},
        },
        secrets={"slack_webhook_url": SECRETS["slack_webhook_url"]},
        needs_files=("tls",),
    ),
    _case(
        "production-pagerduty-only",
        {
            "target": "production",
            "domain": "codequal.example.com",
            "alerting": {
                "enabled": True,
                "pagerduty": {"url": "https://events.eu.pagerduty.com/v2/enqueue"},
                "certificate_warning_days": 30,
            },
        },
        secrets={"pagerduty_routing_key": SECRETS["pagerduty_routing_key"]},
    ),
    _case(
        "development-plain-http-email-without-login",
        {
            "target": "development",
            "monitoring": {"enabled": True},
            "alerting": {"enabled": True, "email": {**EMAIL, "require_tls": False}},
        },
    ),
    _case(
        "kubernetes-email-slack-selfsigned",
        {
            "target": "kubernetes",
            "domain": "codequal.example.com",
            "alerting": {
                "enabled": True,
                "email": EMAIL,
                "slack": {"channel": "#codequal-alerts"},
            },
        },
        secrets={"slack_webhook_url": SECRETS["slack_webhook_url"]},
    ),
    _case(
        "kubernetes-pagerduty-email-provided-tls-budget",
        {
            "target": "kubernetes",
            "domain": "codequal.example.com",
            "tls": {"mode": "provided"},
            "kubernetes": {"namespace": "cq-prod"},
            "alerting": {
                "enabled": True,
                "email": {**EMAIL, "username": "codequal"},
                "pagerduty": {},
                "llm_daily_token_budget": 250000,
            },
        },
        secrets=SECRETS,
        needs_files=("tls",),
    ),
    _case(
        "enterprise-openshift-slack",
        {
            "target": "enterprise",
            "domain": "codequal.corp.local",
            "kubernetes": {"openshift": True},
            "alerting": {"enabled": True, "slack": {"channel": "#ops"}},
        },
        secrets={"slack_webhook_url": SECRETS["slack_webhook_url"]},
    ),
)
K8S_CASES = [c for c in CASES if c.answers["target"] in ("kubernetes", "enterprise")]


def run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, check=False, timeout=120
    )


def tool(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; scripts/test installs it", pytrace=False)
    return found


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_test_pki(tmp_path_factory.mktemp("pki"))


def written(render: RenderCase, pki: dict[str, Path], root: Path) -> RenderedPlan:
    answers, secrets = materialize(render, pki)
    plan = render_plan(answers, secrets, RELEASE, root, environ={})
    write_plan(plan, root)
    return plan


def monitoring_dir(plan: RenderedPlan, root: Path) -> Path:
    """The Compose layout of monitoring/, rebuilt from the ConfigMaps and the Secret on
    Kubernetes (the files the pods mount)."""
    if not plan.kubernetes_objects:
        return root / "monitoring"
    out = root / "extracted"
    docs = {
        o.name: yaml.safe_load((root / o.path).read_text())
        for o in plan.kubernetes_objects
        if o.kind in ("ConfigMap", "Secret")
    }
    files = {
        "prometheus/prometheus.yml": docs["prometheus-config"]["data"]["prometheus.yml"],
        "prometheus/rules/codequal.yml": docs["prometheus-config"]["data"]["codequal.rules.yml"],
        "alertmanager/alertmanager.yml": docs["alertmanager-config"]["stringData"][
            "alertmanager.yml"
        ],
        "blackbox/blackbox.yml": docs["blackbox-config"]["data"]["blackbox.yml"],
    }
    for path, text in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text)
    return out


@pytest.mark.parametrize("render", CASES, ids=lambda c: c.name)
def test_amtool_accepts_the_alertmanager_configuration(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(render, pki, tmp_path)
    config = monitoring_dir(plan, tmp_path) / "alertmanager/alertmanager.yml"
    result = run([tool("amtool"), "check-config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert " - 1 inhibit rules" in result.stdout
    assert " - 3 receivers" in result.stdout


def test_amtool_rejects_a_route_to_an_unknown_receiver(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    # The check above can fail: a route naming a receiver that does not exist is refused.
    plan = written(CASES[0], pki, tmp_path)
    config = monitoring_dir(plan, tmp_path) / "alertmanager/alertmanager.yml"
    config.write_text(config.read_text().replace('receiver: "info-digest"', 'receiver: "x"', 1))
    result = run([tool("amtool"), "check-config", str(config)])
    assert result.returncode != 0
    assert 'undefined receiver "x"' in result.stdout + result.stderr


# What each severity must reach, from the section: critical pages (PagerDuty and Slack, email
# when neither), warning goes to Slack else email, info to email else Slack.
def expected_integrations(alerting: dict[str, Any]) -> dict[str, set[str]]:
    has = {n: n in alerting for n in ("email", "slack", "pagerduty")}
    critical = {f"{n}_configs" for n in ("pagerduty", "slack") if has[n]} or {"email_configs"}
    warning = {"slack_configs"} if has["slack"] else {"email_configs"} if has["email"] else set()
    info = {"email_configs"} if has["email"] else {"slack_configs"} if has["slack"] else set()
    return {"critical": critical, "warning": warning, "info": info}


@pytest.mark.parametrize("render", CASES, ids=lambda c: c.name)
def test_amtool_routes_each_severity_to_its_receiver(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(render, pki, tmp_path)
    config = monitoring_dir(plan, tmp_path) / "alertmanager/alertmanager.yml"
    document = yaml.safe_load(config.read_text())
    receivers = {r["name"]: r for r in document["receivers"]}
    expected = expected_integrations(render.answers["alerting"])
    names = {"critical": "critical", "warning": "warning", "info": "info-digest"}
    for severity, integrations in expected.items():
        result = run(
            [
                tool("amtool"),
                "config",
                "routes",
                "test",
                f"--config.file={config}",
                f"--verify.receivers={names[severity]}",
                f"severity={severity}",
                "service=codequal",
                "alertname=CodeQualTest",
            ]
        )
        assert result.returncode == 0, (severity, result.stdout + result.stderr)
        assert result.stdout.strip() == names[severity]
        got = {k for k in receivers[names[severity]] if k.endswith("_configs")}
        assert got == integrations, severity
    # The digest: every info alert of a day in one message.
    info_route = next(
        r for r in document["route"]["routes"] if r["matchers"] == ['severity="info"']
    )
    assert info_route["group_by"] == ["severity"]
    assert info_route["group_interval"] == info_route["repeat_interval"] == "24h"
    # A warning waits while the critical alert about the same service fires.
    assert document["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["service", "provider"],
        }
    ]


@pytest.mark.parametrize("render", CASES, ids=lambda c: c.name)
def test_the_blackbox_exporter_accepts_its_configuration(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(render, pki, tmp_path)
    config = monitoring_dir(plan, tmp_path) / "blackbox/blackbox.yml"
    result = run(
        [tool("prometheus-blackbox-exporter"), "--config.check", f"--config.file={config}"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Config file is ok" in result.stderr
    module = yaml.safe_load(config.read_text())["modules"]["public_url"]
    tls = render.answers.get("tls", {}).get("mode") != "none" and not (
        render.answers["target"] == "development" and "tls" not in render.answers
    )
    assert module["http"]["valid_status_codes"] == [200]
    assert module["http"].get("fail_if_not_ssl", False) is tls
    openshift = render.answers.get("kubernetes", {}).get("openshift", False)
    ca = module["http"].get("tls_config", {}).get("ca_file")
    assert ca == ("/etc/blackbox-ca/codequal.crt" if tls and not openshift else None)


def test_the_blackbox_exporter_rejects_an_unknown_field(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    # The check above can fail: the exporter reads its modules strictly.
    plan = written(CASES[0], pki, tmp_path)
    config = monitoring_dir(plan, tmp_path) / "blackbox/blackbox.yml"
    config.write_text(config.read_text().replace("fail_if_not_ssl:", "fail_if_no_ssl:"))
    result = run(
        [tool("prometheus-blackbox-exporter"), "--config.check", f"--config.file={config}"]
    )
    assert result.returncode != 0


@pytest.mark.parametrize("render", CASES, ids=lambda c: c.name)
def test_promtool_accepts_the_configuration_with_alertmanager_and_the_probe(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(render, pki, tmp_path)
    directory = monitoring_dir(plan, tmp_path) / "prometheus"
    config = run([tool("promtool"), "check", "config", str(directory / "prometheus.yml")])
    assert config.returncode == 0, config.stdout + config.stderr
    rules = run([tool("promtool"), "check", "rules", str(directory / "rules/codequal.yml")])
    assert rules.returncode == 0, rules.stdout + rules.stderr
    prometheus = yaml.safe_load((directory / "prometheus.yml").read_text())
    (alertmanagers,) = prometheus["alerting"]["alertmanagers"]
    namespace = render.answers.get("kubernetes", {}).get("namespace", "codequal")
    host = (
        "alertmanager"
        if not plan.kubernetes_objects
        else (f"alertmanager.{namespace}.svc.cluster.local")
    )
    assert alertmanagers["static_configs"] == [{"targets": [f"{host}:9093"]}]
    uptime = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "uptime")
    (target,) = uptime["static_configs"][0]["targets"]
    if render.answers["target"] == "development" and "tls" not in render.answers:
        assert target == "http://codequal:3000/health"
    else:
        assert target == f"https://{render.answers['domain']}/health"


# --- promtool test rules: each alert at its threshold --------------------------------------

Series = list[tuple[str, str]]


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


def scenarios(rules: dict[str, Any], budget: int | None, warn_days: int) -> dict[str, Any]:
    """For each alert: series that cross its threshold (it fires, with these labels and
    annotations, at ``fire_at`` and not before ``quiet_until``) and series just short of it
    (it never fires)."""
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}

    def memory_threshold(name: str) -> int:
        return int(by_name[name]["expr"].rsplit(">", 1)[1])

    out: dict[str, Any] = {}
    for app, port in (("codequal", 3000), ("deepwiki", 8002)):
        up = f'up{{job="{app}",instance="{app}:{port}",service="{app}"}}'
        title = app.capitalize()
        labels = {"job": app, "instance": f"{app}:{port}", "service": app}
        out[f"{title}Down"] = {
            "above": [(up, "0x20")],
            "below": [(up, "1x20")],
            "quiet_until": "1m",
            "fire_at": "2m",
            "labels": {**labels, "severity": "critical"},
            "annotations": {
                "summary": f"{app} is down",
                "description": f"Prometheus has not reached {app} for 2 minutes ({app}:{port}).",
            },
        }
        rss = (
            f'process_resident_memory_bytes{{job="{app}",instance="{app}:{port}",service="{app}"}}'
        )
        limit = memory_threshold(f"{title}MemoryNearLimit")
        out[f"{title}MemoryNearLimit"] = {
            "above": [(rss, f"{limit + 1}x20")],
            "below": [(rss, f"{limit}x20")],
            "quiet_until": "9m",
            "fire_at": "10m",
            "labels": {**labels, "severity": "warning"},
            "annotations": by_name[f"{title}MemoryNearLimit"]["annotations"],
        }
        start = f'process_start_time_seconds{{job="{app}",instance="{app}:{port}",service="{app}"}}'
        out[f"{title}Restarted"] = {
            "above": [(start, "100 100 160 160 160")],
            "below": [(start, "100x4")],
            "quiet_until": "1m",
            "fire_at": "2m",
            "labels": {**labels, "severity": "info"},
            "annotations": by_name[f"{title}Restarted"]["annotations"],
        }
    requests = 'http_requests_total{job="codequal",instance="codequal:3000",status="%s"}'
    out["CodeQualHighErrorRate"] = {
        "above": [(requests % "500", "0+6x20"), (requests % "200", "0+94x20")],
        "below": [(requests % "500", "0+4x20"), (requests % "200", "0+96x20")],
        "quiet_until": "5m",
        "fire_at": "6m",
        "labels": {"severity": "critical", "service": "codequal"},
        "annotations": {
            "summary": "More than 5% of CodeQual requests fail",
            "description": "6% of requests answered 5xx over the last 5 minutes.",
        },
    }
    bucket = 'http_request_duration_seconds_bucket{job="codequal",instance="codequal:3000",le="%s"}'
    out["CodeQualSlowResponses"] = {
        # p95 interpolated inside the (2, 4] bucket: 2 + 2 * 0.95 * 100 / 100 = 3.9 seconds.
        "above": [
            (bucket % "2", "0x20"),
            (bucket % "4", "0+100x20"),
            (bucket % "+Inf", "0+100x20"),
        ],
        # ... and inside (0, 2]: at most 2 seconds, the threshold, which is not above it.
        "below": [
            (bucket % "2", "0+100x20"),
            (bucket % "4", "0+100x20"),
            (bucket % "+Inf", "0+100x20"),
        ],
        "quiet_until": "10m",
        "fire_at": "11m",
        "labels": {"severity": "warning", "service": "codequal"},
        "annotations": {
            "summary": "CodeQual's 95th percentile latency is above 2 seconds",
            "description": "p95 latency is 3.9s.",
        },
    }
    up = 'up{job="grafana",instance="grafana:3000",service="grafana"}'
    out["ScrapeTargetMissing"] = {
        "above": [(up, "0x20")],
        "below": [(up, "1x20")],
        "quiet_until": "4m",
        "fire_at": "5m",
        "labels": {**_labels(up), "severity": "warning"},
        "annotations": {
            "summary": "A monitoring target is unreachable",
            "description": "grafana at grafana:3000 has not answered for 5 minutes.",
        },
    }
    reload = (
        "prometheus_config_last_reload_success_timestamp_seconds"
        '{job="prometheus",instance="localhost:9090"}'
    )
    out["PrometheusConfigReloaded"] = {
        "above": [(reload, "100 100 200 200")],
        "below": [(reload, "100x4")],
        "quiet_until": "1m",
        "fire_at": "2m",
        "labels": {**_labels(reload), "severity": "info"},
        "annotations": by_name["PrometheusConfigReloaded"]["annotations"],
    }
    probe = 'probe_success{job="uptime",instance="https://codequal.example.com/health",service="codequal"}'
    out["CodeQualUnreachable"] = {
        "above": [(probe, "0x20")],
        "below": [(probe, "1x20")],
        "quiet_until": "1m",
        "fire_at": "2m",
        "labels": {**_labels(probe), "severity": "critical"},
        "annotations": {
            "summary": "The public URL does not answer 200",
            "description": "https://codequal.example.com/health has failed every probe for 2m "
            "(down, an error status, or a certificate that does not verify).",
        },
    }
    expiry = probe.replace("probe_success", "probe_ssl_earliest_cert_expiry")
    limit_seconds = warn_days * 86400
    # Evaluated at 1m (time() = 60): the certificate expires 60 s short of the limit, or at it.
    out["TLSCertificateExpiresSoon"] = {
        "above": [(expiry, f"{limit_seconds}x5")],
        "below": [(expiry, f"{limit_seconds + 60}x5")],
        "quiet_until": None,
        "fire_at": "1m",
        "labels": {**_labels(expiry), "severity": "warning"},
        "annotations": {
            "summary": f"The public certificate expires within {warn_days} days",
            "description": "The certificate of https://codequal.example.com/health expires in "
            f"{warn_days - 1}d 23h 59m 0s; renew it and re-run the installer.",
        },
    }
    calls = (
        'codequal_llm_requests_total{job="codequal",instance="codequal:3000",'
        'provider="openai",outcome="%s"}'
    )
    out["LLMProviderErrors"] = {
        "above": [(calls % "error", "0+11x30"), (calls % "success", "0+89x30")],
        "below": [(calls % "error", "0+10x30"), (calls % "success", "0+90x30")],
        "quiet_until": "10m",
        "fire_at": "11m",
        "labels": {"provider": "openai", "service": "codequal", "severity": "warning"},
        "annotations": {
            "summary": "More than 10% of the calls to an LLM provider fail",
            "description": "openai: 11% of calls failed over 5 minutes (rate limits, quota or "
            "an outage).",
        },
    }
    out["LLMProviderFailing"] = {
        "above": [(calls % "error", "0+51x30"), (calls % "success", "0+49x30")],
        "below": [(calls % "error", "0+50x30"), (calls % "success", "0+50x30")],
        "quiet_until": "5m",
        "fire_at": "6m",
        "labels": {"provider": "openai", "service": "codequal", "severity": "critical"},
        "annotations": {
            "summary": "More than half of the calls to an LLM provider fail",
            "description": "openai: 51% of calls failed over 5 minutes; analyses using it stop.",
        },
    }
    tokens = (
        'codequal_llm_tokens_total{job="codequal",instance="codequal:3000",'
        'provider="anthropic",kind="completion"}'
    )
    out["LLMTokenUsageReport"] = {
        "above": [(tokens, "0 0 500 500")],
        "below": [(tokens, "500x4")],
        "quiet_until": "1m",
        "fire_at": "2m",
        "labels": {"provider": "anthropic", "service": "codequal", "severity": "info"},
        "annotations": {
            "summary": "LLM tokens used in the last 24 hours, by provider",
            "description": "anthropic: 500 tokens.",
        },
    }
    if budget is not None:
        out["LLMTokenBudgetExceeded"] = {
            # increase() over 24 h of a counter that starts inside the window counts from
            # its first sample: exactly the tokens added.
            "above": [(tokens, f"0 {budget + 1}x20")],
            "below": [(tokens, f"0 {budget}x20")],
            "quiet_until": "0m",
            "fire_at": "1m",
            "labels": {"service": "codequal", "severity": "warning"},
            "annotations": {
                "summary": f"LLM token use over the last 24 hours exceeds the budget ({budget})",
                "description": f"{_humanize(budget + 1)} tokens in 24 hours.",
            },
        }
    return out


def _humanize(value: int) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.4g}{suffix}"
    return str(value)


def promtool_test_file(rule_file: Path, name: str, scenario: dict[str, Any]) -> dict[str, Any]:
    firing = {
        "exp_labels": scenario["labels"],
        "exp_annotations": scenario["annotations"],
    }
    above: list[dict[str, Any]] = [
        {"eval_time": scenario["fire_at"], "alertname": name, "exp_alerts": [firing]}
    ]
    if scenario["quiet_until"] is not None:
        above.insert(0, {"eval_time": scenario["quiet_until"], "alertname": name, "exp_alerts": []})
    below = [
        {"eval_time": t, "alertname": name, "exp_alerts": []}
        for t in ("1m", scenario["fire_at"], "20m")
    ]

    def series(items: Series) -> list[dict[str, str]]:
        return [{"series": s, "values": v} for s, v in items]

    return {
        "rule_files": [str(rule_file)],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": series(scenario["above"]), "alert_rule_test": above},
            {"interval": "1m", "input_series": series(scenario["below"]), "alert_rule_test": below},
        ],
    }


@pytest.mark.parametrize("render", CASES, ids=lambda c: c.name)
def test_promtool_unit_tests_fire_each_alert_at_its_threshold(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(render, pki, tmp_path)
    rule_file = monitoring_dir(plan, tmp_path) / "prometheus/rules/codequal.yml"
    rules = yaml.safe_load(rule_file.read_text())
    alerting = render.answers["alerting"]
    planned = scenarios(
        rules, alerting.get("llm_daily_token_budget"), alerting.get("certificate_warning_days", 14)
    )
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    # Every alert the install ships has a scenario; none is tested that is not shipped
    # (deepwiki is always bundled here; plain HTTP has no certificate to expire).
    if "tls" not in render.answers and render.answers["target"] == "development":
        planned.pop("TLSCertificateExpiresSoon")
    assert alerts == set(planned)
    failures = []
    for name, scenario in sorted(planned.items()):
        test_file = tmp_path / f"test-{name}.yml"
        test_file.write_text(yaml.safe_dump(promtool_test_file(rule_file, name, scenario)))
        result = run([tool("promtool"), "test", "rules", str(test_file)])
        if result.returncode != 0:
            failures.append(f"{name}:\n{result.stdout}{result.stderr}")
    assert not failures, "\n".join(failures)


def test_promtool_test_rules_fails_when_a_threshold_moves(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    # The scenarios can fail: an error-rate threshold raised from 10% to 12% stops the alert.
    plan = written(CASES[0], pki, tmp_path)
    rule_file = monitoring_dir(plan, tmp_path) / "prometheus/rules/codequal.yml"
    rule_file.write_text(
        rule_file.read_text().replace("ratio_rate5m > 0.1", "ratio_rate5m > 0.12", 1)
    )
    scenario = scenarios(yaml.safe_load(rule_file.read_text()), None, 14)["LLMProviderErrors"]
    test_file = tmp_path / "test.yml"
    test_file.write_text(
        yaml.safe_dump(promtool_test_file(rule_file, "LLMProviderErrors", scenario))
    )
    result = run([tool("promtool"), "test", "rules", str(test_file)])
    assert result.returncode != 0


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("render", K8S_CASES, ids=lambda c: c.name)
def test_kubernetes_validate_strict_accepts_the_alerting_objects(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(render, pki, tmp_path)
    paths = [str(tmp_path / o.path) for o in plan.kubernetes_objects if o.kind != "Route"]
    names = {(o.kind, o.name) for o in plan.kubernetes_objects}
    assert {
        ("Secret", "alertmanager-config"),
        ("ConfigMap", "blackbox-config"),
        ("Deployment", "alertmanager"),
        ("Deployment", "blackbox"),
        ("Service", "alertmanager"),
        ("NetworkPolicy", "alertmanager-traffic"),
        ("NetworkPolicy", "blackbox-traffic"),
    } <= names
    result = run([tool("kubernetes-validate"), "--strict", "-k", "1.33.0", *paths])
    assert result.returncode == 0, result.stdout + result.stderr
    # The receivers' secrets are in the Secret alone.
    holding = {
        Path(p).name
        for p in paths
        if any(v in Path(p).read_text() for v in render.secrets.values())
    }
    assert holding <= {
        "02-secret-codequal-secrets.yaml",
        "03-secret-alertmanager-config.yaml",
        "04-secret-alertmanager-config.yaml",
    }
    assert any("alertmanager-config" in name for name in holding)


# What the adapter sends on each path: our Alertmanager, or the Prometheus Operator's kinds.
def _applied_bodies(
    render: RenderCase, pki: dict[str, Path], tmp: Path, operator: bool
) -> list[Any]:
    import json

    from tests.support.fake_kube_api import FakeKubeAPI
    from tests.support.kube_install import install

    answers, secrets = materialize(render, pki)
    data = answers.model_dump(exclude_unset=True, mode="json")
    data["checks"] = {"skip": ["dns", "images", "database", "ldap", "tls", "deepwiki", "supabase"]}
    if operator:
        # Without a Grafana of ours, the cluster's Prometheus and Alertmanager take over.
        data["monitoring"] = {"enabled": True, "components": ["prometheus"]}
    answers = type(answers).model_validate(data)
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
            release_manifest=RELEASE,
            secrets=secrets,
            skip_steps=("images",),
        )
        assert run.exit_code == 0, run.text()
        bodies = {json.dumps(b, sort_keys=True): b for b in api.applied_bodies}
    return list(bodies.values())


def _check_operator_kind(obj: dict[str, Any]) -> None:
    """The required fields of the Prometheus Operator's CRDs (kubernetes-validate has none)."""
    spec = obj["spec"]
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}
    if obj["kind"] == "AlertmanagerConfig":
        assert obj["apiVersion"] == "monitoring.coreos.com/v1alpha1"
        assert set(spec) <= {"route", "receivers", "inhibitRules", "muteTimeIntervals"}
        names = {r["name"] for r in spec["receivers"]}
        routes = [spec["route"], *spec["route"].get("routes", [])]
        assert {r["receiver"] for r in routes} <= names
        for rule in spec["inhibitRules"]:
            for matcher in rule["sourceMatch"] + rule["targetMatch"]:
                assert matcher["matchType"] in ("=", "!=", "=~", "!~") and matcher["name"]
        for receiver in spec["receivers"]:
            for config in receiver.get("slackConfigs", []):
                assert set(config["apiURL"]) == {"name", "key"}
            for config in receiver.get("pagerdutyConfigs", []):
                assert set(config["routingKey"]) == {"name", "key"}
            for config in receiver.get("emailConfigs", []):
                assert config["to"] and config["smarthost"] and config["from"]
    elif obj["kind"] == "Probe":
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert spec["prober"]["url"] and spec["targets"]["staticConfig"]["static"]
    elif obj["kind"] == "ServiceMonitor":
        assert spec["selector"]["matchLabels"] and spec["endpoints"]
    else:
        assert obj["kind"] == "PrometheusRule" and spec["groups"]


@pytest.mark.parametrize("operator", [False, True])
@pytest.mark.parametrize("render", K8S_CASES, ids=lambda c: c.name)
def test_every_applied_alerting_object_passes_kubernetes_validate_strict(
    render: RenderCase, operator: bool, pki: dict[str, Path], tmp_path: Path
) -> None:
    import kubernetes_validate

    bodies = _applied_bodies(render, pki, tmp_path, operator)
    kinds = {(b["kind"], b["metadata"]["name"]) for b in bodies}
    if operator:
        assert {("AlertmanagerConfig", "codequal"), ("Probe", "codequal-uptime")} <= kinds
        assert ("Deployment", "alertmanager") not in kinds
    else:
        assert ("Deployment", "alertmanager") in kinds and ("Deployment", "blackbox") in kinds
    for body in bodies:
        if body["apiVersion"].startswith("monitoring.coreos.com/"):
            _check_operator_kind(body)
        elif body["kind"] != "Route":
            try:
                kubernetes_validate.validate(body, "1.33.0", strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{body['kind']} {body['metadata']['name']}: {e.message}")
