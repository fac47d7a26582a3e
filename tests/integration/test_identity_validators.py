"""The sign-in, telemetry and audit settings rendered for both engines pass the real
validators: ``docker compose config`` reads every variable (the secrets from the ``.env``
beside it) and ``kubernetes-validate --strict`` accepts every object."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.release import load_release
from installer.render import render_plan, write_plan

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("without_proxy")]

RELEASE = load_release("0.1.0")
CLIENT_SECRET = "oidc-client-$ecret-with-dollar-0012"
DSN = "https://5e1f00d2c0ffee@o1.ingest.sentry.example/42"
SECTIONS: dict[str, Any] = {
    "identity": {
        "enabled": True,
        "issuer": "https://login.example.com/realms/corp",
        "client_id": "codequal",
        "scopes": ["openid", "profile", "groups"],
        "role_claim": "realm_access.roles",
        "roles": {"codequal admins": "admin", "dev's": "developer"},
    },
    "telemetry": {"sentry": True, "otlp_endpoint": "https://otel.example.com:4318/v1"},
    "audit": {"destination": "log-stack", "retention_days": 400, "analysis_retention_days": 30},
}


def _written(target: str, root: Path) -> None:
    document: dict[str, Any] = {
        "version": 1,
        "target": target,
        "domain": "codequal.example.com",
        "install_dir": str(root),
        "database": {"kind": "postgres"},
        **SECTIONS,
    }
    answers = AnswerFile.model_validate(document)
    secrets = Secrets.model_validate({"oidc_client_secret": CLIENT_SECRET, "sentry_dsn": DSN})
    write_plan(render_plan(answers, secrets, RELEASE, root), root)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def test_compose_reads_every_variable_as_rendered(tmp_path: Path) -> None:
    _written("production", tmp_path)
    result = _run(
        [
            "docker",
            "compose",
            "-f",
            str(tmp_path / "docker-compose.yml"),
            "config",
            "--format",
            "json",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "is not set" not in result.stderr, result.stderr
    services = json.loads(result.stdout)["services"]
    api = services["codequal"]["environment"]
    # `config` prints a Compose file, so it writes '$' as '$$' again; the value read is whole.
    assert api["OIDC_CLIENT_SECRET"] == CLIENT_SECRET.replace("$", "$$")
    assert json.loads(api["OIDC_ROLE_MAPPING"]) == {
        "codequal admins": "admin",
        "dev's": "developer",
    }
    assert api["OIDC_REDIRECT_URI"] == "https://codequal.example.com/auth/oidc/callback"
    for name in ("codequal", "deepwiki"):
        env = services[name]["environment"]
        assert env["SENTRY_DSN"] == DSN
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://otel.example.com:4318/v1"
        assert env["OTEL_SERVICE_NAME"] == name
        assert "service.version=0.1.0" in env["OTEL_RESOURCE_ATTRIBUTES"]
        assert env["AUDIT_LOG_DESTINATION"] == "stdout"
    assert CLIENT_SECRET not in (tmp_path / "docker-compose.yml").read_text()
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("target", ["kubernetes", "enterprise"])
def test_kubernetes_validate_strict_accepts_every_object(target: str, tmp_path: Path) -> None:
    _written(target, tmp_path)
    paths = sorted(
        str(p) for p in (tmp_path / "kubernetes").glob("*.yaml") if "-route-" not in p.name
    )
    beside = Path(sys.executable).parent / "kubernetes-validate"
    validator = str(beside) if beside.exists() else shutil.which("kubernetes-validate")
    assert validator, "kubernetes-validate is not installed; scripts/test installs it"
    result = _run([validator, "--strict", *paths])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(paths), result.stdout
