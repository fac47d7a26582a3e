"""A pull that fails during the install reads like the images check (issue 16)."""

from __future__ import annotations

import pytest

from installer.engine.pull_errors import describe_pull_failure

ISSUE_TEXT = (
    "500 Server Error for http+docker://localhost/v1.41/images/create?tag=11.2.0&fromImage="
    'grafana%2Fgrafana: Internal Server Error ("Get "https://registry-1.docker.io/v2/": dial '
    'tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host")'
)


def test_the_issue_s_pull_failure_names_the_registry_and_dns() -> None:
    message, cause, hint = describe_pull_failure("docker.io/grafana/grafana:11.2.0", ISSUE_TEXT)
    assert message == (
        "cannot pull docker.io/grafana/grafana:11.2.0: could not reach docker.io "
        "(DNS: registry-1.docker.io does not resolve)"
    )
    assert cause == "DNS"
    assert hint is not None and "offline bundle" in hint
    assert "http+docker" not in message


@pytest.mark.parametrize(
    ("daemon", "cause", "words"),
    [
        (
            'Get "https://r.corp:5000/v2/": dial tcp 10.0.0.5:5000: connect: connection refused',
            "TCP",
            "refused the connection",
        ),
        ('Get "https://r.corp:5000/v2/": dial tcp 10.0.0.5:5000: i/o timeout', "TCP", "in time"),
        (
            'Get "https://r.corp:5000/v2/": x509: certificate signed by unknown authority',
            "TLS",
            "not trusted",
        ),
        ("unauthorized: authentication required", "401", "refused the credentials"),
        (
            "manifest for r.corp:5000/codequal/codequal:9 not found: manifest unknown",
            "404",
            "is not in r.corp:5000",
        ),
    ],
)
def test_each_cause_is_named(daemon: str, cause: str, words: str) -> None:
    message, found, hint = describe_pull_failure("r.corp:5000/codequal/codequal:9", daemon)
    assert found == cause
    assert words in message
    assert hint


def test_an_unknown_failure_keeps_the_daemon_s_first_line() -> None:
    message, cause, hint = describe_pull_failure("nginx:1", "something odd\nmore")
    assert message == "cannot pull nginx:1: something odd"
    assert cause is None and hint is None
