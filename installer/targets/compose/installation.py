"""A Compose installation and the base class of its steps.

:class:`ComposeInstallation` is what the steps of one plan share (answers, release, state
directory, Docker Engine, Compose project, rendering, health waits, the result document);
:class:`~installer.targets.compose.ComposeTarget` adds the plan. The steps hold the
installation, never the target, so the step modules and the target import downward only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer import __version__
from installer.credentials import Redactor
from installer.engine.compose import ComposeProject
from installer.engine.docker import ContainerInfo, DockerEngine
from installer.errors import StepFailed
from installer.runner import (
    Journal,
    Progress,
    RunSummary,
    Step,
    StepContext,
    StepUpdate,
)
from installer.statedir import StateDir, read_json
from installer.targets.compose.base import (
    MIGRATE_SERVICE,
    RENDERED_INDEX,
    ImageLoader,
    load_yaml,
    safe_relative,
)
from installer.targets.compose.polling import POLL_SECONDS, duration_seconds

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets
    from installer.release import ReleaseManifest
    from installer.render import RenderedPlan
    from installer.resources import Capacity


class ComposeInstallation:
    """A Compose installation in ``answers.install_dir``: its answers, release, state, engine
    and project, and what its steps ask of them (:class:`ComposeTarget` adds the plan)."""

    def __init__(
        self,
        answers: AnswerFile,
        secrets: LoadedSecrets,
        *,
        release: ReleaseManifest | None = None,
        bundle: Path | None = None,
        bundle_key: Path | None = None,
        image_loader: ImageLoader | None = None,
        engine: DockerEngine | None = None,
    ) -> None:
        from installer.release import release_for

        self.answers = answers
        self.secrets = secrets
        self.release = release if release is not None else release_for(answers)
        self.install_dir = Path(answers.install_dir)
        self.state = StateDir.for_install_dir(self.install_dir)
        self.engine = engine if engine is not None else DockerEngine()
        if bundle is None and answers.airgap.enabled and answers.airgap.bundle:
            bundle = Path(answers.airgap.bundle)
        self.bundle = bundle
        self.bundle_key = bundle_key  # apply --key: the bundle's signature must verify
        self.image_loader = image_loader
        self.redactor = Redactor(secrets.secrets.supplied().values())
        self.capacity: Capacity | None = None
        self._rendered: RenderedPlan | None = None
        self._compose_doc: dict[str, Any] | None = None
        self.verified: dict[str, dict[str, Any]] = {}
        # Set by the services step when it started the monitoring services with its own.
        self.monitoring_started = False
        self._schema_version: str | None = None
        self._config_hashes: dict[str, str] | None = None

    # -- rendering ----------------------------------------------------------------------

    def _capacity(self) -> Capacity | None:
        if self.answers.resources.profile != "auto":
            return None
        if self.capacity is None:
            from installer.render.cli import machine_capacity

            self.capacity = machine_capacity()
        return self.capacity

    def render(self) -> RenderedPlan:
        """Every file of the installation (generated secrets are made once, in state/)."""
        if self._rendered is None:
            from installer.render import render_plan

            self._rendered = render_plan(
                self.answers, self.secrets, self.release, self.install_dir, self._capacity()
            )
            self.redactor.include(self._rendered.redactor)
            self._compose_doc = None
        return self._rendered

    def compose_document(self) -> dict[str, Any]:
        if self._compose_doc is None:
            self._compose_doc = load_yaml(self.render().file("docker-compose.yml").content)
        return self._compose_doc

    @property
    def project(self) -> ComposeProject:
        name = self.compose_document().get("name") or self.answers.compose_project
        return ComposeProject(self.install_dir, str(name))

    def services(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = self.compose_document().get("services") or {}
        return services

    def _role(self, service: str) -> str:
        manifest = self.release.services.get(service)  # type: ignore[call-overload]
        return str(manifest.role) if manifest is not None else "app"

    def database_services(self) -> list[str]:
        return [s for s in self.services() if self._role(s) == "database"]

    def monitoring_services(self) -> list[str]:
        return [
            s for s in self.services() if s != MIGRATE_SERVICE and self._role(s) == "monitoring"
        ]

    def app_services(self) -> list[str]:
        return [
            s
            for s in self.services()
            if s != MIGRATE_SERVICE and self._role(s) not in ("database", "monitoring")
        ]

    def images(self) -> dict[str, str]:
        """Image reference per service of the rendered project (one-off services too)."""
        return {name: str(spec.get("image")) for name, spec in self.services().items()}

    # -- the plan -----------------------------------------------------------------------

    def identity(self) -> str:
        """A digest of everything this plan installs: answers, release, secret values."""
        digest = hashlib.sha256()
        digest.update(__version__.encode())
        digest.update(self.answers.model_dump_json().encode())
        digest.update(self.release.model_dump_json().encode())
        for key, value in sorted(self.secrets.secrets.supplied().items()):
            digest.update(f"\0{key}\0{value}".encode())
        digest.update(str(self.bundle or "").encode())
        return digest.hexdigest()

    # -- containers ---------------------------------------------------------------------

    def containers(self) -> list[ContainerInfo]:
        return self.engine.project_containers(self.project.name)

    def outdated(self, services: Sequence[str], cancel: Any = None) -> dict[str, str]:
        """Services whose container is missing, stopped, or not what the files describe."""
        if not services:
            return {}
        if self._config_hashes is None:
            # Asked once per run: the files do not change after the configuration step.
            self._config_hashes = self.project.config_hashes(cancel=cancel)
        hashes = self._config_hashes
        by_service: dict[str, list[ContainerInfo]] = {}
        for info in self.containers():
            by_service.setdefault(info.service, []).append(info)
        image_ids: dict[str, str | None] = {}
        reasons: dict[str, str] = {}
        for service in services:
            found = by_service.get(service, [])
            reference = self.images().get(service, "")
            if reference not in image_ids:
                image_ids[reference] = self.engine.image_id(reference)
            if not found:
                reasons[service] = "not created yet"
            elif any(c.config_hash != hashes.get(service) for c in found):
                reasons[service] = "configuration changed"
            elif any(c.image_id != image_ids[reference] for c in found):
                reasons[service] = f"new image {reference}"
            elif any(c.state != "running" for c in found):
                reasons[service] = f"{found[0].state}, not running"
        return reasons

    def wait_healthy(self, ctx: StepContext, services: Sequence[str]) -> Iterator[StepUpdate]:
        """Wait until every container of ``services`` is running and healthy.

        Fails at once when one turns unhealthy or exits, naming it with its last health
        check output and log lines; fails after the longest health budget otherwise.
        """
        budget = 60.0
        for service in services:
            health = self.services().get(service, {}).get("healthcheck") or {}
            seconds = duration_seconds(health.get("start_period"), 0) + (
                duration_seconds(health.get("interval"), 30)
                + duration_seconds(health.get("timeout"), 30)
            ) * int(health.get("retries", 3))
            budget = max(budget, seconds + 30)
        deadline = time.monotonic() + budget
        total = len(services)
        last_ready = -1
        while True:
            infos = {s: [c for c in self.containers() if c.service == s] for s in services}
            ready = [s for s, found in infos.items() if found and all(c.ready for c in found)]
            for service, found in infos.items():
                for info in found:
                    if info.state in ("exited", "dead") or (
                        info.health == "unhealthy" and self._probes_failed(info)
                    ):
                        raise self._service_failure(ctx, service, info)
            if len(ready) != last_ready:
                last_ready = len(ready)
                waiting = [s for s in services if s not in ready]
                message = f"waiting for {', '.join(waiting)}" if waiting else "all services healthy"
                yield Progress(len(ready), total, "services", message)
            if len(ready) == total:
                return
            if time.monotonic() > deadline:
                service = next(s for s in services if s not in ready)
                found = infos.get(service) or []
                if found:
                    raise self._service_failure(ctx, service, found[0], timed_out=budget)
                raise StepFailed(
                    f"service {service} has no container after {budget:.0f}s",
                    step=ctx.step.name,
                    hint=f"run `docker compose ps -a` in {self.install_dir}",
                )
            ctx.sleep(POLL_SECONDS)

    def _probes_failed(self, info: ContainerInfo) -> bool:
        """Whether an "unhealthy" container's probes failed (else: wait for the next probe).

        A container paused and unpaused (the pre-upgrade backup's snapshot) is reported
        unhealthy until its next probe, though none failed: an upgrade that keeps it (same
        image and configuration) must wait for that probe, not fail on it.
        """
        detailed = self.engine.inspect(info.id)
        return detailed is None or detailed.failed_health

    def _service_failure(
        self, ctx: StepContext, service: str, info: ContainerInfo, timed_out: float | None = None
    ) -> StepFailed:
        if timed_out is not None:
            what = f"did not become healthy within {timed_out:.0f}s ({info.health or info.state})"
        elif info.health == "unhealthy":
            what = "is unhealthy: its health check keeps failing"
        else:
            what = f"stopped ({info.state}, exit code {info.exit_code})"
        detailed = self.engine.inspect(info.id) or info
        tail = [f"health check: {line}" for line in detailed.health_output[-3:]]
        logs = self.engine.logs(info.id, tail=20)
        if logs:
            tail += [f"--- last log lines of {info.name} ---", *logs]
        return StepFailed(
            f"service {service} {what}",
            step=ctx.step.name,
            log_tail=tail,
            hint=(f"see its full log with `docker compose logs {service}` in {self.install_dir}"),
        )

    # -- what is installed -------------------------------------------------------------

    def installed_record(self) -> dict[str, Any] | None:
        record = read_json(self.state.result)
        return record if isinstance(record, dict) and record.get("status") == "installed" else None

    def rendered_index(self) -> list[str]:
        """The files the last configuration step wrote (relative paths, state/ keeps the list)."""
        data = read_json(self.state.path / RENDERED_INDEX)
        files = data.get("files") if isinstance(data, dict) else None
        return [f for f in files or [] if isinstance(f, str) and safe_relative(f)]

    # -- URLs and the result ------------------------------------------------------------

    def urls(self) -> dict[str, str]:
        answers = self.answers
        nginx = answers.tls.mode != "none"
        urls: dict[str, str] = {}
        if nginx:
            base = f"https://{answers.domain}"
            urls["codequal"] = f"{base}/"
            if answers.deepwiki.mode == "bundled":
                urls["deepwiki"] = f"{base}/deepwiki/"
        else:
            urls["codequal"] = "http://localhost:3000/"
            if answers.deepwiki.mode == "bundled":
                urls["deepwiki"] = "http://localhost:8002/"
        if answers.deepwiki.mode == "external" and answers.deepwiki.url:
            urls["deepwiki"] = answers.deepwiki.url
        if answers.monitoring.enabled:
            if "grafana" in answers.monitoring.components:
                urls["grafana"] = "http://127.0.0.1:3001/"
            if "prometheus" in answers.monitoring.components:
                urls["prometheus"] = "http://127.0.0.1:9090/"
        from installer.alerting import summary_urls

        urls.update(summary_urls(answers.alerting))
        return urls

    def result_document(self, summary: RunSummary) -> dict[str, Any]:
        """``state/result.json``: what is installed, where, and where its credentials are."""
        database = self.answers.database
        previous = self.installed_record() or {}
        # Migrated by this run, or by the killed run this one resumed (its journal data).
        journal = Journal.load(self.state.journal)
        database_record = journal.steps.get("database") if journal is not None else None
        migrated = database_record.data if database_record is not None else {}
        schema = (
            self._schema_version or migrated.get("schema_version") or previous.get("schema_version")
        )
        containers = {c.service: c for c in self.containers()}
        credentials: dict[str, str] = {
            "service_secrets": f"{self.install_dir / '.env'} (mode 0600)",
            "generated_secrets": f"{self.state.path / 'generated-secrets.json'} (mode 0600)",
        }
        if self.answers.tls.mode == "self-signed":
            credentials["tls_certificate"] = str(self.install_dir / "nginx/ssl/codequal.crt")
            credentials["tls_private_key"] = f"{self.install_dir / 'nginx/ssl/codequal.key'} (0600)"
        if "grafana" in self.services():
            credentials["grafana_admin"] = (
                "user admin; password: grafana_admin_password in generated_secrets "
                "(or your secrets file)"
            )
        return {
            "format": 1,
            "status": "installed",
            "installer_version": __version__,
            "target": self.answers.target,
            "install_dir": str(self.install_dir),
            "compose_project": self.project.name,
            "release": {"version": self.release.version, "name": self.release.name},
            "schema_version": schema,
            "database": {
                "kind": database.kind,
                "managed": database.managed,
                "host": database.host if database.managed else None,
                "name": database.name if database.kind == "postgres" else None,
            },
            "images": self.images(),
            "services": {
                name: {
                    "image": self.images().get(name),
                    "state": info.state,
                    "health": info.health,
                }
                for name, info in sorted(containers.items())
                if not info.oneoff and name != MIGRATE_SERVICE
            },
            "urls": self.urls(),
            "verified": self.verified,
            "credentials": credentials,
            "run": summary.to_dict(),
        }


class ComposeStep(Step):
    """A step of a Compose install; ``target`` is the installation the steps of one plan share."""

    def __init__(self, target: ComposeInstallation) -> None:
        self.target = target
