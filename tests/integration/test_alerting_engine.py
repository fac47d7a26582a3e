"""Alerts that reach people, on the real Docker Engine.

A production install (test release ``1.0.0-alerting``: the stand-in plays CodeQual, and the
real Prometheus, Alertmanager and blackbox exporter of this machine's Debian packages run
beside it) with alerting to a local SMTP sink (aiosmtpd) and a local webhook standing in for
Slack, both on the Docker bridge's gateway address, where the containers reach the host.
Its certificate (``tls.mode: provided``) expires in 7 days.

* The blackbox probe reports the install's own certificate (its expiry is the leaf's
  notAfter) and the expiry alert arrives at Slack as a warning.
* The information digest (the LLM usage report of each provider) arrives as one email.
* Stopping the codequal container makes the critical alerts arrive at Slack.
* No secret (the webhook URL, generated passwords, the TLS key) appears in any log, event
  stream or result file of the installer (the ``install`` fixture scans them).

Intervals are the test ones (``CODEQUAL_ALERTING_TIMING=test``, see installer.alerting):
the production ones would make the test wait minutes for each alert.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.integration.apply_support import DOMAIN, Install
from tests.support.monitoring_images import ensure_monitoring_images
from tests.support.tls_files import make_ca, make_leaf

pytestmark = pytest.mark.integration

RELEASE = "1.0.0-alerting"
PROMETHEUS = "http://127.0.0.1:9090"


@dataclass
class Webhook:
    """An HTTP server that keeps every JSON body POSTed to it (Slack's incoming webhook)."""

    host: str
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def alerts(self) -> list[dict[str, str]]:
        """Each notification as its channel, title and text."""
        with self.lock:
            posts = list(self.posts)
        out = []
        for _, body in posts:
            for attachment in body.get("attachments") or []:
                out.append(
                    {
                        "channel": str(body.get("channel")),
                        "title": str(attachment.get("title")),
                        "text": str(attachment.get("text")),
                    }
                )
        return out


@contextlib.contextmanager
def webhook(host: str) -> Iterator[Webhook]:
    hook = Webhook(host)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with hook.lock:
                hook.posts.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted"


@contextlib.contextmanager
def smtp_sink(host: str) -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    sink = SmtpSink(host, port)
    controller = Controller(sink, hostname=host, port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def bridge_gateway(docker: Any) -> str:
    """The host's address on Docker's default bridge: containers reach the host there."""
    config = docker.networks.get("bridge").attrs["IPAM"]["Config"][0]
    return str(config["Gateway"])


def wait_for(what: str, found: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"waited {timeout:.0f}s for {what}")


def prometheus_query(query: str) -> list[dict[str, Any]]:
    url = f"{PROMETHEUS}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local URL
        data = json.loads(response.read())
    assert data["status"] == "success", data
    return list(data["data"]["result"])


@pytest.fixture(scope="module")
def monitoring_images(docker_engine: Any) -> list[str]:
    return ensure_monitoring_images()


def test_alerts_reach_slack_and_email_and_the_probe_sees_the_certificate(
    install: Install, monitoring_images: list[str], tmp_path: Path
) -> None:
    gateway = bridge_gateway(install.docker)
    ca = make_ca(tmp_path / "pki")
    leaf = make_leaf(tmp_path / "pki", ca, [DOMAIN], days=7)
    chain = tmp_path / "pki/chain.crt"
    chain.write_bytes(leaf.cert.read_bytes() + ca.cert.read_bytes())
    not_after = x509.load_pem_x509_certificate(leaf.cert.read_bytes()).not_valid_after_utc

    with webhook(gateway) as slack, smtp_sink(gateway) as sink:
        hook_url = f"http://{gateway}:{slack.port}/services/T0TEST/B0TEST/hook-secret-4e1f9a"
        secrets = install.secrets_file(slack_webhook_url=hook_url)
        answers = install.answers(
            "production",
            release={"version": RELEASE},
            tls={"mode": "provided", "cert_file": str(chain), "key_file": str(leaf.key)},
            monitoring={"enabled": True, "components": ["prometheus"]},
            alerting={
                "enabled": True,
                "email": {
                    "smtp_host": f"{gateway}:{sink.port}",
                    "from_address": "codequal@codequal.test",
                    "to": ["ops@codequal.test"],
                    "require_tls": False,
                },
                "slack": {"channel": "#codequal-alerts"},
                "external_monitor_url": "https://status.codequal.test/",
            },
        )
        env = install.environment(CODEQUAL_ALERTING_TIMING="test")
        started = time.monotonic()
        run = install.apply(answers, secrets=secrets, env=env)
        assert run.exit_code == 0, run.describe()
        installed = time.monotonic() - started
        assert install.result()["urls"]["uptime_monitor"] == "https://status.codequal.test/"
        config = install.install_dir / "monitoring/alertmanager/alertmanager.yml"
        assert config.stat().st_mode & 0o777 == 0o600
        assert hook_url in config.read_text()

        # The probe reaches the install through nginx and reports its own certificate.
        probe = wait_for(
            "a successful probe",
            lambda: [
                r for r in prometheus_query('probe_success{job="uptime"}') if r["value"][1] == "1"
            ],
        )
        assert probe[0]["metric"]["instance"] == f"https://{DOMAIN}/health"
        (expiry,) = prometheus_query('probe_ssl_earliest_cert_expiry{job="uptime"}')
        assert float(expiry["value"][1]) == not_after.timestamp()

        # 7 days is within 14: the expiry warning goes to Slack.
        warning = wait_for(
            "the certificate warning at Slack",
            lambda: [a for a in slack.alerts() if "TLSCertificateExpiresSoon" in a["title"]],
        )
        assert warning[0]["channel"] == "#codequal-alerts"
        assert "(warning)" in warning[0]["title"]
        assert "expires within 14 days" in warning[0]["text"]
        assert not [a for a in slack.alerts() if "(critical)" in a["title"]], slack.alerts()

        # The information alerts of the day (LLM tokens per provider) in one email.
        digest = wait_for("the information digest", lambda: list(sink.messages))
        time.sleep(6)  # a second digest would come group_interval later: it must not
        assert len(sink.messages) == 1, [m["Subject"] for m in sink.messages]
        message = digest[0]
        assert message["Subject"] == "CodeQual daily report: 2 information alert(s)"
        assert message["To"] == "ops@codequal.test"
        body = "".join(
            part.get_payload(decode=True).decode()
            for part in message.walk()
            if part.get_content_type() == "text/plain"
        ) or str(message.get_payload())
        assert "LLMTokenUsageReport" in str(message) and "anthropic" in body + str(message)
        assert "openai" in body + str(message)

        # CodeQual stops: the public URL answers 502 and the scrape fails; both page.
        (codequal,) = install.containers_by_service()["codequal"]
        stopped_at = time.monotonic()
        codequal.stop(timeout=2)
        critical = wait_for(
            "the critical alerts at Slack",
            lambda: (
                {
                    name
                    for a in slack.alerts()
                    if "(critical)" in a["title"] and a["title"].startswith("[FIRING")
                    for name in ("CodeQualUnreachable", "CodequalDown")
                    if name in a["title"]
                }
                == {"CodeQualUnreachable", "CodequalDown"}
            ),
            timeout=90,
        )
        assert critical
        arrived_after = time.monotonic() - stopped_at
        print(f"installed in {installed:.0f}s; critical alerts {arrived_after:.0f}s after stop")
        unreachable = next(a for a in slack.alerts() if "CodeQualUnreachable" in a["title"])
        assert f"https://{DOMAIN}/health has failed every probe" in unreachable["text"]
        # The hook's secret part is in the URL Alertmanager posts to, and nowhere else.
        assert {path for path, _ in slack.posts} == {"/services/T0TEST/B0TEST/hook-secret-4e1f9a"}
    assert dt.datetime.now(dt.timezone.utc) < not_after
