"""The steps of a Compose install other than configuration, database and verification.

Each step reads and changes the installation through its :class:`ComposeInstallation`; the
runner calls them in the order :meth:`ComposeTarget.plan` gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.engine.process import CommandFailed
from installer.errors import BundleIntegrityError, InstallerError, PrerequisiteError, StepFailed
from installer.runner import Progress
from installer.targets.compose.base import ImageLoader, step_failure
from installer.targets.compose.installation import ComposeStep
from installer.targets.compose.probes import wait_for_ok

if TYPE_CHECKING:
    from installer.runner import StepContext, StepUpdate


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
                raise step_failure(self.name, e, "cannot load the images from the bundle") from e
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
                    raise step_failure(self.name, e) from e
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
                raise step_failure(self.name, e, f"{', '.join(database)} did not start") from e

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield "images stay (they are shared and harmless); containers follow the configuration"


def _bundle_loader(key: Path | None) -> ImageLoader:
    """The offline bundle's loader; with ``key``, the bundle it extracts must still carry a
    signature that verifies (it was checked in the prerequisites: the file may have been
    replaced since)."""
    import functools

    from installer.bundle import load_images_into_docker

    return functools.partial(load_images_into_docker, key=key)


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
        # The monitoring services start in the same `up` and come up while the services do
        # and are verified; the monitoring step then waits for them (mostly up by then).
        monitoring = sorted(self.target.outdated(self.target.monitoring_services(), ctx.cancel))
        if monitoring:
            yield f"starting {', '.join(monitoring)} with them (the monitoring step waits for it)"
        try:
            yield from self.target.project.up([*services, *monitoring], cancel=ctx.cancel)
        except CommandFailed as e:
            raise step_failure(self.name, e, "cannot start the services") from e
        self.target.monitoring_started = bool(monitoring)


class MonitoringStep(ComposeStep):
    name = "monitoring"
    title = "Monitoring setup"

    @property
    def description(self) -> str:
        services = self.target.monitoring_services()
        if not services:
            return "monitoring is turned off"
        return f"start {', '.join(services)} (with the services) and wait until healthy"

    def check(self, ctx: StepContext) -> str | None:
        services = self.target.monitoring_services()
        if not services:
            return "monitoring is turned off in the answers"
        if self.target.monitoring_started:
            return None  # started by the services step: wait for it and probe it here
        if self.target.outdated(services, ctx.cancel):
            return None
        if not all(c.ready for c in self.target.containers() if c.service in services):
            return None
        return f"{', '.join(services)} up to date"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        services = self.target.monitoring_services()
        if self.target.outdated(services, ctx.cancel):
            try:
                yield from self.target.project.up(services, cancel=ctx.cancel)
            except CommandFailed as e:
                raise step_failure(self.name, e, "cannot start the monitoring services") from e
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
            status, _ = wait_for_ok(ctx, port, "127.0.0.1", health.http_path)
            if status != 200:
                raise StepFailed(
                    f"{info.service} answered {status or 'nothing'} at {url}",
                    step=self.name,
                    log_tail=self.target.engine.logs(info.id),
                    hint=f"see `docker compose logs {info.service}` in {self.target.install_dir}",
                )
            yield f"{info.service}: {url} answers 200"
