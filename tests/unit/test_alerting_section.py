"""The answer file's ``alerting:`` section, and what it renders (no tools needed here; the
real amtool, blackbox exporter and promtool read the files in
tests/integration/test_alerting_validators.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from installer.alerting import (
    PRODUCTION_TIMING,
    TEST_TIMING,
    TIMING_VARIABLE,
    alert_timing,
    summary_urls,
)
from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.errors import AnswerFileError
from installer.examples import example_answers
from installer.release import load_release
from installer.render import render_plan, write_plan
from installer.render.escape import RenderError
from installer.render.plan import compare_plan
from installer.render.summary import plan_summary
from installer.validation import parse_answers_text

RELEASE = load_release("0.1.0")
HOOK = "https://hooks.slack.com/services/T000/B000/unit-hook-secret-77"
PD_KEY = "pd-unit-secret-key-78"
SMTP = "smtp-unit-secret-79"
EMAIL = {"smtp_host": "smtp.example.com:587", "from_address": "cq@example.com", "to": ["a@b.c"]}


def _answers(target: str = "production", **alerting: Any) -> AnswerFile:
    document: dict[str, Any] = {"version": 1, "target": target, "install_dir": "/srv/cq"}
    if target != "development":
        document["domain"] = "codequal.example.com"
    if alerting:
        document["alerting"] = alerting
    return AnswerFile.model_validate(document)


def _problems(text: str) -> list[str]:
    with pytest.raises(AnswerFileError) as caught:
        parse_answers_text(text, "answers.yaml")
    return list(caught.value.problems)


def test_an_answer_file_without_the_section_stays_valid_and_renders_no_alertmanager(
    tmp_path: Path,
) -> None:
    answers = _answers()
    assert answers.alerting.enabled is False
    plan = render_plan(answers, Secrets(), RELEASE, tmp_path, environ={})
    assert not [p for p in plan.paths if "alertmanager" in p or "blackbox" in p]
    compose = yaml.safe_load(plan.file("docker-compose.yml").content)
    assert {"alertmanager", "blackbox"}.isdisjoint(compose["services"])
    assert "alerting" not in yaml.safe_load(
        plan.file("monitoring/prometheus/prometheus.yml").content
    )


def test_receivers_and_their_defaults() -> None:
    answers = _answers(
        enabled=True, email={**EMAIL, "username": "cq"}, slack={"channel": "#ops"}, pagerduty={}
    )
    alerting = answers.alerting
    assert alerting.receivers == ["pagerduty", "slack", "email"]
    assert alerting.pagerduty is not None
    assert alerting.pagerduty.url == "https://events.pagerduty.com/v2/enqueue"
    assert alerting.email is not None and alerting.email.require_tls is True
    assert alerting.certificate_warning_days == 14


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"enabled": True, "slack": {"channel": "ops"}}, "is not a Slack channel"),
        ({"enabled": True, "email": {**EMAIL, "smtp_host": "smtp.example.com"}}, "host:port"),
        ({"enabled": True, "email": {**EMAIL, "to": []}}, "at least 1 item"),
        ({"enabled": True, "email": {**EMAIL, "to": ["nobody"]}}, "not an email address"),
        ({"enabled": True, "email": {**EMAIL, "to": ["a@b.c", "A@b.c"]}}, "listed twice"),
        ({"enabled": True, "pagerduty": {"url": "ftp://x"}}, "https://"),
        ({"enabled": True, "pagerduty": {"routing_key": "x"}}, "routing_key"),
        ({"enabled": True, "slack": {"channel": "#ops"}, "certificate_warning_days": 0}, "greater"),
    ],
)
def test_invalid_values_are_refused(section: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        _answers(**section)


def test_cross_field_rules_are_reported_at_their_keys() -> None:
    base = "version: 1\ntarget: production\ndomain: codequal.example.com\n"
    problems = _problems(base + "alerting:\n  enabled: true\n")
    assert any(
        p.startswith("answers.yaml:") and "alerting.enabled: name at least one receiver" in p
        for p in problems
    ), problems
    problems = _problems(base + "alerting:\n  slack:\n    channel: '#ops'\n")
    assert any("alerting.slack: only used with alerting.enabled: true" in p for p in problems)
    problems = _problems(
        base
        + "monitoring:\n  components: [grafana]\n"
        + "alerting:\n  enabled: true\n  slack:\n    channel: '#ops'\n"
    )
    assert any(
        "alerting.enabled: needs the monitoring stack with prometheus" in p for p in problems
    )


def test_receivers_secrets_are_required_by_name(tmp_path: Path) -> None:
    answers = _answers(
        enabled=True, email={**EMAIL, "username": "cq"}, slack={"channel": "#ops"}, pagerduty={}
    )
    with pytest.raises(RenderError) as caught:
        render_plan(answers, Secrets(), RELEASE, tmp_path, environ={})
    message = str(caught.value)
    for key in ("smtp_password", "slack_webhook_url", "pagerduty_routing_key"):
        assert key in message
    # Email without a login needs no password.
    render_plan(_answers(enabled=True, email=EMAIL), Secrets(), RELEASE, tmp_path, environ={})


@pytest.mark.parametrize("target", ["production", "kubernetes"])
def test_the_receivers_secrets_live_only_in_alertmanagers_own_file(
    target: str, tmp_path: Path
) -> None:
    answers = _answers(
        target,
        enabled=True,
        email={**EMAIL, "username": "cq"},
        slack={"channel": "#ops"},
        pagerduty={},
    )
    secrets = Secrets.model_validate(
        {"slack_webhook_url": HOOK, "pagerduty_routing_key": PD_KEY, "smtp_password": SMTP}
    )
    plan = render_plan(answers, secrets, RELEASE, tmp_path, environ={})
    holding = {
        f.path for f in plan.files if any(s.encode() in f.content for s in (HOOK, PD_KEY, SMTP))
    }
    expected = (
        "monitoring/alertmanager/alertmanager.yml"
        if target == "production"
        else next(o.path for o in plan.kubernetes_objects if o.name == "alertmanager-config")
    )
    assert holding == {expected}
    item = plan.file(expected)
    assert item.holds_secrets and item.mode == 0o600
    # plan shows them by origin, and its diff hides their values.
    changes = compare_plan(plan, tmp_path / "empty")
    summary = plan_summary(plan, changes, str(tmp_path), release=RELEASE.version)
    for key in ("smtp_password", "slack_webhook_url", "pagerduty_routing_key"):
        assert f"{key}  " in summary or f"{key} " in summary
    for value in (HOOK, PD_KEY, SMTP):
        assert value not in summary
        assert value not in plan.redactor(f"a log line with {value} in it")


def test_compose_runs_alertmanager_and_the_prober_beside_prometheus(tmp_path: Path) -> None:
    answers = _answers(enabled=True, email=EMAIL)
    plan = render_plan(answers, Secrets(), RELEASE, tmp_path, environ={})
    write_plan(plan, tmp_path)
    compose = yaml.safe_load((tmp_path / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["alertmanager"]["command"] == [
        "--config.file=/etc/alertmanager/alertmanager.yml",
        "--storage.path=/alertmanager",
        "--cluster.listen-address=",
    ]
    # Root in its container: its configuration holds secrets, readable by root only.
    assert services["alertmanager"]["user"] == "0:0"
    assert "ports" not in services["alertmanager"] and "ports" not in services["blackbox"]
    assert (
        "./nginx/ssl/codequal.crt:/etc/blackbox-ca/codequal.crt:ro"
        in services["blackbox"]["volumes"]
    )
    # Inside the network the public name leads to nginx: the probe goes the public way.
    assert services["nginx"]["networks"]["default"]["aliases"] == ["codequal.example.com"]
    assert set(services["prometheus"]["depends_on"]) == {"alertmanager", "blackbox"}
    prometheus = yaml.safe_load((tmp_path / "monitoring/prometheus/prometheus.yml").read_text())
    uptime = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "uptime")
    assert uptime["static_configs"][0]["targets"] == ["https://codequal.example.com/health"]
    assert uptime["relabel_configs"][-1]["replacement"] == "blackbox:9115"
    assert (tmp_path / "monitoring/alertmanager/alertmanager.yml").stat().st_mode & 0o777 == 0o600


def test_the_test_knob_shortens_intervals_and_production_keeps_its_own(tmp_path: Path) -> None:
    assert alert_timing({}) is PRODUCTION_TIMING
    assert alert_timing({TIMING_VARIABLE: "yes"}) is PRODUCTION_TIMING
    assert alert_timing({TIMING_VARIABLE: "test"}) is TEST_TIMING
    answers = _answers(enabled=True, email=EMAIL)
    for environ, scrape, wait in (({}, "15s", "30s"), ({TIMING_VARIABLE: "test"}, "2s", "2s")):
        plan = render_plan(answers, Secrets(), RELEASE, tmp_path / scrape, environ=environ)
        prometheus = yaml.safe_load(plan.file("monitoring/prometheus/prometheus.yml").content)
        assert prometheus["global"]["scrape_interval"] == scrape
        manager = yaml.safe_load(plan.file("monitoring/alertmanager/alertmanager.yml").content)
        assert manager["route"]["group_wait"] == wait
        info = manager["route"]["routes"][-1]
        assert info["group_interval"] == info["repeat_interval"] == "24h"


@pytest.mark.parametrize(
    ("receivers", "critical", "warning", "info"),
    [
        (
            {"pagerduty": {}, "slack": {"channel": "#a"}, "email": EMAIL},
            {"pagerduty", "slack"},
            {"slack"},
            {"email"},
        ),
        ({"pagerduty": {}}, {"pagerduty"}, set(), set()),
        ({"email": EMAIL}, {"email"}, {"email"}, {"email"}),
        ({"slack": {"channel": "#a"}}, {"slack"}, {"slack"}, {"slack"}),
        ({"pagerduty": {}, "email": EMAIL}, {"pagerduty"}, {"email"}, {"email"}),
    ],
)
def test_each_severity_reaches_the_receivers_the_architecture_names(
    receivers: dict[str, Any],
    critical: set[str],
    warning: set[str],
    info: set[str],
    tmp_path: Path,
) -> None:
    answers = _answers(enabled=True, **receivers)
    secrets = Secrets.model_validate({"slack_webhook_url": HOOK, "pagerduty_routing_key": PD_KEY})
    plan = render_plan(answers, secrets, RELEASE, tmp_path, environ={})
    manager = yaml.safe_load(plan.file("monitoring/alertmanager/alertmanager.yml").content)
    by_name = {r["name"]: r for r in manager["receivers"]}
    for name, wanted in (("critical", critical), ("warning", warning), ("info-digest", info)):
        got = {k.removesuffix("_configs") for k in by_name[name] if k.endswith("_configs")}
        assert got == wanted, name


def test_the_outside_monitor_is_recorded_in_the_summary() -> None:
    answers = _answers(
        enabled=True, email=EMAIL, external_monitor_url="https://status.example.com/"
    )
    assert summary_urls(answers.alerting) == {"uptime_monitor": "https://status.example.com/"}
    assert summary_urls(_answers().alerting) == {}


def test_the_production_example_alerts_by_email() -> None:
    example = example_answers("production")
    assert example.alerting.enabled and example.alerting.email is not None


def test_development_without_nginx_probes_the_api_itself(tmp_path: Path) -> None:
    answers = _answers("development", enabled=True, email=EMAIL)
    plan = render_plan(answers, Secrets(), RELEASE, tmp_path, environ={})
    blackbox = yaml.safe_load(plan.file("monitoring/blackbox/blackbox.yml").content)
    assert "fail_if_not_ssl" not in blackbox["modules"]["public_url"]["http"]
    rules = plan.file("monitoring/prometheus/rules/codequal.yml").content.decode()
    assert "CodeQualUnreachable" in rules and "TLSCertificateExpiresSoon" not in rules


def test_a_support_bundle_leaves_alertmanagers_file_out(tmp_path: Path) -> None:
    # Without --secrets the bundle cannot know the receivers' secrets to redact them: the
    # file that holds them is left out whole, like .env.
    import tarfile

    from installer.credentials import LoadedSecrets
    from installer.support_bundle import create_support_bundle
    from installer.validation import load_answers

    install_dir = tmp_path / "install"
    answers_file = tmp_path / "answers.yaml"
    answers_file.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "target": "production",
                "domain": "codequal.example.com",
                "install_dir": str(install_dir),
                "alerting": {"enabled": True, "slack": {"channel": "#ops"}},
            }
        )
    )
    answers = load_answers(str(answers_file))
    secrets = Secrets.model_validate({"slack_webhook_url": HOOK})
    write_plan(render_plan(answers, secrets, RELEASE, install_dir, environ={}), install_dir)
    out = tmp_path / "support.tar.gz"

    class NoContainers:
        def project_containers(self, project: str) -> list[Any]:
            return []

    bundle = create_support_bundle(answers, LoadedSecrets(Secrets()), out, engine=NoContainers())
    with tarfile.open(bundle.out, "r:gz") as archive:
        names = [m.name.split("/", 1)[1] for m in archive if m.isfile()]
        everything = b"".join(
            archive.extractfile(m).read()
            for m in archive
            if m.isfile()  # type: ignore[union-attr]
        )
    assert "config/monitoring/blackbox/blackbox.yml" in names
    assert "config/monitoring/alertmanager/alertmanager.yml" not in names
    assert HOOK.encode() not in everything


def test_the_stand_in_serves_metrics_prometheus_can_read(tmp_path: Path) -> None:
    # The end-to-end alerting test scrapes the stand-in with a real Prometheus; promtool
    # reads the same text here.
    import shutil
    import subprocess
    import urllib.request

    from tests.unit.test_standin import Server

    server = Server(tmp_path, ENABLED_PROVIDERS="anthropic,openai")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
            kind = response.headers["Content-Type"]
    finally:
        server.stop()
    assert kind.startswith("text/plain")
    assert 'codequal_llm_tokens_total{provider="openai",kind="prompt"}' in text
    assert 'codequal_llm_requests_total{provider="anthropic",outcome="success"}' in text
    promtool = shutil.which("promtool")
    if promtool is not None:  # Debian's prometheus (scripts/test installs it)
        check = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert "error" not in (check.stdout + check.stderr).lower(), check.stdout + check.stderr
