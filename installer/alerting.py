"""The answer file's ``alerting:`` section: who hears about an alert, and uptime probing.

A compatible addition to version 1: a file without it gets the defaults (no Alertmanager,
no prober; Prometheus still evaluates its rules, as before).

::

    alerting:
      enabled: true                    # Alertmanager and the blackbox prober (needs Prometheus)
      email:                           # password: smtp_password in the secrets file
        smtp_host: smtp.example.com:587
        from_address: codequal@example.com
        to: [ops@example.com]
        username: codequal             # optional; no login when empty
      slack:                           # webhook URL: slack_webhook_url in the secrets file
        channel: "#codequal-alerts"
      pagerduty: {}                    # routing key: pagerduty_routing_key in the secrets file
      external_monitor_url: https://status.example.com/codequal   # Pingdom, Uptime Kuma, ...
      certificate_warning_days: 14
      llm_daily_token_budget: 5000000

Routing follows the severity of each rule (see ``templates/monitoring/alertmanager``):
critical pages PagerDuty and posts to Slack (email when neither is configured); warning goes
to Slack, else email; info is grouped into one email a day (Slack when there is no email).
A warning is held back while a critical alert about the same service (and LLM provider)
fires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The secrets the receivers use (they live in the secrets file, never here).
ALERTING_SECRET_KEYS: tuple[str, ...] = (
    "smtp_password",
    "slack_webhook_url",
    "pagerduty_routing_key",
)
DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_CERTIFICATE_WARNING_DAYS = 14

_HOST_PORT = re.compile(
    r"^(?=.{1,253}:)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*:[0-9]{1,5}$"
)
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
# A Slack channel: "#name" (lowercase letters, digits, - and _) or a channel id.
_SLACK_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9_-]{0,79}|[CGD][A-Z0-9]{6,20})$")
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EmailReceiver(_Section):
    """Email through an SMTP server (the info digest, and warnings when there is no Slack)."""

    smtp_host: str = Field(
        description="SMTP server as host:port (587 with STARTTLS, 25 inside a trusted network)."
    )
    from_address: str = Field(description="Sender address of every alert email.")
    to: list[str] = Field(min_length=1, description="Recipient addresses.")
    username: str | None = Field(
        None,
        description="SMTP login; its password is smtp_password in the secrets file. "
        "No login when empty.",
    )
    require_tls: bool = Field(
        True, description="Refuse to send unless the server offers STARTTLS (recommended)."
    )

    @field_validator("smtp_host")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not _HOST_PORT.match(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
            raise ValueError(f"{value!r} is not host:port, e.g. smtp.example.com:587")
        return value

    @field_validator("from_address")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for address in value:
            if not _EMAIL.match(address):
                raise ValueError(f"{address!r} is not an email address")
            if address.lower() in seen:
                raise ValueError(f"{address!r} is listed twice")
            seen.add(address.lower())
        return value


class SlackReceiver(_Section):
    """A Slack channel, posted to through an incoming webhook (slack_webhook_url)."""

    channel: str = Field(
        description="Channel the alerts are posted to (#name); the webhook URL is "
        "slack_webhook_url in the secrets file."
    )

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not _SLACK_CHANNEL.match(value):
            raise ValueError(
                f"{value!r} is not a Slack channel: #name (lowercase letters, digits, - and _) "
                "or a channel id"
            )
        return value


class PagerDutyReceiver(_Section):
    """PagerDuty Events API v2: critical alerts page (routing key: pagerduty_routing_key)."""

    url: str = Field(
        DEFAULT_PAGERDUTY_URL,
        description="Events API v2 endpoint; the routing key is pagerduty_routing_key in the "
        "secrets file.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _HTTP_URL.match(value):
            raise ValueError("must be a URL starting with https:// or http://")
        return value


class Alerting(_Section):
    """Alertmanager, its receivers, and uptime probing of the public URL."""

    enabled: bool = Field(
        False,
        description="Run Alertmanager and the blackbox prober with the monitoring stack "
        "(needs monitoring with prometheus).",
    )
    email: EmailReceiver | None = Field(None, description="Email receiver.")
    slack: SlackReceiver | None = Field(None, description="Slack receiver.")
    pagerduty: PagerDutyReceiver | None = Field(
        None, description="PagerDuty receiver (critical alerts page)."
    )
    external_monitor_url: str | None = Field(
        None,
        description="An outside uptime monitor watching this install (Pingdom, Uptime Kuma); "
        "recorded in the summary.",
    )
    certificate_warning_days: int = Field(
        DEFAULT_CERTIFICATE_WARNING_DAYS,
        ge=1,
        le=365,
        description="Warn when the public certificate expires within this many days.",
    )
    llm_daily_token_budget: int | None = Field(
        None,
        ge=1,
        description="Warn when the LLM providers consumed more tokens than this over the "
        "last 24 hours; no budget alert when empty.",
    )

    @field_validator("external_monitor_url")
    @classmethod
    def _monitor_url(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.match(value):
            raise ValueError("must be a URL starting with https:// or http://")
        return value

    @property
    def receivers(self) -> list[str]:
        """The receivers configured, in routing order."""
        return [n for n in ("pagerduty", "slack", "email") if getattr(self, n) is not None]


def alerting_problems(
    alerting: Alerting, monitoring_enabled: bool, components: Sequence[str]
) -> list[tuple[tuple[str, ...], str]]:
    """The section's rules that tie fields together (and to ``monitoring``), each as (key
    path, message); the answer file reports them with the others."""
    given = [n for n in ("email", "slack", "pagerduty") if getattr(alerting, n) is not None]
    if not alerting.enabled:
        return [(("alerting", name), "only used with alerting.enabled: true") for name in given]
    problems: list[tuple[tuple[str, ...], str]] = []
    if not given:
        problems.append(
            (("alerting", "enabled"), "name at least one receiver: email, slack or pagerduty")
        )
    if not monitoring_enabled or "prometheus" not in components:
        problems.append(
            (
                ("alerting", "enabled"),
                "needs the monitoring stack with prometheus (monitoring.enabled, "
                "monitoring.components)",
            )
        )
    return problems


def required_alerting_secrets(alerting: Alerting) -> list[tuple[str, str]]:
    """Secrets the receivers cannot work without: (key, what it is)."""
    if not alerting.enabled:
        return []
    required = []
    if alerting.email is not None and alerting.email.username:
        required.append(("smtp_password", "the password of alerting.email.username"))
    if alerting.slack is not None:
        required.append(("slack_webhook_url", "the Slack incoming webhook URL"))
    if alerting.pagerduty is not None:
        required.append(("pagerduty_routing_key", "the PagerDuty Events API v2 routing key"))
    return required


# --- timing ------------------------------------------------------------------------------

# The test knob: CODEQUAL_ALERTING_TIMING=test shortens every interval so an end-to-end test
# sees an alert in seconds. Production installs never set it; the defaults are below.
TIMING_VARIABLE = "CODEQUAL_ALERTING_TIMING"


@dataclass(frozen=True)
class AlertTiming:
    """Intervals of evaluation, probing, the rules' ``for`` and Alertmanager's grouping."""

    name: Literal["production", "test"]
    scrape_interval: str
    evaluation_interval: str
    down_for: str  # a service or the public URL unreachable this long is critical
    group_wait: str
    group_interval: str
    repeat_interval: str
    digest_wait: str  # the info digest: collected this long, sent once a day
    digest_interval: str

    @property
    def is_test(self) -> bool:
        return self.name == "test"


PRODUCTION_TIMING = AlertTiming(
    name="production",
    scrape_interval="15s",
    evaluation_interval="15s",
    down_for="2m",
    group_wait="30s",
    group_interval="5m",
    repeat_interval="4h",
    digest_wait="10m",
    digest_interval="24h",
)
TEST_TIMING = AlertTiming(
    name="test",
    scrape_interval="2s",
    evaluation_interval="2s",
    down_for="6s",
    group_wait="2s",
    group_interval="4s",
    repeat_interval="1h",
    digest_wait="8s",
    digest_interval="24h",
)


def alert_timing(environ: Mapping[str, str]) -> AlertTiming:
    """The production intervals, or the test ones when the test knob is set."""
    return TEST_TIMING if environ.get(TIMING_VARIABLE) == "test" else PRODUCTION_TIMING


# --- what the templates see ----------------------------------------------------------------

# Where the blackbox prober finds the certificate it trusts for the public URL.
PROBE_CA_DIR = "/etc/blackbox-ca"
PROBE_CA_FILE = f"{PROBE_CA_DIR}/codequal.crt"
ALERTMANAGER_PORT = 9093
BLACKBOX_PORT = 9115


@dataclass(frozen=True)
class AlertingView:
    """The alerting part of a rendered install: receivers with their secrets, the probe."""

    section: Alerting
    smtp_password: str | None
    slack_webhook_url: str | None
    pagerduty_routing_key: str | None
    probe_url: str  # the public URL's health path, as the prober requests it
    probe_ca_file: str | None  # None: the system's roots (an OpenShift router's certificate)
    alertmanager_url: str  # host:port Prometheus sends alerts to
    blackbox_address: str  # host:port Prometheus asks to probe

    @property
    def probe_tls(self) -> bool:
        return self.probe_url.startswith("https://")

    def receiver_for(self, severity: str) -> list[str]:
        """Which receivers a severity reaches (see the module docstring)."""
        section = self.section
        if severity == "critical":
            chosen = [n for n in ("pagerduty", "slack") if getattr(section, n) is not None]
            return chosen or ["email"]
        # Warnings and the digest never page: without Slack or email they stay in
        # Alertmanager's own list (its UI and API), where nothing is lost.
        if severity == "warning":
            return ["slack"] if section.slack else (["email"] if section.email else [])
        return ["email"] if section.email else (["slack"] if section.slack else [])


# --- Alertmanager's configuration ------------------------------------------------------------

_RECEIVER_NAMES = {"critical": "critical", "warning": "warning", "info": "info-digest"}
_SLACK_TITLE = (
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}'
    "{{ end }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})"
)
_SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n{{ end }}"
)
_DIGEST_SUBJECT = "CodeQual daily report: {{ .Alerts | len }} information alert(s)"


def _receiver(view: AlertingView, severity: str) -> dict[str, object]:
    section = view.section
    receiver: dict[str, object] = {"name": _RECEIVER_NAMES[severity]}
    chosen = view.receiver_for(severity)
    if "pagerduty" in chosen and section.pagerduty is not None:
        receiver["pagerduty_configs"] = [
            {
                "routing_key": view.pagerduty_routing_key or "",
                "url": section.pagerduty.url,
                "severity": severity,
                "send_resolved": True,
            }
        ]
    if "slack" in chosen and section.slack is not None:
        receiver["slack_configs"] = [
            {
                "api_url": view.slack_webhook_url or "",
                "channel": section.slack.channel,
                "send_resolved": severity != "info",
                "title": _SLACK_TITLE,
                "text": _SLACK_TEXT,
            }
        ]
    if "email" in chosen and section.email is not None:
        email: dict[str, object] = {
            "to": ", ".join(section.email.to),
            "send_resolved": severity == "critical",
        }
        if severity == "info":
            email["headers"] = {"Subject": _DIGEST_SUBJECT}
        receiver["email_configs"] = [email]
    return receiver


def alertmanager_config(view: AlertingView, timing: AlertTiming) -> dict[str, object]:
    """Alertmanager's configuration: routing by severity, inhibition, the receivers.

    Holds the receivers' secrets: the file is 0600 (a Secret on Kubernetes).
    """
    section = view.section
    global_: dict[str, object] = {"resolve_timeout": "5m"}
    if section.email is not None:
        global_["smtp_smarthost"] = section.email.smtp_host
        global_["smtp_from"] = section.email.from_address
        global_["smtp_require_tls"] = section.email.require_tls
        if section.email.username:
            global_["smtp_auth_username"] = section.email.username
            global_["smtp_auth_password"] = view.smtp_password or ""
    return {
        "global": global_,
        "route": {
            "receiver": _RECEIVER_NAMES["warning"],
            "group_by": ["alertname", "service"],
            "group_wait": timing.group_wait,
            "group_interval": timing.group_interval,
            "repeat_interval": timing.repeat_interval,
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": _RECEIVER_NAMES["critical"]},
                {"matchers": ['severity="warning"'], "receiver": _RECEIVER_NAMES["warning"]},
                {
                    # Every information alert of the day in one message.
                    "matchers": ['severity="info"'],
                    "receiver": _RECEIVER_NAMES["info"],
                    "group_by": ["severity"],
                    "group_wait": timing.digest_wait,
                    "group_interval": timing.digest_interval,
                    "repeat_interval": timing.digest_interval,
                },
            ],
        },
        "inhibit_rules": [
            {
                # A warning says less than the critical alert about the same thing.
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["service", "provider"],
            }
        ],
        "receivers": [_receiver(view, s) for s in ("critical", "warning", "info")],
    }


def blackbox_config(view: AlertingView) -> dict[str, object]:
    """The blackbox exporter's modules: the public URL answering 200, its certificate."""
    http: dict[str, object] = {
        "method": "GET",
        "valid_status_codes": [200],
        "preferred_ip_protocol": "ip4",
        "follow_redirects": False,
    }
    if view.probe_tls:
        http["fail_if_not_ssl"] = True
        if view.probe_ca_file:
            http["tls_config"] = {"ca_file": view.probe_ca_file}
    return {"modules": {"public_url": {"prober": "http", "timeout": "10s", "http": http}}}


def summary_urls(alerting: Alerting) -> dict[str, str]:
    """What the install's summary (``result.json``, ``status``) lists for alerting: the
    outside uptime monitor the operator named, so whoever reads the summary knows of it."""
    if alerting.external_monitor_url:
        return {"uptime_monitor": alerting.external_monitor_url}
    return {}
