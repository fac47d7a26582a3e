"""The answer file, version 1: the whole install described as data.

The root model :class:`AnswerFile` *is* the answer file. Every section forbids unknown
keys and documents every field; those descriptions become the JSON Schema
(``codequal-installer answers schema``) and the README's reference. Rules that tie
several fields together are validation errors here, reported with the key they are
about, so an operator learns of them from ``answers validate`` and not an hour into
an install.

Secrets never live here: see :mod:`installer.credentials`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from installer.alerting import ALERTING_SECRET_KEYS, Alerting, alerting_problems
from installer.audit import Audit
from installer.backup.section import Backup
from installer.identity import Identity

# The names are defined in installer.names; "X as X" re-exports them with the model.
from installer.names import CHECK_NAMES as CHECK_NAMES  # noqa: PLC0414
from installer.names import COMPOSE_TARGETS as COMPOSE_TARGETS  # noqa: PLC0414
from installer.names import KUBERNETES_TARGETS as KUBERNETES_TARGETS  # noqa: PLC0414
from installer.names import TARGETS as TARGETS  # noqa: PLC0414
from installer.names import CheckName as CheckName  # noqa: PLC0414
from installer.names import Target as Target  # noqa: PLC0414
from installer.telemetry import Telemetry

Provider = Literal["anthropic", "openai", "deepseek", "gemini"]
MonitoringComponent = Literal["prometheus", "grafana", "loki"]
ServiceName = Literal[
    "codequal",
    "deepwiki",
    "nginx",
    "postgres",
    "prometheus",
    "grafana",
    "loki",
    "promtail",
    "alertmanager",
    "blackbox",
]
_ALL_COMPONENTS: tuple[MonitoringComponent, ...] = ("prometheus", "grafana", "loki")
_DEFAULT_PROVIDERS: tuple[Provider, ...] = ("anthropic", "openai")

# RFC 1123 host names: labels of letters, digits and inner hyphens.
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$"
)
# A Kubernetes name (DNS-1123 label).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# registry host[:port][/path], as Docker accepts it for a mirror prefix.
_REGISTRY = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
)
# An image reference: [registry/]path[:tag][@sha256:digest].
_IMAGE_REF = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DN = re.compile(r"^[A-Za-z][A-Za-z0-9-]*=[^,]+(,\s*[A-Za-z][A-Za-z0-9-]*=[^,]+)*$")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$")


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def _absolute(value: str, what: str) -> str:
    if not PurePosixPath(value).is_absolute():
        raise ValueError(f"{what} must be an absolute path, got a relative one")
    if "\n" in value or "\x00" in value:
        raise ValueError(f"{what} must not contain a newline or NUL byte")
    return value


def _url(value: str, schemes: tuple[str, ...]) -> str:
    match = re.match(r"^([a-z][a-z0-9+.-]*)://([^/?#\s]+)([^\s]*)$", value)
    if not match or match.group(1) not in schemes:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    host = match.group(2).rsplit("@", 1)[-1]
    hostname = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    if not (hostname.startswith(":") or _HOSTNAME.match(hostname) or host.startswith("[")):
        raise ValueError(f"{hostname!r} is not a valid host name")
    return value


AbsolutePath = Annotated[str, Field(min_length=1)]


class TLS(Section):
    """How nginx (or the Ingress) serves HTTPS."""

    mode: Literal["self-signed", "provided", "none"] = Field(
        "self-signed",
        description=(
            "self-signed: the installer generates a certificate for `domain`; provided: use "
            "`cert_file` and `key_file`; none: plain HTTP (development only)."
        ),
    )
    cert_file: AbsolutePath | None = Field(
        None, description="PEM certificate (with chain) for `domain`; required with mode provided."
    )
    key_file: AbsolutePath | None = Field(
        None, description="PEM private key for `cert_file`; required with mode provided."
    )

    @field_validator("cert_file", "key_file")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "the path")

    @model_validator(mode="after")
    def _files_match_mode(self) -> TLS:
        if self.mode == "provided":
            missing = [n for n in ("cert_file", "key_file") if getattr(self, n) is None]
            if missing:
                raise CrossFieldError(
                    [((name,), "required when tls.mode is provided") for name in missing]
                )
        elif self.cert_file is not None or self.key_file is not None:
            field = "cert_file" if self.cert_file is not None else "key_file"
            raise CrossFieldError([((field,), f"only used with mode provided, not {self.mode}")])
        return self


class Database(Section):
    """Where CodeQual keeps its data."""

    kind: Literal["sqlite", "postgres"] = Field(
        "postgres",
        description=(
            "sqlite (development only; the default there) or postgres (the default elsewhere)."
        ),
    )
    managed: bool = Field(
        False,
        description=(
            "true: an existing PostgreSQL server reached at `host` (cloud-managed or the "
            "enterprise's own); false: the installer runs PostgreSQL itself."
        ),
    )
    host: str | None = Field(
        None, description="Host name of the managed PostgreSQL server; required when managed."
    )
    port: int = Field(5432, ge=1, le=65535, description="PostgreSQL port.")
    name: str = Field("codequal", description="Database name (created if missing).")
    user: str = Field("codequal", description="Database role CodeQual connects as.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer",
        description="libpq sslmode for the connection; use verify-full for managed databases.",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTNAME.match(value):
            raise ValueError(f"{value!r} is not a valid host name")
        return value

    @field_validator("name", "user")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _PG_IDENTIFIER.match(value):
            raise ValueError(
                "must be a lowercase PostgreSQL identifier: a letter or _, then letters, "
                "digits or _ (at most 63)"
            )
        return value

    @model_validator(mode="after")
    def _managed_needs_host(self) -> Database:
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.kind == "sqlite" and self.managed:
            problems.append((("managed",), "a SQLite database cannot be managed"))
        if self.kind == "sqlite" and self.host is not None:
            problems.append((("host",), "only used with kind postgres"))
        if self.kind == "postgres" and self.managed and self.host is None:
            problems.append((("host",), "required when database.managed is true"))
        if self.kind == "postgres" and not self.managed and self.host is not None:
            problems.append(
                (("host",), "only used with managed: true (the installer runs its own server)")
            )
        if problems:
            raise CrossFieldError(problems)
        return self


class DeepWiki(Section):
    """The DeepWiki repository-analysis service."""

    mode: Literal["bundled", "external"] = Field(
        "bundled",
        description="bundled: run DeepWiki here (port 8002); external: use the one at `url`.",
    )
    url: str | None = Field(
        None, description="Base URL of an existing DeepWiki service; required when external."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, ("http", "https"))

    @model_validator(mode="after")
    def _url_matches_mode(self) -> DeepWiki:
        if self.mode == "external" and self.url is None:
            raise CrossFieldError([(("url",), "required when deepwiki.mode is external")])
        if self.mode == "bundled" and self.url is not None:
            raise CrossFieldError([(("url",), "only used with mode external")])
        return self


class Supabase(Section):
    """An optional shared Supabase project used as repository cache and vector store."""

    url: str | None = Field(
        None,
        description=(
            "Supabase project URL (https://<project>.supabase.co). Its keys go in the secrets "
            "file as supabase_service_role_key and supabase_anon_key."
        ),
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, ("https", "http"))


class Git(Section):
    """Which Git hosts CodeQual talks to (their tokens go in the secrets file)."""

    github: bool = Field(True, description="Enable GitHub (token: github_token).")
    gitlab: bool = Field(False, description="Enable GitLab (token: gitlab_token).")


class Resources(Section):
    """CPU and memory given to each service."""

    profile: Literal["auto", "minimal", "recommended", "enterprise"] = Field(
        "auto",
        description=(
            "auto: derived from the measured machine; minimal: 4 CPU / 8 GB; "
            "recommended: 8 CPU / 16 GB; enterprise: Kubernetes nodes of 8 CPU / 32 GB."
        ),
    )


class Monitoring(Section):
    """Prometheus, Grafana and Loki."""

    enabled: bool = Field(True, description="Install the monitoring stack.")
    components: list[MonitoringComponent] = Field(
        default_factory=lambda: list(_ALL_COMPONENTS),
        description="Which parts of the stack to install when enabled.",
    )

    @field_validator("components")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return _no_duplicates(value)

    @model_validator(mode="after")
    def _some_components(self) -> Monitoring:
        if self.enabled and not self.components:
            raise CrossFieldError(
                [(("components",), "name at least one component, or set enabled: false")]
            )
        return self


class Registry(Section):
    """A private registry or mirror that every image is pulled from (and pushed to, air-gapped)."""

    mirror: str | None = Field(
        None,
        description=(
            "host[:port][/path] that replaces each image's registry, e.g. registry.corp.local:5000."
        ),
    )
    username: str | None = Field(
        None, description="User for the mirror; the password goes in the secrets file."
    )
    insecure: bool = Field(
        False, description="Allow plain HTTP or an unverified certificate (not recommended)."
    )
    ca_file: AbsolutePath | None = Field(
        None, description="PEM bundle of the CA that signed the mirror's certificate."
    )

    @field_validator("mirror")
    @classmethod
    def _mirror(cls, value: str | None) -> str | None:
        if value is not None and not _REGISTRY.match(value):
            raise ValueError(f"{value!r} is not a registry host[:port][/path]")
        return value

    @field_validator("ca_file")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "the path")

    @model_validator(mode="after")
    def _needs_mirror(self) -> Registry:
        problems = [
            ((name,), "only used together with registry.mirror")
            for name, set_ in (
                ("username", self.username is not None),
                ("ca_file", self.ca_file is not None),
                ("insecure", self.insecure),
            )
            if set_ and self.mirror is None
        ]
        if self.insecure and self.ca_file is not None and self.mirror is not None:
            problems.append((("insecure",), "insecure and ca_file contradict each other"))
        if problems:
            raise CrossFieldError(problems)
        return self


class Replicas(Section):
    """Fixed replica counts (the HPA takes over codequal's when autoscaling is on)."""

    codequal: int = Field(2, ge=1, le=100, description="Replicas of the API service.")
    deepwiki: int = Field(1, ge=1, le=100, description="Replicas of DeepWiki.")


class Autoscaling(Section):
    """HorizontalPodAutoscaler for the API service."""

    enabled: bool = Field(True, description="Create a HorizontalPodAutoscaler for codequal.")
    min: int = Field(2, ge=1, le=100, description="Fewest replicas.")
    max: int = Field(6, ge=1, le=100, description="Most replicas.")
    cpu_percent: int = Field(
        70, ge=1, le=100, description="Target average CPU use, percent of the request."
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> Autoscaling:
        if self.min > self.max:
            raise CrossFieldError([(("min",), f"must not exceed max ({self.max})")])
        return self


class Kubernetes(Section):
    """The cluster the kubernetes and enterprise targets install into."""

    context: str | None = Field(
        None,
        description="kubeconfig context; the current one when empty, in-cluster inside a pod.",
    )
    namespace: str = Field("codequal", description="Namespace for every object (created).")
    storage_class: str | None = Field(
        None, description="StorageClass for the volumes; the cluster default when empty."
    )
    ingress_class: str | None = Field(
        None, description="IngressClass for the Ingress; the cluster default when empty."
    )
    openshift: bool = Field(
        False, description="Target OpenShift: a Route instead of an Ingress, SCC-friendly pods."
    )
    replicas: Replicas = Field(default_factory=Replicas, description="Replica counts.")
    autoscaling: Autoscaling = Field(
        default_factory=Autoscaling, description="Autoscaling of the API service."
    )

    @field_validator("namespace", "storage_class", "ingress_class")
    @classmethod
    def _dns_label(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_LABEL.match(value):
            raise ValueError(
                f"{value!r} is not a valid Kubernetes name (lowercase letters, digits and "
                "'-', at most 63)"
            )
        return value


class LDAP(Section):
    """Corporate LDAP / Active Directory sign-in (kubernetes and enterprise targets)."""

    enabled: bool = Field(False, description="Let users sign in with directory accounts.")
    url: str | None = Field(None, description="ldaps://host[:port] (or ldap:// with StartTLS).")
    bind_dn: str | None = Field(
        None, description="DN of the service account; its password is ldap_bind_password."
    )
    user_base_dn: str | None = Field(None, description="Where user entries are searched.")
    group_base_dn: str | None = Field(None, description="Where group entries are searched.")
    ca_file: AbsolutePath | None = Field(
        None, description="PEM bundle of the corporate CA that signed the directory's certificate."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, ("ldaps", "ldap"))

    @field_validator("bind_dn", "user_base_dn", "group_base_dn")
    @classmethod
    def _dn(cls, value: str | None) -> str | None:
        if value is not None and not _DN.match(value):
            raise ValueError(f"{value!r} is not a distinguished name like cn=svc,dc=corp,dc=local")
        return value

    @field_validator("ca_file")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "the path")

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> LDAP:
        if self.enabled:
            missing = [n for n in ("url", "bind_dn", "user_base_dn") if getattr(self, n) is None]
            if missing:
                raise CrossFieldError(
                    [((name,), "required when ldap.enabled is true") for name in missing]
                )
        return self


class Airgap(Section):
    """Install from an offline bundle with no network access."""

    enabled: bool = Field(False, description="Take every image from `bundle`; never pull.")
    bundle: AbsolutePath | None = Field(
        None, description="Path of the codequal-<version>.bundle file; required when enabled."
    )

    @field_validator("bundle")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "the bundle path")

    @model_validator(mode="after")
    def _bundle_when_enabled(self) -> Airgap:
        if self.enabled and self.bundle is None:
            raise CrossFieldError([(("bundle",), "required when airgap.enabled is true")])
        return self


class Release(Section):
    """Which CodeQual release to install, and per-service image overrides."""

    version: str | None = Field(
        None, description="Release version (x.y.z); the installer's own release when empty."
    )
    images: dict[ServiceName, str] = Field(
        default_factory=dict,
        description="Image reference per service, replacing the release manifest's.",
    )

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not _VERSION.match(value):
            raise ValueError(f"{value!r} is not a version like 1.4.2")
        return value

    @field_validator("images")
    @classmethod
    def _images(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k, ref in value.items() if not _IMAGE_REF.match(ref))
        if bad:
            raise ValueError(
                f"not an image reference ([registry/]name[:tag][@sha256:digest]): {', '.join(bad)}"
            )
        return value


class Checks(Section):
    """Prerequisite checks to skip, each by name (the report still shows them as skipped)."""

    skip: list[CheckName] = Field(
        default_factory=list, description="Names of prerequisite checks not to enforce."
    )

    @field_validator("skip")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return _no_duplicates(value)


def _no_duplicates(value: list[str]) -> list[str]:
    seen: set[str] = set()
    for item in value:
        if item in seen:
            raise ValueError(f"{item!r} is listed twice")
        seen.add(item)
    return value


class CrossFieldError(ValueError):
    """Problems found by a rule that ties fields together, each with its own key path.

    Raised inside validators; :mod:`installer.validation` unpacks it so every problem is
    reported at the key it is about, relative to the model that raised it.
    """

    def __init__(self, problems: Sequence[tuple[tuple[str, ...], str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(p)}: {m}" for p, m in problems))
        self.problems = list(problems)


SECRET_KEYS: tuple[str, ...] = (
    "anthropic_api_key",
    "openai_api_key",
    "deepseek_api_key",
    "gemini_api_key",
    "github_token",
    "gitlab_token",
    "supabase_service_role_key",
    "supabase_anon_key",
    "database_password",
    "ldap_bind_password",
    "registry_password",
    "grafana_admin_password",
    *ALERTING_SECRET_KEYS,
    "oidc_client_secret",
    "sentry_dsn",
)


_SCALAR_KEYS = frozenset({"version", "target", "install_dir", "domain", "providers"})


class AnswerFile(BaseModel):
    """A CodeQual installation, described completely (answer file version 1)."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        title="CodeQual installer answer file",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1] = Field(description="Answer file format version; always 1.")
    target: Target = Field(
        description=(
            "development: Docker Compose on this host; production: Docker Compose on one "
            "server with nginx and TLS; kubernetes: any conformant cluster; enterprise: "
            "on-prem Kubernetes or OpenShift, air-gap capable."
        )
    )
    install_dir: AbsolutePath = Field(
        "/opt/codequal",
        description="Compose targets: where the generated files and the state directory live.",
    )
    domain: str = Field(
        "localhost",
        description="Public host name of the installation; required except for development.",
    )
    tls: TLS = Field(
        default_factory=TLS,
        description="HTTPS settings; the default is none for development, self-signed elsewhere.",
    )
    database: Database = Field(
        default_factory=Database,
        description="The database; the default is sqlite for development, postgres elsewhere.",
    )
    deepwiki: DeepWiki = Field(default_factory=DeepWiki, description="The DeepWiki service.")
    supabase: Supabase = Field(default_factory=Supabase, description="Optional Supabase project.")
    providers: list[Provider] = Field(
        default_factory=lambda: list(_DEFAULT_PROVIDERS),
        description="LLM providers whose API keys the services receive (keys: <name>_api_key).",
    )
    git: Git = Field(default_factory=Git, description="Git hosting integrations.")
    resources: Resources = Field(default_factory=Resources, description="Resource profile.")
    monitoring: Monitoring = Field(
        default_factory=Monitoring, description="Monitoring and logging stack."
    )
    registry: Registry = Field(default_factory=Registry, description="Private registry / mirror.")
    kubernetes: Kubernetes = Field(
        default_factory=Kubernetes, description="Cluster settings (kubernetes, enterprise)."
    )
    ldap: LDAP = Field(default_factory=LDAP, description="Directory sign-in (kubernetes targets).")
    airgap: Airgap = Field(default_factory=Airgap, description="Offline installation.")
    release: Release = Field(default_factory=Release, description="Release and image overrides.")
    checks: Checks = Field(default_factory=Checks, description="Prerequisite check overrides.")
    backup: Backup = Field(default_factory=Backup, description="Backup archives (Compose targets).")
    alerting: Alerting = Field(
        default_factory=Alerting, description="Alert routing (Alertmanager) and uptime probing."
    )
    identity: Identity = Field(
        default_factory=Identity, description="Sign-in through an OpenID Connect provider."
    )
    telemetry: Telemetry = Field(
        default_factory=Telemetry, description="Error tracking (Sentry) and tracing (OTLP)."
    )
    audit: Audit = Field(default_factory=Audit, description="Audit log and data retention.")

    @model_validator(mode="before")
    @classmethod
    def _target_defaults(cls, data: Any) -> Any:
        """Read an empty section (``supabase:``) as all defaults; fill the defaults that
        depend on the target (database kind and TLS mode for development)."""
        if not isinstance(data, dict):
            return data
        data = {
            k: {} if v is None and k in cls.model_fields and k not in _SCALAR_KEYS else v
            for k, v in data.items()
        }
        if data.get("target") != "development":
            return data
        for section, key, value in (("database", "kind", "sqlite"), ("tls", "mode", "none")):
            current = data.get(section)
            if current is None:
                data[section] = {key: value}
            elif isinstance(current, dict) and key not in current:
                data[section] = {**current, key: value}
        return data

    @field_validator("install_dir")
    @classmethod
    def _install_dir(cls, value: str) -> str:
        value = _absolute(value, "install_dir")
        if PurePosixPath(value) == PurePosixPath("/"):
            raise ValueError("install_dir must not be the root directory")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not _HOSTNAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid host name (letters, digits, '-' and '.', no scheme "
                "or port)"
            )
        return value.lower()

    @field_validator("providers")
    @classmethod
    def _providers(cls, value: list[str]) -> list[str]:
        return _no_duplicates(value)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> AnswerFile:
        problems = list(self.cross_field_problems())
        if problems:
            raise CrossFieldError(problems)
        return self

    def cross_field_problems(self) -> list[tuple[tuple[str, ...], str]]:
        """Rules between sections, each as (key path, message)."""
        problems: list[tuple[tuple[str, ...], str]] = []
        compose = self.target in COMPOSE_TARGETS
        given = self.model_fields_set
        if self.target != "development":
            if self.database.kind == "sqlite":
                problems.append(
                    (
                        ("database", "kind"),
                        f"sqlite is for development only; {self.target} needs postgres",
                    )
                )
            if self.tls.mode == "none":
                problems.append(
                    (
                        ("tls", "mode"),
                        f"none is for development only; {self.target} serves HTTPS "
                        "(self-signed or provided)",
                    )
                )
            if "domain" not in given:
                problems.append(
                    (("domain",), f"a public host name is required for the {self.target} target")
                )
        if compose:
            for section in ("kubernetes", "ldap"):
                if section in given and getattr(self, section) != type(getattr(self, section))():
                    problems.append(
                        ((section,), "only used by the kubernetes and enterprise targets")
                    )
        if self.target == "development" and self.resources.profile == "enterprise":
            problems.append((("resources", "profile"), "enterprise is for the kubernetes targets"))
        if self.target in KUBERNETES_TARGETS and self.airgap.enabled and not self.registry.mirror:
            problems.append(
                (
                    ("registry", "mirror"),
                    "required for an air-gapped Kubernetes install: the "
                    "bundle's images are pushed there",
                )
            )
        if self.kubernetes.openshift and self.kubernetes.ingress_class is not None:
            problems.append(
                (("kubernetes", "ingress_class"), "not used on OpenShift (a Route is created)")
            )
        if self.deepwiki.mode == "external" and "deepwiki" in self.release.images:
            problems.append(
                (("release", "images", "deepwiki"), "not used: deepwiki.mode is external")
            )
        problems += alerting_problems(
            self.alerting, self.monitoring.enabled, self.monitoring.components
        )
        problems += [(("identity", *path), m) for path, m in self.identity.problems()]
        loki = self.monitoring.enabled and "loki" in self.monitoring.components
        problems += [
            (("audit", *path), m) for path, m in self.audit.problems(compose=compose, loki=loki)
        ]
        return problems

    @property
    def is_compose(self) -> bool:
        """True for the Docker Compose targets (development, production)."""
        return self.target in COMPOSE_TARGETS

    @property
    def compose_project(self) -> str:
        """The Compose project name: ``codequal`` for the default ``install_dir``.

        Any other ``install_dir`` gets ``codequal-<dir name>-<6 hex of the path>``, so two
        installations on one Docker Engine (or two test runs) never share containers,
        networks or volumes, and the name stays the same for the life of the directory.
        """
        path = PurePosixPath(self.install_dir)
        if path == PurePosixPath("/opt/codequal"):
            return "codequal"
        import hashlib

        slug = re.sub(r"[^a-z0-9]+", "-", path.name.lower()).strip("-")[:20].strip("-")
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:6]
        return f"codequal-{slug}-{digest}" if slug else f"codequal-{digest}"
