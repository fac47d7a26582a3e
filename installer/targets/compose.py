"""The development and production targets: the seven install steps on one Docker Engine.

:class:`ComposeTarget` builds the runner's plan for a Compose install in ``install_dir``:

==============  ================================================================================
prerequisites   the checks of :mod:`installer.checks` (read-only; fails with exit 3)
configuration   render every file and write the ones that differ (atomic); the files of the
                last healthy install are first copied to ``state/previous/``
containers      every image present: already here, loaded from the offline bundle, or pulled
                (per-image progress); then the database container, started and healthy
database        SQLite, or PostgreSQL: wait until ready, create the role and database with the
                generated password (or set it), back up before a schema change, run the
                release's migration command (the ``migrate`` service); a managed server is
                reached over the network the same way
services        ``docker compose up`` of the application services and nginx: Compose recreates
                only those whose configuration or image changed
verification    every container healthy, then an HTTP(S) request to each public route through
                nginx, TLS verified against the installation's own certificate (read-only)
monitoring      Prometheus, Grafana, Loki when turned on, up and healthy
==============  ================================================================================

Each step's ``check`` compares the wanted state with the real one, so a second ``apply`` of
the same answers changes nothing and says so, and changed answers change only what they
touch. On failure the runner rolls back in reverse order: the database step restores its
pre-migration dump, and the configuration step restores the previous files and brings the
previous containers back (``docker compose up --wait``), or, for a first install, removes
the containers again (volumes, the data, are always kept).

The Compose project is the one named in the rendered ``docker-compose.yml`` (``name:``),
so the operator's plain ``docker compose`` in ``install_dir`` manages exactly what the
installer made.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer import __version__
from installer.credentials import Redactor
from installer.engine.compose import ComposeProject
from installer.engine.docker import ContainerInfo, DockerEngine
from installer.engine.process import CommandFailed, command_to_file
from installer.errors import BundleIntegrityError, InstallerError, PrerequisiteError, StepFailed
from installer.runner import InstallPlan, Progress, RunSummary, Step, StepContext, StepUpdate
from installer.statedir import StateDir, StateWriteError, atomic_write, atomic_write_json, read_json
from installer.targets import PlannedFile, PlannedStep, PlanPreview

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets
    from installer.release import ReleaseManifest, Route
    from installer.render import RenderedPlan
    from installer.resources import Capacity

ImageLoader = Callable[[Path, Sequence[str]], Iterator[StepUpdate]]
"""Loads images from an offline bundle into Docker: ``(bundle, references) -> updates``."""

MIGRATE_SERVICE = "migrate"
RENDERED_INDEX = "rendered-files.json"
_DISK_MARGIN_BYTES = 1024 * 1024
_POLL_SECONDS = 0.5


def _fail(step: str, error: InstallerError, what: str | None = None) -> StepFailed:
    """An engine error as the step's failure, keeping command, exit code and output tail."""
    if isinstance(error, StepFailed):
        return error
    if isinstance(error, CommandFailed):
        return StepFailed(
            f"{what}: {error.message}" if what else error.message,
            step=step,
            hint=error.hint,
            command=error.command,
            returncode=error.returncode,
            log_tail=error.tail,
        )
    return StepFailed(
        f"{what}: {error.message}" if what else error.message, step=step, hint=error.hint
    )


class ComposeTarget:
    """A Compose installation in ``answers.install_dir``; see the module documentation."""

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

    def preview(self) -> PlanPreview:
        """What ``apply`` would do, touching nothing: rendered in a scratch directory that
        borrows the installation's generated secrets, compared with ``install_dir``."""
        import tempfile

        from installer.render import compare_plan, render_plan

        with tempfile.TemporaryDirectory(prefix="codequal-preview-") as scratch:
            root = Path(scratch)
            for name in ("generated-secrets.json", "tls"):
                source = self.state.path / name
                if source.is_file():
                    (root / "state").mkdir(exist_ok=True)
                    shutil.copy2(source, root / "state" / name)
                elif source.is_dir():
                    shutil.copytree(source, root / "state" / name)
            rendered = render_plan(self.answers, self.secrets, self.release, root, self._capacity())
        self.redactor.include(rendered.redactor)
        changes = {c.path: c for c in compare_plan(rendered, self.install_dir)}
        files = [
            PlannedFile(f.path, len(f.content), f.mode, changes[f.path].kind, f.holds_secrets)
            for f in rendered.files
        ]
        files += [
            PlannedFile(c.path, 0, 0, "removed", True)
            for c in changes.values()
            if c.kind == "removed"
        ]
        # The step descriptions read the Compose file: give them the scratch rendering, so
        # that nothing renders into install_dir (which would store generated secrets).
        self._compose_doc = _load_yaml(rendered.file("docker-compose.yml").content)
        steps = [PlannedStep(s.name, s.title, s.description) for s in self._steps()]
        return PlanPreview(
            target=self.answers.target,
            release=self.release.version,
            location=str(self.install_dir),
            files=files,
            steps=steps,
            facts={
                "compose_project": self.project.name,
                "images": self.images(),
                "urls": self.urls(),
            },
        )

    def compose_document(self) -> dict[str, Any]:
        if self._compose_doc is None:
            self._compose_doc = _load_yaml(self.render().file("docker-compose.yml").content)
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

    def _steps(self) -> list[Step]:
        return [
            PrerequisitesStep(self),
            ConfigurationStep(self),
            ContainersStep(self),
            DatabaseStep(self),
            ServicesStep(self),
            VerificationStep(self),
            MonitoringStep(self),
        ]

    def plan(self) -> InstallPlan:
        return InstallPlan(
            steps=self._steps(),
            state=self.state,
            identity=self.identity(),
            description=(
                f"install CodeQual {self.release.version} ({self.answers.target}) "
                f"in {self.install_dir}"
            ),
            redactor=self.redactor,
            result=self.result_document,
            summary={"target": self.answers.target, "release": self.release.version},
        )

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
            seconds = _seconds(health.get("start_period"), 0) + (
                _seconds(health.get("interval"), 30) + _seconds(health.get("timeout"), 30)
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
                    if info.health == "unhealthy" or info.state in ("exited", "dead"):
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
            ctx.sleep(_POLL_SECONDS)

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

    # -- previous install: snapshot and restore -----------------------------------------

    def installed_record(self) -> dict[str, Any] | None:
        record = read_json(self.state.result)
        return record if isinstance(record, dict) and record.get("status") == "installed" else None

    def _index(self) -> list[str]:
        data = read_json(self.state.path / RENDERED_INDEX)
        files = data.get("files") if isinstance(data, dict) else None
        return [f for f in files or [] if isinstance(f, str) and _safe_relative(f)]

    def snapshot_previous(self) -> dict[str, Any]:
        """Copy the files of the last healthy install to ``state/previous/`` (for rollback)."""
        record = self.installed_record()
        paths = self._index()
        if record is None or not paths:
            return {"fresh": True}
        staging = self.state.path / f"previous.new-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        files: dict[str, int] = {}
        try:
            for relative in paths:
                source = self.install_dir / relative
                if not source.is_file():
                    continue
                mode = source.stat().st_mode & 0o777
                atomic_write(staging / "files" / relative, source.read_bytes(), mode)
                files[relative] = mode
            atomic_write_json(
                staging / "snapshot.json",
                {
                    "release": (record.get("release") or {}).get("version"),
                    "schema_version": record.get("schema_version"),
                    "compose_project": record.get("compose_project"),
                    "files": files,
                },
                0o600,
            )
            old = self.state.path / f"previous.old-{os.getpid()}"
            if self.state.previous.exists():
                self.state.previous.rename(old)
            staging.rename(self.state.previous)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise StateWriteError(self.state.previous, e) from e
        return {
            "fresh": False,
            "release": (record.get("release") or {}).get("version"),
            "files": sorted(files),
        }

    def restore_previous(self, ctx: StepContext, snapshot: dict[str, Any]) -> Iterator[StepUpdate]:
        """Put back the previous install's files and containers (or remove a first install's)."""
        if snapshot.get("fresh", True):
            yield from self._remove_first_install(ctx)
            return
        meta = read_json(self.state.previous / "snapshot.json")
        if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
            raise StepFailed(
                f"the previous installation's files are missing from {self.state.previous}",
                step=ctx.step.name,
                hint="restore them from a backup and run `docker compose up -d` there",
            )
        saved: dict[str, int] = meta["files"]
        for relative in self._index():
            if relative not in saved:
                (self.install_dir / relative).unlink(missing_ok=True)
        for relative, mode in saved.items():
            if not _safe_relative(relative):
                continue
            content = (self.state.previous / "files" / relative).read_bytes()
            atomic_write(self.install_dir / relative, content, int(mode))
        atomic_write_json(self.state.path / RENDERED_INDEX, {"files": sorted(saved)}, 0o600)
        yield f"restored the files of release {meta.get('release')}"
        name = str(meta.get("compose_project") or self.project.name)
        previous = ComposeProject(self.install_dir, name)
        services = self._services_in(self.install_dir / "docker-compose.yml")
        services = [s for s in services if s != MIGRATE_SERVICE]
        yield f"starting the previous containers: {', '.join(services)}"
        try:
            yield from previous.up(services, wait=True, cancel=None)
        except CommandFailed as e:
            raise _fail(ctx.step.name, e, "the previous installation did not come back") from e
        yield f"release {meta.get('release')} is running again"

    def _remove_first_install(self, ctx: StepContext) -> Iterator[StepUpdate]:
        compose_file = self.install_dir / "docker-compose.yml"
        try:
            self.engine.project_containers(self.project.name, oneoff=None)
            reachable = True
        except InstallerError:
            reachable = False  # no container can have been made where no engine answers
        if compose_file.is_file() and reachable:
            yield "removing the containers and network this install created (volumes are kept)"
            try:
                yield from self.project.down()
            except CommandFailed as e:
                raise _fail(ctx.step.name, e, "cannot remove the new containers") from e
        for relative in self._index():
            (self.install_dir / relative).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # remove the directories we made, if now empty
                parent = (self.install_dir / relative).parent
                while parent != self.install_dir and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
        (self.state.path / RENDERED_INDEX).unlink(missing_ok=True)
        yield "removed the generated files (state/ keeps the logs and generated secrets)"

    def _services_in(self, compose_file: Path) -> list[str]:
        try:
            document = _load_yaml(compose_file.read_bytes())
        except OSError:
            return []
        return list((document.get("services") or {}).keys())

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
        return urls

    def result_document(self, summary: RunSummary) -> dict[str, Any]:
        """``state/result.json``: what is installed, where, and where its credentials are."""
        database = self.answers.database
        previous = self.installed_record() or {}
        # Migrated by this run, or by the killed run this one resumed (its journal data).
        journal = read_json(self.state.journal) or {}
        migrated = ((journal.get("steps") or {}).get("database") or {}).get("data") or {}
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


# -- the steps --------------------------------------------------------------------------


class ComposeStep(Step):
    def __init__(self, target: ComposeTarget) -> None:
        self.target = target


class PrerequisitesStep(ComposeStep):
    name = "prerequisites"
    title = "Prerequisite check"
    read_only = True

    @property
    def description(self) -> str:
        skip = self.target.answers.checks.skip
        return "check this machine against the target's needs" + (
            f" (skipping {', '.join(skip)})" if skip else ""
        )

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        from installer.checks import run_prerequisites
        from installer.live.result import LiveInput

        own_ports = self._own_ports()
        target = self.target
        live = LiveInput.for_answers(
            target.answers,
            target.secrets,
            bundle=str(target.bundle) if target.bundle else None,
            release=target.release,
        )
        # run_prerequisites reads checks.skip from the answers itself (and says so).
        report = run_prerequisites(target.answers, live=live)
        if getattr(report, "capacity", None) is not None:
            self.target.capacity = report.capacity
        failures = []
        for result in report.results:
            status = result.status
            if status == "fail" and result.name == "ports" and _only_own_ports(result, own_ports):
                status = "pass"
                line = (
                    f"pass  ports: in use by this installation ({', '.join(map(str, own_ports))})"
                )
            else:
                line = f"{status:4}  {result.name}"
                if result.measured:
                    line += f": {result.measured}"
                if result.required and status in ("warn", "fail"):
                    line += f" (needs {result.required})"
                if status == "skipped" and result.reason:
                    line += f" ({result.reason})"
            yield line
            if status == "fail":
                failures.append(result)
                if result.hint:
                    yield f"      fix: {result.hint}"
        if failures:
            first = failures[0]
            details = "; ".join(
                f"{r.name}: {r.measured or 'failed'}"
                + (f" (needs {r.required})" if r.required else "")
                for r in failures
            )
            raise PrerequisiteError(
                f"prerequisites not met: {details}",
                hint=first.hint
                or "fix what each check says, or skip a check by name in checks.skip",
            )
        if self.target.bundle is not None:
            # Read-only like the checks above: the whole bundle is verified and its sizes
            # checked against free disk before the configuration step writes anything.
            from installer.bundle import check_bundle_for_install

            wanted = sorted(set(self.target.images().values()))
            yield from check_bundle_for_install(
                self.target.bundle,
                release_version=self.target.release.version,
                missing=[ref for ref in wanted if self.target.engine.image_id(ref) is None],
                key=self.target.bundle_key,
            )

    def _own_ports(self) -> list[int]:
        """Host ports this installation's own containers publish (not a conflict)."""
        try:
            name = self.target.answers.compose_project
            infos = self.target.engine.project_containers(name)
            record = self.target.installed_record()
            if record and record.get("compose_project") and record["compose_project"] != name:
                infos += self.target.engine.project_containers(str(record["compose_project"]))
        except InstallerError:
            return []
        return sorted(
            {p for info in infos if info.state == "running" for p in info.published_ports}
        )


def _only_own_ports(result: Any, own_ports: Sequence[int]) -> bool:
    """True when every port the ports check found taken is published by our containers."""
    details = getattr(result, "details", {}) or {}
    taken: list[int] = []
    for item in details.get("listeners") or details.get("in_use") or []:
        port = item.get("port") if isinstance(item, dict) else item
        if isinstance(port, int):
            taken.append(port)
    return bool(taken) and bool(own_ports) and set(taken) <= set(own_ports)


class ConfigurationStep(ComposeStep):
    name = "configuration"
    title = "Configuration generation"

    @property
    def description(self) -> str:
        return f"render the files and write those that differ into {self.target.install_dir}"

    def check(self, ctx: StepContext) -> str | None:
        from installer.render import compare_plan

        plan = self.target.render()
        changes = compare_plan(plan, self.target.install_dir)
        if all(c.kind == "unchanged" for c in changes):
            modes_ok = all(
                (self.target.install_dir / f.path).stat().st_mode & 0o777 == f.mode
                for f in plan.files
            )
            if modes_ok and sorted(self.target._index()) == sorted(plan.paths):
                return f"configuration unchanged ({len(plan.files)} files)"
        return None

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        from installer.render import compare_plan, write_plan

        plan = self.target.render()
        if "snapshot" not in ctx.data:
            snapshot = self.target.snapshot_previous()
            ctx.remember("snapshot", snapshot)
            if not snapshot.get("fresh"):
                yield f"kept the files of release {snapshot.get('release')} for rollback"
        changes = [c for c in compare_plan(plan, self.target.install_dir) if c.kind != "unchanged"]
        self._check_space(ctx, plan)
        try:
            write_plan(plan, self.target.install_dir)
        except InstallerError as e:
            raise _fail(self.name, e) from e
        self.target._config_hashes = None  # the files changed: ask Compose again
        for change in changes:
            size = f" ({change.size} bytes)" if change.kind != "removed" else ""
            yield f"{change.kind:9} {change.path}{size}"
        if not changes:
            yield "files unchanged; permissions set"
        ctx.remember("written", [c.path for c in changes])

    def _check_space(self, ctx: StepContext, plan: RenderedPlan) -> None:
        """Refuse before writing anything when the files (and a margin) do not fit."""
        needed = sum(len(f.content) for f in plan.files) + _DISK_MARGIN_BYTES
        probe = self.target.install_dir
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            stats = os.statvfs(probe)
        except OSError:
            return
        free = stats.f_bavail * stats.f_frsize
        if free < needed:
            raise StepFailed(
                f"not enough disk space in {self.target.install_dir}: the configuration needs "
                f"{_kib(needed)} (with a margin), {_kib(free)} is free",
                step=self.name,
                hint=f"free some space on the file system that holds {probe}, then run again",
            )

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield from self.target.restore_previous(ctx, ctx.data.get("snapshot") or {"fresh": True})


class ContainersStep(ComposeStep):
    name = "containers"
    title = "Container deployment"

    @property
    def description(self) -> str:
        source = f"load from {self.target.bundle}" if self.target.bundle else "pull what is missing"
        db = self.target.database_services()
        return f"make every image present ({source})" + (f"; start {', '.join(db)}" if db else "")

    def _missing(self) -> list[str]:
        wanted = sorted(set(self.target.images().values()))
        return [ref for ref in wanted if self.target.engine.image_id(ref) is None]

    def check(self, ctx: StepContext) -> str | None:
        if self._missing():
            return None
        database = self.target.database_services()
        if database and self.target.outdated(database, ctx.cancel):
            return None
        count = len(set(self.target.images().values()))
        return f"every image present ({count})" + (
            f"; {', '.join(database)} up to date" if database else ""
        )

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        wanted = sorted(set(self.target.images().values()))
        missing = self._missing()
        total = len(wanted)
        for index, reference in enumerate(wanted, start=1):
            if reference not in missing:
                yield f"present   {reference}"
                yield Progress(index, total, "images", f"{reference} present")
        if missing and self.target.bundle is not None:
            loader = self.target.image_loader or _bundle_loader(self.target.bundle_key)
            yield f"loading {len(missing)} images from {self.target.bundle}"
            try:
                yield from loader(self.target.bundle, missing)
            except BundleIntegrityError:
                raise  # exit 4, as it is: the bundle, not the install, is at fault
            except InstallerError as e:
                raise _fail(self.name, e, "cannot load the images from the bundle") from e
        elif missing:
            if self.target.answers.airgap.enabled:
                raise StepFailed(
                    f"images missing and the install is air-gapped: {', '.join(missing)}",
                    step=self.name,
                    hint="give the offline bundle with --bundle",
                )
            done = total - len(missing)
            for reference in missing:
                yield f"pulling   {reference}"
                try:
                    for progress in self.target.engine.pull(reference):
                        ctx.raise_if_cancelled()
                        yield progress
                except InstallerError as e:
                    raise _fail(self.name, e) from e
                done += 1
                yield f"pulled    {reference}"
                yield Progress(done, total, "images", f"{reference} pulled")
        still = self._missing()
        if still:
            raise StepFailed(
                f"images still missing: {', '.join(still)}",
                step=self.name,
                hint="load them (docker load) or make the registry reachable, then run again",
            )
        if missing:
            yield Progress(total, total, "images", "all images present")
        database = self.target.database_services()
        if database:
            yield f"starting {', '.join(database)}"
            try:
                yield from self.target.project.up(database, wait=True, cancel=ctx.cancel)
            except CommandFailed as e:
                raise _fail(self.name, e, f"{', '.join(database)} did not start") from e

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield "images stay (they are shared and harmless); containers follow the configuration"


def _bundle_loader(key: Path | None) -> ImageLoader:
    """The offline bundle's loader; with ``key``, the bundle it extracts must still carry a
    signature that verifies (it was checked in the prerequisites: the file may have been
    replaced since)."""
    import functools

    from installer.bundle import load_images_into_docker

    return functools.partial(load_images_into_docker, key=key)


class DatabaseStep(ComposeStep):
    name = "database"
    title = "Database initialization"

    @property
    def description(self) -> str:
        db = self.target.answers.database
        if db.kind == "sqlite":
            where = "SQLite in the codequal_data volume"
        elif db.managed:
            where = f"managed PostgreSQL at {db.host}:{db.port}"
        else:
            where = "the PostgreSQL container: role and database with the generated password"
        return f"{where}; migrate to schema version {self.target.release.migration.schema_version}"

    def check(self, ctx: StepContext) -> str | None:
        record = self.target.installed_record()
        wanted = self.target.release.migration.schema_version
        if record is None or record.get("schema_version") != wanted:
            return None
        if record.get("database") != self._database_facts():
            return None
        if self._postgres_container() is not None and not self._login_works():
            return None
        return f"database ready at schema version {wanted}"

    def _database_facts(self) -> dict[str, Any]:
        db = self.target.answers.database
        return {
            "kind": db.kind,
            "managed": db.managed,
            "host": db.host if db.managed else None,
            "name": db.name if db.kind == "postgres" else None,
        }

    def _postgres_container(self) -> ContainerInfo | None:
        if "postgres" not in self.target.database_services():
            return None
        running = [
            c for c in self.target.containers() if c.service == "postgres" and c.state == "running"
        ]
        return running[0] if running else None

    def _password(self) -> str:
        from installer.secretstore import SecretStore

        supplied = self.target.secrets.secrets.get("database_password")
        if supplied:
            return supplied
        return SecretStore(self.target.state.path).generated("database_password")

    def _login_works(self) -> bool:
        container = self._postgres_container()
        if container is None:
            return False
        db = self.target.answers.database
        code, _ = self.target.engine.exec(
            container.id,
            ["psql", "-h", "127.0.0.1", "-U", db.user, "-d", db.name, "-tAc", "SELECT 1"],
            environment={"PGPASSWORD": self._password(), "PGCONNECT_TIMEOUT": "5"},
        )
        return code == 0

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        target = self.target
        db = target.answers.database
        for leftover in target.engine.project_containers(target.project.name, oneoff=True):
            yield f"removing {leftover.name}, left by an interrupted run"
            target.engine.remove_container(leftover.id)
        if db.kind == "postgres" and not db.managed:
            yield from self._prepare_container(ctx)
        elif db.kind == "postgres":
            yield from self._wait_managed(ctx)
        else:
            yield "SQLite: the database file lives in the codequal_data volume"
        yield from self._backup_before_migration(ctx)
        migration = target.release.migration
        command = " ".join(migration.command)
        yield f"migrating to schema version {migration.schema_version}: {command}"
        try:
            if MIGRATE_SERVICE in target.services():
                yield from target.project.run_once(MIGRATE_SERVICE, cancel=ctx.cancel)
            else:
                yield from target.project.stream(
                    "run", "--rm", "--no-deps", "--no-TTY", "--pull", "never",
                    migration.service, *migration.command, cancel=ctx.cancel,
                )  # fmt: skip
        except CommandFailed as e:
            raise _fail(self.name, e, "the migration failed") from e
        target._schema_version = migration.schema_version
        ctx.remember("schema_version", migration.schema_version)
        yield f"database at schema version {migration.schema_version}"

    def _prepare_container(self, ctx: StepContext) -> Iterator[StepUpdate]:
        db = self.target.answers.database
        deadline = time.monotonic() + 120
        yield "waiting for PostgreSQL to accept connections"
        while True:
            container = self._postgres_container()
            if container is not None:
                # Over TCP: the first start's initialisation runs a temporary server on the
                # socket only, which answers the socket and then shuts down under our feet.
                code, _ = self.target.engine.exec(
                    container.id,
                    ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", db.user, "-d", db.name],
                )
                if code == 0:
                    break
            if time.monotonic() > deadline:
                raise StepFailed(
                    "PostgreSQL did not accept connections within 120s",
                    step=self.name,
                    log_tail=self.target.engine.logs(container.id) if container else [],
                    hint=f"see `docker compose logs postgres` in {self.target.install_dir}",
                )
            ctx.sleep(_POLL_SECONDS)
        yield "PostgreSQL is ready"
        password = self._password().replace("'", "''")
        role = db.user
        name = db.name
        # The role and database names are validated identifiers; the password travels on
        # standard input only, never on a command line or in a log.
        sql = (
            "\\set ON_ERROR_STOP on\n"  # noqa: S608 - validated identifiers, escaped password
            f"SELECT 'CREATE ROLE \"{role}\" LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec\n"
            f"ALTER ROLE \"{role}\" WITH LOGIN PASSWORD '{password}';\n"
            f'SELECT \'CREATE DATABASE "{name}" OWNER "{role}"\' WHERE NOT EXISTS '
            f"(SELECT FROM pg_database WHERE datname = '{name}')\\gexec\n"
        )
        for attempt in range(1, 6):
            try:
                yield from self.target.project.stream(
                    "exec", "-T", "postgres", "psql", "-q", "-U", db.user, "-d", "postgres",
                    stdin=sql.encode(), cancel=ctx.cancel,
                )  # fmt: skip
                break
            except CommandFailed as e:
                # psql exits 2 when the connection failed (a server still starting): retry.
                if e.returncode != 2 or attempt == 5:
                    raise _fail(self.name, e, "cannot create the database role") from e
                yield f"PostgreSQL is not ready yet (attempt {attempt}); retrying"
                ctx.sleep(2)
        yield f"role {role} and database {name} ready (password set from the secrets)"

    def _wait_managed(self, ctx: StepContext) -> Iterator[StepUpdate]:
        db = self.target.answers.database
        assert db.host is not None  # noqa: S101 - the model requires it when managed
        yield f"waiting for the managed PostgreSQL at {db.host}:{db.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection((db.host, db.port), timeout=5):
                    break
            except OSError as e:
                if time.monotonic() > deadline:
                    raise StepFailed(
                        f"cannot reach the managed PostgreSQL at {db.host}:{db.port}: "
                        f"{e.strerror or e}",
                        step=self.name,
                        hint="check database.host and database.port, and the firewall between",
                    ) from e
            ctx.sleep(1)
        yield "reachable; the migration connects as the configured role"

    def _backup_before_migration(self, ctx: StepContext) -> Iterator[StepUpdate]:
        """Dump the database before a schema change, so a rollback can restore it."""
        record = self.target.installed_record()
        wanted = self.target.release.migration.schema_version
        if record is None or record.get("schema_version") in (None, wanted):
            return
        if "backup" in ctx.data:
            return
        if self._postgres_container() is None:
            yield (
                "note: the schema changes from version "
                f"{record.get('schema_version')} to {wanted}; back up this database yourself, "
                "a rollback cannot undo the migration here"
            )
            return
        db = self.target.answers.database
        dump = self.target.state.backups / f"{ctx.run_id}-{db.name}.sql"
        yield f"backing up database {db.name} before the schema change"
        try:
            size = command_to_file(
                self.target.project.argv(
                    "exec", "-T", "postgres", "pg_dump", "-U", db.user, "-d", db.name,
                    "--no-owner",
                ),
                dump,
                cancel=ctx.cancel,
            )  # fmt: skip
        except CommandFailed as e:
            raise _fail(self.name, e, "cannot back up the database") from e
        ctx.remember("backup", str(dump))
        yield f"backup: {dump} ({_kib(size)})"

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        backup = ctx.data.get("backup")
        if not backup:
            return
        db = self.target.answers.database
        yield f"restoring database {db.name} from {backup}"
        project = self.target.project
        recreate = (
            f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE);\n'
            f'CREATE DATABASE "{db.name}" OWNER "{db.user}";\n'
        )
        try:
            yield from project.stream(
                "exec", "-T", "postgres", "psql", "-q", "-v", "ON_ERROR_STOP=1",
                "-U", db.user, "-d", "postgres", stdin=recreate.encode(),
            )  # fmt: skip
            command_to_file(
                project.argv(
                    "exec", "-T", "postgres", "psql", "-q", "-v", "ON_ERROR_STOP=1",
                    "-U", db.user, "-d", db.name,
                ),
                Path(os.devnull),
                stdin_file=Path(backup),
            )  # fmt: skip
        except CommandFailed as e:
            raise _fail(self.name, e, "cannot restore the database backup") from e
        yield f"database {db.name} restored to its state before the migration"


class ServicesStep(ComposeStep):
    name = "services"
    title = "Service configuration"

    @property
    def description(self) -> str:
        return (
            "create or recreate what changed: "
            + ", ".join(self.target.app_services())
            + " (Compose keeps the rest as is)"
        )

    def check(self, ctx: StepContext) -> str | None:
        services = self.target.app_services()
        if self.target.outdated(services, ctx.cancel):
            return None
        return f"{', '.join(services)} up to date"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        services = self.target.app_services()
        outdated = self.target.outdated(services, ctx.cancel)
        for service, reason in outdated.items():
            yield f"{service}: {reason}"
        ctx.remember("changed", sorted(outdated))
        try:
            yield from self.target.project.up(services, cancel=ctx.cancel)
        except CommandFailed as e:
            raise _fail(self.name, e, "cannot start the services") from e


class VerificationStep(ComposeStep):
    name = "verification"
    title = "Verification"
    read_only = True

    @property
    def description(self) -> str:
        routes = ", ".join(r.path for r in self._routes())
        return f"every service healthy, then a request through the front door to {routes}"

    def _routes(self) -> list[Route]:
        services = self.target.services()
        return [r for r in self.target.release.routes if r.service in services]

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        services = self.target.database_services() + self.target.app_services()
        yield from self.target.wait_healthy(ctx, services)
        self.target.verified = {}
        for route in self._routes():
            yield from self._probe(ctx, route)

    def _probe(self, ctx: StepContext, route: Route) -> Iterator[StepUpdate]:
        answers = self.target.answers
        path = route.path.rstrip("/") + route.health_path
        if "nginx" in self.target.services():
            tls = answers.tls.mode != "none"
            port = 443 if tls else 80
            url = f"{'https' if tls else 'http'}://{answers.domain}{path}"
            host = answers.domain
        else:
            tls, port, host = False, route.port, "localhost"
            url = f"http://localhost:{port}{path}"
        context = self._tls_context() if tls else None
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _request("127.0.0.1", port, host, path, context)
            except ssl.SSLCertVerificationError as e:
                raise StepFailed(
                    f"{url}: the certificate nginx serves does not verify: {e.verify_message}",
                    step=self.name,
                    hint="the certificate must name the domain and match nginx/ssl/codequal.crt",
                ) from e
            except OSError as e:
                status, body = 0, str(e)
            if status == 200 or time.monotonic() > deadline:
                break
            ctx.sleep(1)
        if status != 200:
            raise StepFailed(
                f"{url} answered {status or 'nothing'} through the front door",
                step=self.name,
                log_tail=[body[:500]] if body else [],
                hint=(
                    f"see `docker compose logs nginx {route.service}` in {self.target.install_dir}"
                ),
            )
        facts: dict[str, Any] = {"url": url, "status": status}
        line = f"{url}: 200"
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        database = payload.get("database") if isinstance(payload, dict) else None
        if isinstance(database, dict) and database.get("configured"):
            facts["database"] = {
                k: database.get(k) for k in ("reachable", "migrated", "schema_version")
            }
            line += (
                f"; database reachable={database.get('reachable')} "
                f"migrated={database.get('migrated')}"
            )
            if not database.get("reachable") or not database.get("migrated"):
                raise StepFailed(
                    f"{route.service} answers, but reports its database "
                    + ("unreachable" if not database.get("reachable") else "not migrated")
                    + (f": {database.get('error')}" if database.get("error") else ""),
                    step=self.name,
                    hint="check the database settings in the answers and the secrets",
                )
        self.target.verified[route.service] = facts
        yield line

    def _tls_context(self) -> ssl.SSLContext:
        """Verification against the installation's own certificate: never turned off."""
        answers = self.target.answers
        context = ssl.create_default_context()
        if answers.tls.mode == "self-signed":
            context = ssl.create_default_context(
                cafile=str(self.target.install_dir / "nginx/ssl/codequal.crt")
            )
        elif answers.tls.cert_file:
            with contextlib.suppress(ssl.SSLError, OSError):
                context.load_verify_locations(cafile=answers.tls.cert_file)
        return context


class MonitoringStep(ComposeStep):
    name = "monitoring"
    title = "Monitoring setup"

    @property
    def description(self) -> str:
        services = self.target.monitoring_services()
        if not services:
            return "monitoring is turned off"
        return f"start {', '.join(services)} and wait until healthy"

    def check(self, ctx: StepContext) -> str | None:
        services = self.target.monitoring_services()
        if not services:
            return "monitoring is turned off in the answers"
        if self.target.outdated(services, ctx.cancel):
            return None
        if not all(c.ready for c in self.target.containers() if c.service in services):
            return None
        return f"{', '.join(services)} up to date"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        services = self.target.monitoring_services()
        try:
            yield from self.target.project.up(services, cancel=ctx.cancel)
        except CommandFailed as e:
            raise _fail(self.name, e, "cannot start the monitoring services") from e
        yield from self.target.wait_healthy(ctx, services)
        yield from self._probe_published(ctx, services)

    def _probe_published(self, ctx: StepContext, services: Sequence[str]) -> Iterator[StepUpdate]:
        """Each published monitoring UI answers its health path on the host port."""
        for info in self.target.containers():
            manifest = self.target.release.services.get(info.service)  # type: ignore[call-overload]
            health = manifest.health if manifest is not None else None
            if info.service not in services or not info.published_ports or health is None:
                continue
            if not health.http_path:
                continue
            port = info.published_ports[0]
            url = f"http://127.0.0.1:{port}{health.http_path}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    status, _ = _request("127.0.0.1", port, "127.0.0.1", health.http_path, None)
                except OSError:
                    status = 0
                if status == 200 or time.monotonic() > deadline:
                    break
                ctx.sleep(1)
            if status != 200:
                raise StepFailed(
                    f"{info.service} answered {status or 'nothing'} at {url}",
                    step=self.name,
                    log_tail=self.target.engine.logs(info.id),
                    hint=f"see `docker compose logs {info.service}` in {self.target.install_dir}",
                )
            yield f"{info.service}: {url} answers 200"


# -- helpers ----------------------------------------------------------------------------


def _request(
    address: str, port: int, host: str, path: str, context: ssl.SSLContext | None
) -> tuple[int, str]:
    """GET ``path`` from ``address:port`` as ``host`` (TLS SNI and Host header)."""
    connection: http.client.HTTPConnection
    if context is not None:
        connection = _PinnedHTTPSConnection(address, port, host, context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host, "User-Agent": "codequal-installer"})
        response = connection.getresponse()
        return response.status, response.read(65536).decode("utf-8", "replace")
    finally:
        connection.close()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, verifying the certificate for ``server_name``."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=10, context=context)
        self._server_name = server_name
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self._server_name)


def _load_yaml(content: bytes) -> dict[str, Any]:
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(content)
    return data if isinstance(data, dict) else {}


def _seconds(value: Any, default: float) -> float:
    """Compose durations as written by the templates: ``10s``, ``1m30s``, or a number."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    text, total, number = str(value), 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    i = 0
    while i < len(text):
        char = text[i]
        if char.isdigit() or char == ".":
            number += char
            i += 1
            continue
        unit = "ms" if text[i : i + 2] == "ms" else char
        total += float(number or 0) * units.get(unit, 1.0)
        number = ""
        i += len(unit)
    return total + float(number or 0) if number else total or default


def _safe_relative(path: str) -> bool:
    parts = Path(path).parts
    return bool(path) and not Path(path).is_absolute() and ".." not in parts


def _kib(size: float) -> str:
    return f"{size / 1024:.0f} KiB" if size < 10 * 1024 * 1024 else f"{size / 1048576:.0f} MiB"
