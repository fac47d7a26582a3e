"""Answer files for rendering tests: one matrix that covers every option the templates branch on.

Each case is an answer-file mapping plus the secrets it needs. Paths to certificate files are
filled in by :func:`materialize`, which writes the test certificates they point at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.answers import AnswerFile
from installer.credentials import Secrets

# Distinctive values, so a test can search every rendered file for them.
SUPPLIED_SECRETS: dict[str, str] = {
    "anthropic_api_key": "sk-ant-test-value-anthropic-0001",
    "openai_api_key": "sk-test-value-openai-0002",
    "deepseek_api_key": "ds-test-value-deepseek-0003",
    "gemini_api_key": "gm-test-value-gemini-0004",
    "github_token": "ghp_testvaluegithub0005",
    "gitlab_token": "glpat-testvaluegitlab0006",
    "supabase_service_role_key": "sb-service-test-value-0007",
    "supabase_anon_key": "sb-anon-test-value-0008",
    "ldap_bind_password": "ldap-test-value-0009",
    "registry_password": "registry-test-value-0010",
}
MANAGED_DB_PASSWORD = "managed-db-test-value-0011"


@dataclass(frozen=True)
class RenderCase:
    name: str
    answers: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    needs_files: tuple[str, ...] = ()  # "tls", "ldap_ca", "registry_ca"


def _all_secrets(**extra: str) -> dict[str, str]:
    return {**SUPPLIED_SECRETS, **extra}


CASES: tuple[RenderCase, ...] = (
    RenderCase("development-defaults", {"version": 1, "target": "development"}),
    RenderCase(
        "development-postgres-selfsigned-monitoring-external-deepwiki",
        {
            "version": 1,
            "target": "development",
            "domain": "dev.codequal.test",
            "tls": {"mode": "self-signed"},
            "database": {"kind": "postgres"},
            "deepwiki": {"mode": "external", "url": "https://deepwiki.example.net:8002"},
            "monitoring": {"enabled": True},
            "supabase": {"url": "https://project.supabase.co"},
            "providers": ["anthropic", "openai", "deepseek", "gemini"],
        },
        _all_secrets(),
    ),
    RenderCase(
        "development-provided-tls-prometheus-only",
        {
            "version": 1,
            "target": "development",
            "domain": "dev.codequal.test",
            "tls": {"mode": "provided"},
            "monitoring": {"enabled": True, "components": ["prometheus"]},
        },
        needs_files=("tls",),
    ),
    RenderCase(
        "production-container-db-selfsigned-monitoring",
        {
            "version": 1,
            "target": "production",
            "domain": "codequal.example.com",
            "monitoring": {"enabled": True},
        },
    ),
    RenderCase(
        "production-managed-db-provided-tls-mirror-no-monitoring",
        {
            "version": 1,
            "target": "production",
            "domain": "codequal.example.com",
            "tls": {"mode": "provided"},
            "database": {
                "kind": "postgres",
                "managed": True,
                "host": "db.example.net",
                "sslmode": "verify-full",
            },
            "monitoring": {"enabled": False},
            "registry": {"mirror": "registry.corp.local:5000", "username": "puller"},
            "git": {"github": True, "gitlab": True},
            "supabase": {"url": "https://project.supabase.co"},
        },
        _all_secrets(database_password=MANAGED_DB_PASSWORD),
        needs_files=("tls",),
    ),
    RenderCase(
        "production-mirror-without-login-loki-grafana",
        {
            "version": 1,
            "target": "production",
            "domain": "codequal.example.com",
            "monitoring": {"enabled": True, "components": ["grafana", "loki"]},
            "registry": {"mirror": "mirror.corp.local/codequal"},
            "resources": {"profile": "recommended"},
        },
    ),
    RenderCase(
        "kubernetes-in-cluster-db-selfsigned-monitoring",
        {
            "version": 1,
            "target": "kubernetes",
            "domain": "codequal.example.com",
            "monitoring": {"enabled": True},
        },
    ),
    RenderCase(
        "kubernetes-managed-db-provided-tls-no-autoscaling",
        {
            "version": 1,
            "target": "kubernetes",
            "domain": "codequal.example.com",
            "tls": {"mode": "provided"},
            "database": {"kind": "postgres", "managed": True, "host": "pg.example.net"},
            "monitoring": {"enabled": False},
            "kubernetes": {
                "namespace": "cq-prod",
                "storage_class": "fast-ssd",
                "ingress_class": "nginx",
                "replicas": {"codequal": 3, "deepwiki": 2},
                "autoscaling": {"enabled": False},
            },
            "deepwiki": {"mode": "external", "url": "http://deepwiki.internal"},
        },
        _all_secrets(database_password=MANAGED_DB_PASSWORD),
        needs_files=("tls",),
    ),
    RenderCase(
        "enterprise-openshift-mirror-ldap-ca-airgap",
        {
            "version": 1,
            "target": "enterprise",
            "domain": "codequal.corp.local",
            "tls": {"mode": "provided"},
            "registry": {"mirror": "registry.corp.local:5000", "username": "puller"},
            "ldap": {
                "enabled": True,
                "url": "ldaps://ldap.corp.local",
                "bind_dn": "cn=codequal,ou=services,dc=corp,dc=local",
                "user_base_dn": "ou=people,dc=corp,dc=local",
                "group_base_dn": "ou=groups,dc=corp,dc=local",
            },
            "kubernetes": {"openshift": True, "namespace": "codequal"},
            "airgap": {"enabled": True, "bundle": "/srv/codequal-0.1.0.bundle"},
            "monitoring": {"enabled": True},
            "resources": {"profile": "enterprise"},
        },
        _all_secrets(),
        needs_files=("tls", "ldap_ca", "registry_ca"),
    ),
    RenderCase(
        "enterprise-openshift-selfsigned-no-mirror",
        {
            "version": 1,
            "target": "enterprise",
            "domain": "codequal.corp.local",
            "kubernetes": {"openshift": True},
            "ldap": {
                "enabled": True,
                "url": "ldap://ldap.corp.local:389",
                "bind_dn": "cn=codequal,dc=corp,dc=local",
                "user_base_dn": "dc=corp,dc=local",
            },
            "monitoring": {"enabled": False},
        },
        _all_secrets(),
    ),
    RenderCase(
        "enterprise-kubernetes-managed-db-mirror",
        {
            "version": 1,
            "target": "enterprise",
            "domain": "codequal.corp.local",
            "database": {"kind": "postgres", "managed": True, "host": "pg.corp.local"},
            "registry": {"mirror": "registry.corp.local:5000", "ca_file": "/placeholder"},
            "monitoring": {"enabled": True, "components": ["prometheus", "loki"]},
        },
        _all_secrets(database_password=MANAGED_DB_PASSWORD),
        needs_files=("registry_ca",),
    ),
)

# One case per target for the golden files.
GOLDEN_CASES: dict[str, str] = {
    "development": "development-postgres-selfsigned-monitoring-external-deepwiki",
    "production": "production-container-db-selfsigned-monitoring",
    "kubernetes": "kubernetes-in-cluster-db-selfsigned-monitoring",
    "enterprise": "enterprise-openshift-mirror-ldap-ca-airgap",
}


def case(name: str) -> RenderCase:
    return next(c for c in CASES if c.name == name)


def write_test_pki(directory: Path) -> dict[str, Path]:
    """A certificate and key for the domain, and a CA bundle, as PEM files in ``directory``."""
    from installer.secretstore import generate_self_signed

    directory.mkdir(parents=True, exist_ok=True)
    cert, key, _ = generate_self_signed("codequal.example.com")
    ca, _, _ = generate_self_signed("ca.corp.local")
    paths = {
        "cert": directory / "tls.crt",
        "key": directory / "tls.key",
        "ca": directory / "corporate-ca.pem",
    }
    paths["cert"].write_bytes(cert)
    paths["key"].write_bytes(key)
    paths["key"].chmod(0o600)
    paths["ca"].write_bytes(ca)
    return paths


def materialize(render_case: RenderCase, pki: dict[str, Path]) -> tuple[AnswerFile, Secrets]:
    """The validated answers and secrets of ``render_case``, pointing at the files in ``pki``."""
    data: dict[str, Any] = {
        k: (dict(v) if isinstance(v, dict) else v) for k, v in render_case.answers.items()
    }
    if "tls" in render_case.needs_files:
        data["tls"] = {**data["tls"], "cert_file": str(pki["cert"]), "key_file": str(pki["key"])}
    if "ldap_ca" in render_case.needs_files:
        data["ldap"] = {**data["ldap"], "ca_file": str(pki["ca"])}
    if "registry_ca" in render_case.needs_files:
        data["registry"] = {**data["registry"], "ca_file": str(pki["ca"])}
    return AnswerFile.model_validate(data), Secrets.model_validate(render_case.secrets)
