"""Rendering every file of an installation: :func:`render_plan` (see :mod:`installer.render`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from installer.answers import AnswerFile
from installer.credentials import LoadedSecrets, Redactor, Secrets
from installer.release import ReleaseManifest
from installer.render.plan import (
    PUBLIC_MODE,
    SECRET_MODE,
    STATE_DIR,
    KubernetesObject,
    RenderedFile,
    RenderedPlan,
    SecretUse,
)
from installer.resources import Capacity

_MONITORING_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    # (component that needs it, template, output path)
    (
        "prometheus",
        "monitoring/prometheus/prometheus.yml.j2",
        "monitoring/prometheus/prometheus.yml",
    ),
    (
        "prometheus",
        "monitoring/prometheus/alerts.yml.j2",
        "monitoring/prometheus/rules/codequal.yml",
    ),
    (
        "grafana",
        "monitoring/grafana/datasources.yml.j2",
        "monitoring/grafana/provisioning/datasources/datasources.yml",
    ),
    (
        "grafana",
        "monitoring/grafana/dashboards.yml.j2",
        "monitoring/grafana/provisioning/dashboards/dashboards.yml",
    ),
    (
        "grafana",
        "monitoring/grafana/codequal-dashboard.json.j2",
        "monitoring/grafana/dashboards/codequal.json",
    ),
    ("loki", "monitoring/loki/loki.yml.j2", "monitoring/loki/loki.yml"),
    ("promtail", "monitoring/promtail/promtail.yml.j2", "monitoring/promtail/promtail.yml"),
    (
        "alertmanager",
        "monitoring/alertmanager/alertmanager.yml.j2",
        "monitoring/alertmanager/alertmanager.yml",
    ),
    ("blackbox", "monitoring/blackbox/blackbox.yml.j2", "monitoring/blackbox/blackbox.yml"),
)
# Monitoring files that hold secrets (the receivers' passwords, webhook URL, routing key).
SECRET_MONITORING_FILES = frozenset({"monitoring/alertmanager/alertmanager.yml"})

# What a secret the plan could use shows when nobody supplied it and it is not generated.
NOT_SET = "<not set>"


def render_plan(
    answers: AnswerFile,
    secrets: Secrets | LoadedSecrets,
    release: ReleaseManifest,
    root: Path,
    capacity: Capacity | None = None,
    *,
    source_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> RenderedPlan:
    """Every file of the installation that ``answers`` describe, rendered into memory.

    ``root`` is where the files will live; only its ``state/`` directory is touched here
    (generated secrets and the self-signed certificate, made once). ``capacity`` is the
    measured machine for ``resources.profile: auto``. ``source_dir`` (development only)
    mounts a CodeQual checkout into the API container and runs it with hot reload.
    ``environ`` (``os.environ`` by default) gives the proxy the services are started with.
    """
    from installer.render.context import build_context
    from installer.render.engine import render
    from installer.secretstore import SecretStore

    store = SecretStore(root / STATE_DIR)
    ctx = build_context(
        answers, secrets, release, store, capacity, source_dir=source_dir, environ=environ
    )
    variables = vars(ctx).copy()
    if ctx.alerting is not None:
        from installer.alerting import alertmanager_config, blackbox_config

        variables["alertmanager_config"] = alertmanager_config(ctx.alerting, ctx.timing)
        variables["blackbox_config"] = blackbox_config(ctx.alerting)
    files: list[RenderedFile] = []

    def text_file(path: str, text: str, *, secret: bool = False) -> None:
        files.append(
            RenderedFile(path, text.encode("utf-8"), SECRET_MODE if secret else PUBLIC_MODE, secret)
        )

    monitoring: dict[str, str] = {}
    for component, template, path in _MONITORING_TEMPLATES:
        if component in ctx.services:
            monitoring[path] = render(template, **variables)

    objects: list[KubernetesObject] = []
    if ctx.compose:
        text_file("docker-compose.yml", render("compose/docker-compose.yml.j2", **variables))
        text_file(".env", render("compose/env.j2", **variables), secret=True)
        if "nginx" in ctx.services:
            text_file("nginx/conf.d/codequal.conf", render("nginx/codequal.conf.j2", **variables))
            if ctx.tls_pair is not None:
                text_file("nginx/ssl/codequal.crt", ctx.tls_pair[0])
                text_file("nginx/ssl/codequal.key", ctx.tls_pair[1], secret=True)
        for path, text in monitoring.items():
            text_file(path, text, secret=path in SECRET_MONITORING_FILES)
    else:
        from installer.render.kubernetes import object_path, plan_objects

        for index, item in enumerate(plan_objects(ctx, monitoring), start=1):
            path = object_path(index, item.kind, item.name)
            namespace = None if item.kind == "Namespace" else ctx.namespace
            text_file(
                path, render(item.template, **variables, obj=item.obj), secret=item.holds_secrets
            )
            objects.append(
                KubernetesObject(item.api_version, item.kind, item.name, namespace, path)
            )

    used = _secret_keys_used(ctx)
    uses = [
        SecretUse(key, ctx.resolved[key].shown_as if key in ctx.resolved else NOT_SET)
        for key in used
    ]
    redactor = Redactor(r.value for r in ctx.resolved.values())
    redactor.add(part for v in ctx.secret_variables.values() for part in v.hidden)
    if ctx.tls_pair is not None:
        redactor.add([ctx.tls_pair[1]])
    if ctx.registry_auth is not None:
        redactor.add([ctx.registry_auth])
    return RenderedPlan(
        target=answers.target,
        files=files,
        kubernetes_objects=objects,
        secrets=uses,
        redactor=redactor,
    )


def _secret_keys_used(ctx: object) -> list[str]:
    from installer.answers import SECRET_KEYS
    from installer.render.context import RenderContext

    assert isinstance(ctx, RenderContext)  # noqa: S101
    keys = {key for variable in ctx.secret_variables.values() for key in variable.keys}
    if ctx.registry_auth is not None:
        keys.add("registry_password")
    if ctx.alerting is not None:
        from installer.alerting import required_alerting_secrets

        keys.update(key for key, _ in required_alerting_secrets(ctx.alerting.section))
    return [k for k in SECRET_KEYS if k in keys]
