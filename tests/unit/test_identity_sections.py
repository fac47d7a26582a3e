"""The ``identity:``, ``telemetry:`` and ``audit:`` sections: compatible additions to
version 1, their rules, and what both engines render from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.errors import AnswerFileError
from installer.identity import redirect_url
from installer.release import load_release
from installer.render import RenderedPlan, render_plan
from installer.validation import parse_answers_text

pytestmark = pytest.mark.usefixtures("without_proxy")

RELEASE = load_release("0.1.0")
CLIENT_SECRET = "oidc-client-secret-4f9a2c"
DSN = "https://5e1f00d2c0ffee@o1.ingest.sentry.example/42"
ISSUER = "https://login.example.com/realms/corp"


def _answers(target: str = "production", **sections: Any) -> AnswerFile:
    document: dict[str, Any] = {"version": 1, "target": target, **sections}
    if target != "development":
        document["domain"] = "codequal.example.com"
    if target in ("kubernetes", "enterprise"):
        document["database"] = {"kind": "postgres"}
    return AnswerFile.model_validate(document)


def _secrets(**values: str) -> Secrets:
    return Secrets.model_validate(values)


def _plan(answers: AnswerFile, root: Path, **secrets: str) -> RenderedPlan:
    return render_plan(answers, _secrets(**secrets), RELEASE, root)


def _compose_env(plan: RenderedPlan, service: str) -> dict[str, str]:
    compose = yaml.safe_load(plan.file("docker-compose.yml").content)
    env: dict[str, str] = compose["services"][service].get("environment", {})
    return env


def _dotenv(plan: RenderedPlan) -> str:
    return plan.file(".env").content.decode()


def _kube(plan: RenderedPlan, kind: str, name: str) -> dict[str, Any]:
    for item in plan.files:
        if item.path.startswith("kubernetes/") and item.path.endswith(f"-{kind}-{name}.yaml"):
            document: dict[str, Any] = yaml.safe_load(item.content)
            return document
    raise AssertionError(f"no {kind} {name} in the plan")


def _container_env(plan: RenderedPlan, service: str) -> list[dict[str, Any]]:
    deployment = _kube(plan, "deployment", service)
    env: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"][0].get(
        "env", []
    )
    return env


# --- the model ----------------------------------------------------------------------------


def test_an_answer_file_without_the_sections_stays_valid_and_renders_as_before(
    tmp_path: Path,
) -> None:
    answers = _answers()
    assert not answers.identity.enabled and answers.telemetry.otlp_endpoint is None
    assert answers.audit.destination is None
    plan = _plan(answers, tmp_path)
    for service in ("codequal", "deepwiki"):
        env = _compose_env(plan, service)
        assert not [k for k in env if k.startswith(("OIDC_", "OTEL_", "SENTRY_", "AUDIT_"))]


def test_identity_is_complete_when_enabled() -> None:
    with pytest.raises(ValueError, match=r"identity\.issuer: required when identity\.enabled"):
        _answers(identity={"enabled": True, "client_id": "codequal"})
    with pytest.raises(ValueError, match=r"identity\.client_id: required"):
        _answers(identity={"enabled": True, "issuer": ISSUER})
    with pytest.raises(ValueError, match="nobody sign in"):
        _answers(
            identity={"enabled": True, "issuer": ISSUER, "client_id": "c", "default_role": None}
        )


@pytest.mark.parametrize(
    ("identity", "needle"),
    [
        ({"issuer": "login.example.com"}, "https:// URL"),
        ({"issuer": "http://login.example.com"}, "must use https://"),
        ({"issuer": "https://login.example.com/?x=1"}, "no query"),
        ({"scopes": ["profile", "email"]}, "must include openid"),
        ({"scopes": ["openid", "openid"]}, "listed twice"),
        ({"scopes": ["openid", 'a"b']}, "is not a scope"),
        ({"role_claim": "groups here"}, "not a claim name"),
        ({"roles": {"admins": "root"}}, "admin"),
        ({"client_id": "has space"}, "without spaces"),
    ],
)
def test_invalid_identity_values_are_refused(identity: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        _answers(identity=identity)


def test_a_local_http_issuer_is_accepted_for_a_test_provider() -> None:
    answers = _answers(
        identity={"enabled": True, "issuer": "http://127.0.0.1:8080/realms/t", "client_id": "c"}
    )
    assert answers.identity.issuer == "http://127.0.0.1:8080/realms/t"


def test_the_redirect_url_follows_the_domain() -> None:
    assert redirect_url("codequal.example.com", "self-signed") == (
        "https://codequal.example.com/auth/oidc/callback"
    )
    assert redirect_url("localhost", "none") == "http://localhost:3000/auth/oidc/callback"


def test_oidc_beside_ldap_on_kubernetes() -> None:
    answers = _answers(
        "enterprise",
        identity={"enabled": True, "issuer": ISSUER, "client_id": "codequal"},
        ldap={
            "enabled": True,
            "url": "ldaps://ldap.corp.local",
            "bind_dn": "cn=svc,dc=corp,dc=local",
            "user_base_dn": "ou=people,dc=corp,dc=local",
        },
    )
    assert answers.identity.enabled and answers.ldap.enabled


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"telemetry": {"otlp_endpoint": "otel:4318"}}, "http:// or https:// URL"),
        ({"telemetry": {"otlp_endpoint": "http://u:p@otel:4318"}}, "without credentials"),
        ({"telemetry": {"otlp_protocol": "thrift"}}, "telemetry.otlp_protocol"),
        ({"audit": {"retention_days": 0}}, "greater than or equal to 1"),
        ({"audit": {"destination": "syslog"}}, "audit.destination"),
        (
            {"audit": {"destination": "log-stack"}, "monitoring": {"enabled": False}},
            "needs monitoring",
        ),
    ],
)
def test_invalid_telemetry_and_audit_values_are_refused(
    document: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        _answers(**document)


def test_an_audit_volume_is_for_compose_targets() -> None:
    with pytest.raises(ValueError, match="volume is for the Compose targets"):
        _answers("kubernetes", audit={"destination": "volume"})
    assert _answers("kubernetes", audit={"destination": "log-stack"}).audit.destination


def test_validate_reports_each_problem_at_its_key_and_line() -> None:
    text = (
        "version: 1\ntarget: production\ndomain: codequal.example.com\n"
        "identity:\n  enabled: true\n  issuer: ftp://x\n"
        "audit:\n  retention_days: -3\n"
    )
    with pytest.raises(AnswerFileError) as caught:
        parse_answers_text(text, "answers.yaml")
    lines = caught.value.problems
    assert any(line.startswith("answers.yaml:6:") and "identity.issuer" in line for line in lines)
    assert any(
        line.startswith("answers.yaml:8:") and "audit.retention_days" in line for line in lines
    )


def test_the_new_secrets_are_secrets_file_keys() -> None:
    secrets = _secrets(oidc_client_secret=CLIENT_SECRET, sentry_dsn=DSN)
    assert CLIENT_SECRET not in repr(secrets) and DSN not in str(secrets)


# --- what the engines get -----------------------------------------------------------------

FULL: dict[str, Any] = {
    "identity": {
        "enabled": True,
        "issuer": ISSUER,
        "client_id": "codequal",
        "roles": {"codequal-admins": "admin"},
    },
    "telemetry": {"sentry": True, "otlp_endpoint": "http://otel-collector:4318"},
    "audit": {"destination": "volume", "retention_days": 365, "analysis_retention_days": 90},
}


def test_compose_passes_everything_to_both_services_and_secrets_only_in_the_env_file(
    tmp_path: Path,
) -> None:
    answers = _answers(**FULL)
    plan = _plan(answers, tmp_path, oidc_client_secret=CLIENT_SECRET, sentry_dsn=DSN)
    api = _compose_env(plan, "codequal")
    assert api["OIDC_ISSUER"] == ISSUER and api["OIDC_CLIENT_ID"] == "codequal"
    assert api["OIDC_REDIRECT_URI"] == "https://codequal.example.com/auth/oidc/callback"
    assert api["OIDC_SCOPES"] == "openid profile email"
    assert json.loads(api["OIDC_ROLE_MAPPING"]) == {"codequal-admins": "admin"}
    assert api["OIDC_CLIENT_SECRET"] == "${OIDC_CLIENT_SECRET}"
    for service in ("codequal", "deepwiki"):
        env = _compose_env(plan, service)
        assert env["SENTRY_DSN"] == "${SENTRY_DSN}"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert env["OTEL_SERVICE_NAME"] == service
        attributes = dict(pair.split("=") for pair in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
        assert attributes["codequal.install"] == answers.compose_project
        assert attributes["service.version"] == attributes["codequal.release"] == "0.1.0"
        assert env["SENTRY_RELEASE"] == "0.1.0"
        assert env["AUDIT_LOG_DESTINATION"] == "file"
        assert env["AUDIT_LOG_DIR"] == "/app/data/audit"
        assert (env["AUDIT_RETENTION_DAYS"], env["ANALYSIS_RETENTION_DAYS"]) == ("365", "90")
    assert "OIDC_ISSUER" not in _compose_env(plan, "deepwiki")
    assert "SENTRY_DSN" not in _compose_env(plan, "postgres")
    dotenv = _dotenv(plan)
    assert f"OIDC_CLIENT_SECRET='{CLIENT_SECRET}'" in dotenv and f"SENTRY_DSN='{DSN}'" in dotenv
    assert plan.file(".env").mode == 0o600
    for item in plan.files:
        if item.path != ".env":
            text = item.content.decode(errors="replace")
            assert CLIENT_SECRET not in text and DSN not in text, item.path


def test_kubernetes_passes_them_through_the_configmaps_and_the_secret(tmp_path: Path) -> None:
    answers = _answers(
        "kubernetes", **{**FULL, "audit": {"destination": "log-stack", "retention_days": 30}}
    )
    plan = _plan(answers, tmp_path, oidc_client_secret=CLIENT_SECRET, sentry_dsn=DSN)
    api = _kube(plan, "configmap", "codequal-env")["data"]
    assert api["OIDC_REDIRECT_URI"] == "https://codequal.example.com/auth/oidc/callback"
    assert api["AUDIT_LOG_DESTINATION"] == "stdout" and api["AUDIT_RETENTION_DAYS"] == "30"
    deepwiki = _kube(plan, "configmap", "deepwiki-env")["data"]
    assert deepwiki["OTEL_SERVICE_NAME"] == "deepwiki"
    assert "service.namespace=codequal" in deepwiki["OTEL_RESOURCE_ATTRIBUTES"]
    secret = _kube(plan, "secret", "codequal-secrets")
    assert secret["stringData"]["OIDC_CLIENT_SECRET"] == CLIENT_SECRET
    assert secret["stringData"]["SENTRY_DSN"] == DSN
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
        for e in _container_env(plan, "codequal")
        if "valueFrom" in e
    }
    assert refs["OIDC_CLIENT_SECRET"] == "OIDC_CLIENT_SECRET" and refs["SENTRY_DSN"] == "SENTRY_DSN"
    assert "SENTRY_DSN" in {e["name"] for e in _container_env(plan, "deepwiki")}
    secret_file = next(f for f in plan.files if f.path.endswith("-secret-codequal-secrets.yaml"))
    assert secret_file.mode == 0o600
    for item in plan.files:
        if item is not secret_file:
            assert CLIENT_SECRET not in item.content.decode(errors="replace"), item.path


def test_a_missing_client_secret_or_dsn_is_named_without_rendering(tmp_path: Path) -> None:
    from installer.render.escape import RenderError

    with pytest.raises(RenderError, match="oidc_client_secret") as caught:
        _plan(_answers(**FULL), tmp_path, sentry_dsn=DSN)
    assert DSN not in str(caught.value)
    with pytest.raises(RenderError, match="sentry_dsn"):
        _plan(_answers(**FULL), tmp_path / "b", oidc_client_secret=CLIENT_SECRET)
