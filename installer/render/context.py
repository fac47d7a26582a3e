"""What the templates see: one validated, precomputed view of an installation.

Templates only format; every decision (which services run, which variables each gets,
which of those are secret, the image each pulls) is made here, in typed Python, from the
validated answers, the release manifest, the resource allocation and the resolved secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from installer.alerting import (
    ALERTMANAGER_PORT,
    BLACKBOX_PORT,
    PROBE_CA_FILE,
    PRODUCTION_TIMING,
    AlertingView,
    AlertTiming,
    alert_timing,
    required_alerting_secrets,
)
from installer.answers import AnswerFile
from installer.credentials import LoadedSecrets, Secrets
from installer.identity import redirect_url
from installer.release import HealthCheck, ReleaseManifest, Route
from installer.render.escape import RenderError
from installer.render.images import mirrored
from installer.resources import Capacity, ServiceResources, allocate, capacity_for
from installer.secretstore import ResolvedSecret, SecretStore
from installer.telemetry import TRACED_SERVICES

PROJECT = "codequal"
APP_LABEL_PART_OF = "codequal"

_PROVIDER_VARIABLES = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "gemini": "GEMINI_API_KEY",
}


@dataclass(frozen=True)
class ServiceSpec:
    """One service as it will run: image, ports, health, volumes, resources, environment."""

    name: str
    image: str
    role: str
    ports: list[int]
    health: HealthCheck | None
    volumes: dict[str, str]
    command: list[str] | None
    user: str | None
    resources: ServiceResources
    env: dict[str, str] = field(default_factory=dict)
    secret_env: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def uid(self) -> int | None:
        return int(self.user.split(":")[0]) if self.user else None

    @property
    def gid(self) -> int | None:
        if not self.user:
            return None
        parts = self.user.split(":")
        return int(parts[1]) if len(parts) > 1 else int(parts[0])


@dataclass(frozen=True)
class SecretVariable:
    """An environment variable whose value is secret, and the secrets it is made from."""

    name: str
    value: str
    keys: tuple[str, ...]
    # What logs must hide of the value: None hides it whole; a proxy URL hides only its
    # user and password (the proxy's address is what an operator needs to read).
    conceal: tuple[str, ...] | None = None

    @property
    def hidden(self) -> tuple[str, ...]:
        return (self.value,) if self.conceal is None else self.conceal


@dataclass
class RenderContext:
    """Everything a template may use."""

    answers: AnswerFile
    release: ReleaseManifest
    target: str
    compose: bool
    services: dict[str, ServiceSpec]
    routes: list[Route]
    secret_variables: dict[str, SecretVariable]
    resolved: dict[str, ResolvedSecret]
    public_url: str
    deepwiki_url: str
    monitoring: dict[str, bool]
    tls_enabled: bool
    source_dir: str | None
    ca_bundle: str | None
    registry_auth: str | None
    tls_pair: tuple[str, str] | None
    hosts: dict[str, str]
    namespace: str
    version: str
    version_label: str
    project: str
    # Alertmanager and the prober (alerting.enabled), and the intervals they run at.
    alerting: AlertingView | None = None
    timing: AlertTiming = PRODUCTION_TIMING

    def has(self, service: str) -> bool:
        return service in self.services


def _service_names(answers: AnswerFile, release: ReleaseManifest) -> list[str]:
    names = ["codequal"]
    if answers.deepwiki.mode == "bundled":
        names.append("deepwiki")
    if answers.is_compose and answers.tls.mode != "none":
        names.append("nginx")
    if answers.database.kind == "postgres" and not answers.database.managed:
        names.append("postgres")
    if answers.monitoring.enabled:
        components = answers.monitoring.components
        for component in ("prometheus", "grafana", "loki"):
            if component in components:
                names.append(component)
        # Promtail reads the Docker daemon's container logs; on Kubernetes the cluster's
        # own log agent ships to Loki (a node-log DaemonSet cannot run "restricted").
        if "loki" in components and answers.is_compose:
            names.append("promtail")
        if answers.alerting.enabled and "prometheus" in components:
            names += ["alertmanager", "blackbox"]
    missing = [n for n in names if n not in release.services]
    if missing:
        raise RenderError(
            f"release {release.version} has no service named {', '.join(missing)}",
            hint="use a release manifest that defines every service this install needs",
        )
    return names


# The proxy variables passed from the installer's environment to every service, as set.
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
# Always exempt from the proxy, besides the installation's own services.
LOCAL_HOSTS = ("localhost", "127.0.0.1")


def proxy_credentials(url: str) -> tuple[str, ...]:
    """The parts of a proxy URL that are secret: its user:password, and the password."""
    parts = urlsplit(url if "://" in url else f"//{url}")
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not at or not userinfo:
        return ()
    found = [userinfo]
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    elif parts.username:
        found.append(unquote(parts.username))
    return tuple(dict.fromkeys(found))


def no_proxy_list(environ: Mapping[str, str], own_hosts: list[str]) -> str:
    """``NO_PROXY`` (either case) from ``environ``, with ``own_hosts`` and localhost appended."""
    entries: list[str] = []
    for variable in NO_PROXY_VARIABLES:
        entries += [e.strip() for e in environ.get(variable, "").split(",") if e.strip()]
    return ",".join(dict.fromkeys([*entries, *own_hosts, *LOCAL_HOSTS]))


def _needed_generated(answers: AnswerFile) -> list[str]:
    keys = []
    if answers.database.kind == "postgres" and not answers.database.managed:
        keys.append("database_password")
    if answers.monitoring.enabled and "grafana" in answers.monitoring.components:
        keys.append("grafana_admin_password")
    return keys


def required_secrets(answers: AnswerFile) -> list[tuple[str, str]]:
    """Secrets these answers cannot be rendered without: (key, what it is), in order.

    The installer generates the others it needs (see :func:`_needed_generated`).
    """
    required = []
    if answers.database.kind == "postgres" and answers.database.managed:
        required.append(("database_password", "the managed database's password"))
    if answers.target in {"kubernetes", "enterprise"} and answers.ldap.enabled:
        required.append(("ldap_bind_password", "the password of ldap.bind_dn"))
    if answers.registry.mirror and answers.registry.username:
        required.append(("registry_password", "the password of registry.username"))
    required += required_alerting_secrets(answers.alerting)
    if answers.identity.enabled:
        required.append(("oidc_client_secret", "the client secret of identity.client_id"))
    if answers.telemetry.sentry:
        required.append(("sentry_dsn", "the Sentry DSN the services report to"))
    return required


# The older private name, which the wizard's form imports.
_required_supplied = required_secrets


def _read_pem(path: str, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not a text file"
        raise RenderError(f"cannot read {what} {path}: {reason}") from e
    if "-----BEGIN " not in text:
        raise RenderError(f"{what} {path} is not a PEM file")
    return text if text.endswith("\n") else text + "\n"


def build_context(
    answers: AnswerFile,
    secrets: Secrets | LoadedSecrets,
    release: ReleaseManifest,
    store: SecretStore,
    capacity: Capacity | None = None,
    *,
    source_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> RenderContext:
    """Decide everything the templates write, from validated inputs only.

    ``environ`` (``os.environ`` by default) gives the proxy every service is started with:
    ``HTTP_PROXY``/``HTTPS_PROXY`` (either case), as set, kept with the secrets (a proxy
    URL may hold a password), and ``NO_PROXY`` with the installation's own hosts added.
    """
    environ = os.environ if environ is None else environ
    names = _service_names(answers, release)
    supplied = secrets.secrets if isinstance(secrets, LoadedSecrets) else secrets
    missing = [
        f"{key} ({what})" for key, what in required_secrets(answers) if supplied.get(key) is None
    ]
    if missing:
        raise RenderError(
            "missing secret: " + ", ".join(missing),
            hint="put it in the secrets file (--secrets) or a CODEQUAL_<KEY> environment variable",
        )
    resolved = store.resolve(secrets, _needed_generated(answers))
    if source_dir is not None and answers.target != "development":
        raise RenderError("source mounts for hot reload are for the development target only")

    allocation = allocate(
        answers.resources.profile,
        capacity_for(answers.resources.profile, capacity),
        [n for n in names],
    )
    mirror = answers.registry.mirror

    def value(key: str) -> str | None:
        item = resolved.get(key)
        return None if item is None else item.value

    secret_vars: dict[str, SecretVariable] = {}

    def secret(name: str, keys: tuple[str, ...], text: str | None) -> str | None:
        if text is None:
            return None
        secret_vars[name] = SecretVariable(name, text, keys)
        return name

    compose = answers.is_compose
    namespace = answers.kubernetes.namespace
    tls_enabled = answers.tls.mode != "none"
    development = answers.target == "development"
    if tls_enabled:
        public_url = f"https://{answers.domain}"
    elif "nginx" in names:
        public_url = f"http://{answers.domain}"
    else:
        public_url = "http://localhost:3000"

    def host(service: str) -> str:
        return service if compose else f"{service}.{namespace}.svc.cluster.local"

    if answers.deepwiki.mode == "external":
        assert answers.deepwiki.url is not None  # noqa: S101 - the model guarantees it
        deepwiki_url = answers.deepwiki.url
    else:
        deepwiki_url = f"http://{host('deepwiki')}:{release.services['deepwiki'].ports[0]}"

    db = answers.database
    database_url_var: str | None = None
    plain_database_url: str | None = None
    if db.kind == "sqlite":
        plain_database_url = "file:/app/data/codequal.db"
    else:
        password = value("database_password")
        assert password is not None  # noqa: S101 - generated or required above
        db_host = db.host if db.managed and db.host else host("postgres")
        url = (
            f"postgresql://{quote(db.user, safe='')}:{quote(password, safe='')}@{db_host}:"
            f"{db.port}/{db.name}?sslmode={db.sslmode}"
        )
        database_url_var = secret("DATABASE_URL", ("database_password",), url)

    provider_vars = [
        secret(var, (f"{p}_api_key",), value(f"{p}_api_key") or "")
        for p, var in _PROVIDER_VARIABLES.items()
        if p in answers.providers
    ]
    git_vars = []
    if answers.git.github:
        git_vars.append(secret("GITHUB_TOKEN", ("github_token",), value("github_token") or ""))
    if answers.git.gitlab:
        git_vars.append(secret("GITLAB_TOKEN", ("gitlab_token",), value("gitlab_token") or ""))
    supabase_vars: list[str | None] = []
    if answers.supabase.url:
        supabase_vars = [
            secret(
                "SUPABASE_SERVICE_ROLE_KEY",
                ("supabase_service_role_key",),
                value("supabase_service_role_key") or "",
            ),
            secret(
                "PUBLIC_SUPABASE_ANON_KEY",
                ("supabase_anon_key",),
                value("supabase_anon_key") or "",
            ),
        ]

    ldap = answers.ldap
    ldap_on = not compose and ldap.enabled
    ca_parts = []
    if not compose:
        if ldap_on and ldap.ca_file:
            ca_parts.append(_read_pem(ldap.ca_file, "the LDAP CA bundle"))
        if answers.registry.ca_file:
            ca_parts.append(_read_pem(answers.registry.ca_file, "the registry CA bundle"))
    ca_bundle = "".join(ca_parts) or None

    common_env = {"LOG_LEVEL": "debug" if development else "info"}
    if answers.supabase.url:
        common_env["SUPABASE_URL"] = answers.supabase.url

    # The proxy: every service, as the installer has it; never for traffic between them.
    proxy_vars: list[str | None] = []
    for variable in PROXY_VARIABLES:
        proxy_url = environ.get(variable)
        if proxy_url:
            secret_vars[variable] = SecretVariable(
                variable, proxy_url, (), proxy_credentials(proxy_url)
            )
            proxy_vars.append(variable)
    proxy_env: dict[str, str] = {}
    if proxy_vars:
        own = [*names, *(host(n) for n in names if host(n) != n)]
        exempt = no_proxy_list(environ, own)
        proxy_env = dict.fromkeys(NO_PROXY_VARIABLES, exempt)

    specs: dict[str, ServiceSpec] = {}
    for name in names:
        manifest = release.services[name]  # type: ignore[index]
        env: dict[str, str] = {}
        secret_env: list[str | None] = []
        resources = allocation.services[name]
        if name == "codequal":
            env = {
                "NODE_ENV": "development" if development else "production",
                "PORT": str(manifest.ports[0]),
                "PUBLIC_URL": public_url,
                "DEEPWIKI_URL": deepwiki_url,
                "WEB_CONCURRENCY": str(resources.workers),
                "ENABLED_PROVIDERS": ",".join(answers.providers),
                "GITHUB_ENABLED": str(answers.git.github).lower(),
                "GITLAB_ENABLED": str(answers.git.gitlab).lower(),
                **common_env,
            }
            if plain_database_url:
                env["DATABASE_URL"] = plain_database_url
            secret_env = [database_url_var, *provider_vars, *git_vars, *supabase_vars]
            if ldap_on:
                env["LDAP_ENABLED"] = "true"
                env["LDAP_URL"] = ldap.url or ""
                env["LDAP_BIND_DN"] = ldap.bind_dn or ""
                env["LDAP_USER_BASE_DN"] = ldap.user_base_dn or ""
                if ldap.group_base_dn:
                    env["LDAP_GROUP_BASE_DN"] = ldap.group_base_dn
                secret_env.append(
                    secret(
                        "LDAP_BIND_PASSWORD",
                        ("ldap_bind_password",),
                        value("ldap_bind_password"),
                    )
                )
            if ca_bundle:
                env["NODE_EXTRA_CA_CERTS"] = "/etc/codequal/ca/ca.crt"
                if ldap_on:
                    env["LDAP_CA_FILE"] = "/etc/codequal/ca/ca.crt"
        elif name == "deepwiki":
            env = {
                "PORT": str(manifest.ports[0]),
                "WORKERS": str(resources.workers),
                **common_env,
            }
            secret_env = [*provider_vars, *git_vars, *supabase_vars[:1]]
            if ca_bundle:
                env["REQUESTS_CA_BUNDLE"] = "/etc/codequal/ca/ca.crt"
        elif name == "postgres":
            env = {"POSTGRES_DB": db.name, "POSTGRES_USER": db.user, "PGDATA": _pgdata(manifest)}
            secret_env = [
                secret("POSTGRES_PASSWORD", ("database_password",), value("database_password"))
            ]
        elif name == "grafana":
            env = {
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_USERS_ALLOW_SIGN_UP": "false",
                "GF_AUTH_ANONYMOUS_ENABLED": "false",
                "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning",
            }
            secret_env = [
                secret(
                    "GF_SECURITY_ADMIN_PASSWORD",
                    ("grafana_admin_password",),
                    value("grafana_admin_password"),
                )
            ]
        # Sign-in, error tracking, tracing, audit: only what the answers set.
        if name == "codequal":
            env.update(answers.identity.environment(redirect_url(answers.domain, answers.tls.mode)))
        env.update(
            answers.telemetry.environment(
                name,
                install=answers.compose_project if compose else namespace,
                target=answers.target,
                version=release.version,
            )
        )
        env.update(answers.audit.environment(name))
        if name == "codequal" and answers.identity.enabled:
            secret_env.append(
                secret("OIDC_CLIENT_SECRET", ("oidc_client_secret",), value("oidc_client_secret"))
            )
        if name in TRACED_SERVICES and answers.telemetry.sentry:
            secret_env.append(secret("SENTRY_DSN", ("sentry_dsn",), value("sentry_dsn")))
        env.update(proxy_env)
        secret_env += proxy_vars
        specs[name] = ServiceSpec(
            name=name,
            image=mirrored(release.image_for(name, answers), mirror),  # type: ignore[arg-type]
            role=manifest.role,
            ports=list(manifest.ports),
            health=manifest.health,
            volumes=dict(manifest.volumes),
            command=list(manifest.command) if manifest.command else None,
            user=manifest.user,
            resources=resources,
            env=env,
            secret_env=[v for v in secret_env if v is not None],
        )

    registry_auth = None
    if mirror and answers.registry.username:
        import base64
        import json

        password = value("registry_password") or ""
        token = base64.b64encode(f"{answers.registry.username}:{password}".encode()).decode()
        registry_auth = json.dumps(
            {"auths": {mirror.split("/")[0]: {"auth": token}}}, sort_keys=True
        )

    tls_pair: tuple[str, str] | None = None
    if answers.tls.mode == "self-signed":
        cert, key = store.self_signed_certificate(answers.domain)
        tls_pair = (cert.decode("ascii"), key.decode("ascii"))
    elif answers.tls.mode == "provided":
        assert answers.tls.cert_file and answers.tls.key_file  # noqa: S101 - model rule
        tls_pair = (
            _read_pem(answers.tls.cert_file, "the TLS certificate"),
            _read_pem(answers.tls.key_file, "the TLS key"),
        )

    routes = [r for r in release.routes if r.service in specs]
    monitoring_on = answers.monitoring.enabled
    alerting_view = None
    if "alertmanager" in specs:
        alerting_view = AlertingView(
            section=answers.alerting,
            smtp_password=value("smtp_password"),
            slack_webhook_url=value("slack_webhook_url"),
            pagerduty_routing_key=value("pagerduty_routing_key"),
            probe_url=_probe_url(public_url, routes, specs),
            probe_ca_file=(
                PROBE_CA_FILE
                if tls_pair is not None and (compose or not answers.kubernetes.openshift)
                else None
            ),
            alertmanager_url=f"{host('alertmanager')}:{ALERTMANAGER_PORT}",
            blackbox_address=f"{host('blackbox')}:{BLACKBOX_PORT}",
        )
    return RenderContext(
        answers=answers,
        release=release,
        target=answers.target,
        compose=compose,
        services=specs,
        routes=routes,
        secret_variables=secret_vars,
        resolved=resolved,
        public_url=public_url,
        deepwiki_url=deepwiki_url,
        monitoring={
            "enabled": monitoring_on,
            "prometheus": "prometheus" in specs,
            "grafana": "grafana" in specs,
            "loki": "loki" in specs,
        },
        tls_enabled=tls_enabled,
        source_dir=source_dir,
        ca_bundle=ca_bundle,
        registry_auth=registry_auth,
        tls_pair=tls_pair,
        hosts={name: host(name) for name in specs},
        namespace=namespace,
        version=release.version,
        version_label=_label_safe(release.version),
        # After install_dir, so two installs on one engine never share containers or
        # volumes; "codequal" for the default install_dir.
        project=answers.compose_project,
        alerting=alerting_view,
        timing=alert_timing(environ),
    )


def _probe_url(public_url: str, routes: list[Route], specs: dict[str, ServiceSpec]) -> str:
    """What the blackbox prober requests: the public URL's health path, through nginx or the
    Ingress; on Compose without nginx (development over plain HTTP) the API itself."""
    root = next((r for r in routes if r.path == "/"), None)
    health = root.health_path if root is not None else "/health"
    if public_url.startswith("http://localhost:"):
        return f"http://codequal:{specs['codequal'].port}{health}"
    return f"{public_url}{health}"


def _label_safe(text: str) -> str:
    # A label value allows [A-Za-z0-9_.-] only: "1.2.0+build.5" becomes "1.2.0_build.5".
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63]
    return cleaned.strip("_.-") or "unknown"


def _pgdata(manifest: object) -> str:
    volumes: dict[str, str] = getattr(manifest, "volumes", {}) or {}
    mount = next(iter(volumes.values()), "/var/lib/postgresql/data")
    # A subdirectory: PostgreSQL refuses a data directory that is a mount point with
    # lost+found in it, which is what many Kubernetes volumes look like.
    return f"{mount.rstrip('/')}/pgdata"
