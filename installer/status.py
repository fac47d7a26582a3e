"""What is installed in an install directory, and how its services are doing right now.

:func:`installation_status` reads the state directory (``result.json``: release, URLs;
``journal.json``: an interrupted or failed last run) and asks the Docker Engine for the
project's containers and their health. It changes nothing and needs no lock, so it can
run while an ``apply`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.errors import InstallerError
from installer.runner import Journal
from installer.statedir import StateDir, read_json


@dataclass
class ServiceStatus:
    name: str
    state: str
    health: str | None
    image: str
    containers: int = 1

    @property
    def ok(self) -> bool:
        return self.state == "running" and self.health in (None, "healthy")


@dataclass
class InstallationStatus:
    install_dir: Path
    installed: bool
    record: dict[str, Any] = field(default_factory=dict)
    services: list[ServiceStatus] = field(default_factory=list)
    docker_error: str | None = None
    last_run: dict[str, Any] = field(default_factory=dict)
    lifecycle: dict[str, Any] = field(default_factory=dict)  # last backup, history (i15)

    @property
    def healthy(self) -> bool:
        return (
            self.installed
            and self.docker_error is None
            and bool(self.services)
            and all(s.ok for s in self.services)
        )

    def to_dict(self) -> dict[str, Any]:
        record = self.record
        return {
            "install_dir": str(self.install_dir),
            "installed": self.installed,
            "healthy": self.healthy,
            "target": record.get("target"),
            "release": (record.get("release") or {}).get("version"),
            "schema_version": record.get("schema_version"),
            "compose_project": record.get("compose_project"),
            "installed_at": (record.get("run") or {}).get("finished_at"),
            "urls": record.get("urls") or {},
            "credentials": record.get("credentials") or {},
            "services": [
                {
                    "name": s.name,
                    "state": s.state,
                    "health": s.health,
                    "image": s.image,
                    "containers": s.containers,
                    "ok": s.ok,
                }
                for s in self.services
            ],
            "docker_error": self.docker_error,
            "last_run": self.last_run,
            **self.lifecycle,
        }


def installation_status(install_dir: Path, engine: Any = None) -> InstallationStatus:
    """The installation in ``install_dir`` (nothing there: ``installed`` is False)."""
    from installer.engine.docker import DockerEngine

    state = StateDir.for_install_dir(install_dir)
    record = read_json(state.result)
    installed = isinstance(record, dict) and record.get("status") == "installed"
    status = InstallationStatus(install_dir, installed, record if installed else {})  # type: ignore[arg-type]
    journal = Journal.load(state.journal)
    if journal is not None:
        stuck = [n for n, s in journal.steps.items() if s.status in ("running", "failed")]
        status.last_run = {
            "run_id": journal.run_id,
            "status": journal.status,
            "step": stuck[0] if stuck else None,
            "updated_at": journal.updated_at,
        }
    from installer.history import lifecycle_summary

    status.lifecycle = lifecycle_summary(state, Path(install_dir) / "backups")
    if not installed:
        return status
    project = str(status.record.get("compose_project") or "")
    engine = engine if engine is not None else DockerEngine(timeout=10)
    try:
        containers = engine.project_containers(project)
    except InstallerError as e:
        status.docker_error = e.message
        return status
    by_service: dict[str, list[Any]] = {}
    for info in containers:
        if info.service != "migrate":
            by_service.setdefault(info.service, []).append(info)
    expected = list((status.record.get("services") or {}).keys())
    for name in sorted(set(expected) | set(by_service)):
        found = by_service.get(name, [])
        if not found:
            status.services.append(ServiceStatus(name, "missing", None, ""))
            continue
        worst = next((c for c in found if not c.ready), found[0])
        status.services.append(
            ServiceStatus(name, worst.state, worst.health, worst.image, containers=len(found))
        )
    return status
