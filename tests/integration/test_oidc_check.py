"""``check --answers`` with OIDC sign-in (issue 20, acceptance 4): the installed command,
as an operator runs it, against a provider served on this machine.

The provider is a real HTTPS server with a certificate from a test CA, which the command
trusts through ``SSL_CERT_FILE`` exactly as it would trust a corporate CA installed on the
host. An issuer nobody answers for, and a machine with no network at all (``unshare -n``),
are warnings that say the check could not look; a provider naming another issuer fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from installer.answers import CHECK_NAMES
from tests.support.oidc_provider import Provider, closed_port, oidc_provider
from tests.support.tls_files import Pem, make_ca, make_leaf

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLIENT_SECRET = "client-secret-never-printed-7d1e"
REDIRECT = "https://codequal.corp.test/auth/oidc/callback"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pem, Pem]:
    directory = tmp_path_factory.mktemp("oidc-pki")
    ca = make_ca(directory)
    return ca, make_leaf(directory, ca, ["localhost", "127.0.0.1"])


@pytest.fixture
def provider(pki: tuple[Pem, Pem]) -> Iterator[Provider]:
    with oidc_provider(tls=pki[1], host="localhost") as running:
        yield running


def _answer_file(tmp_path: Path, issuer: str, **identity: Any) -> Path:
    document = {
        "version": 1,
        "target": "production",
        "install_dir": str(tmp_path / "install"),
        "domain": "codequal.corp.test",
        "monitoring": {"enabled": False},
        # Everything this machine is judged on, skipped: the test is about the issuer.
        "checks": {"skip": [name for name in CHECK_NAMES if name != "oidc"]},
        "identity": {
            "enabled": True,
            "issuer": issuer,
            "client_id": "codequal",
            "roles": {"codequal-admins": "admin"},
            **identity,
        },
    }
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _check(
    answers: Path, pki: tuple[Pem, Pem], *extra: str, offline: bool = False, columns: int = 80
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "no_proxy")
    }
    env.update(
        PYTHONPATH=str(REPO),
        NO_COLOR="1",
        COLUMNS=str(columns),
        SSL_CERT_FILE=str(pki[0].cert),
        CODEQUAL_OIDC_CLIENT_SECRET=CLIENT_SECRET,
    )
    command = [sys.executable, "-m", "installer", "check", "--answers", str(answers), *extra]
    completed = subprocess.run(
        ["unshare", "-n", *command] if offline else command,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output, output
    assert CLIENT_SECRET not in output
    return completed


def _oidc(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report = json.loads(completed.stdout)
    [row] = [row for row in report["checks"] if row["name"] == "oidc"]
    return row  # type: ignore[no-any-return]


def test_check_reports_the_discovery_result_and_the_redirect_url(
    tmp_path: Path, pki: tuple[Pem, Pem], provider: Provider
) -> None:
    answers = _answer_file(tmp_path, provider.issuer)
    completed = _check(answers, pki, "--json")
    row = _oidc(completed)
    assert row["status"] == "pass", row
    assert row["measured"] == f"{provider.issuer} answers; register the redirect URL {REDIRECT}"
    assert row["details"]["redirect_url"] == REDIRECT
    assert completed.returncode == 0, completed.stdout
    assert provider.requests == ["/realms/codequal/.well-known/openid-configuration"]

    table = _check(answers, pki, columns=200)  # the table: wide enough for the URL whole
    assert table.returncode == 0
    assert f"redirect URL {REDIRECT}" in table.stdout, table.stdout


def test_an_unreachable_issuer_is_a_warning_not_a_failure(
    tmp_path: Path, pki: tuple[Pem, Pem]
) -> None:
    issuer = f"https://localhost:{closed_port()}/realms/codequal"
    completed = _check(_answer_file(tmp_path, issuer), pki, "--json")
    row = _oidc(completed)
    assert row["status"] == "warn", row
    assert row["measured"].startswith(
        f"could not look at {issuer}/.well-known/openid-configuration"
    )
    assert REDIRECT in row["measured"]
    assert completed.returncode == 0, completed.stdout


def test_without_a_network_it_says_it_could_not_look(tmp_path: Path, pki: tuple[Pem, Pem]) -> None:
    issuer = "https://login.corp.example/realms/corp"
    completed = _check(_answer_file(tmp_path, issuer), pki, "--json", offline=True)
    row = _oidc(completed)
    assert row["status"] == "warn", row
    assert "could not look at" in row["measured"] and "(DNS:" in row["measured"]
    assert "offline" in row["hint"]
    assert completed.returncode == 0, completed.stdout


def test_a_provider_naming_another_issuer_fails_the_check(
    tmp_path: Path, pki: tuple[Pem, Pem], provider: Provider
) -> None:
    provider.document = {"issuer": "https://login.elsewhere.example/realms/corp"}
    completed = _check(_answer_file(tmp_path, provider.issuer), pki, "--json")
    row = _oidc(completed)
    assert row["status"] == "fail"
    assert "names the issuer 'https://login.elsewhere.example/realms/corp'" in row["measured"]
    assert completed.returncode == 3


def test_a_provider_whose_certificate_is_not_trusted_fails(
    tmp_path: Path, pki: tuple[Pem, Pem], provider: Provider
) -> None:
    other = make_ca(tmp_path / "other-ca", "Some Other CA")
    completed = _check(_answer_file(tmp_path, provider.issuer), (other, pki[1]), "--json")
    row = _oidc(completed)
    assert row["status"] == "fail", row
    assert "certificate is not trusted" in row["measured"]
    assert completed.returncode == 3
