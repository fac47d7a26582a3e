"""The configuration step: write the rendered files, keeping the last install's for rollback.

Before it writes anything, the step copies the files of the last healthy install to
``state/previous/`` (:func:`snapshot_previous`); its rollback puts them back and starts
the previous containers again, or, after a first install, removes what the install made
(:func:`restore_previous`). Volumes, the data, are always kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.engine.compose import ComposeProject
from installer.engine.process import CommandFailed
from installer.errors import InstallerError, StepFailed
from installer.statedir import StateError, atomic_write, atomic_write_json, read_json
from installer.targets.compose.base import (
    MIGRATE_SERVICE,
    RENDERED_INDEX,
    kib,
    load_yaml,
    safe_relative,
    step_failure,
)
from installer.targets.compose.installation import ComposeStep

if TYPE_CHECKING:
    from installer.render import RenderedPlan
    from installer.runner import StepContext, StepUpdate
    from installer.targets.compose.installation import ComposeInstallation

_DISK_MARGIN_BYTES = 1024 * 1024


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
            if modes_ok and sorted(self.target.rendered_index()) == sorted(plan.paths):
                return f"configuration unchanged ({len(plan.files)} files)"
        return None

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        from installer.render import compare_plan, write_plan

        plan = self.target.render()
        if "snapshot" not in ctx.data:
            snapshot = snapshot_previous(self.target)
            ctx.remember("snapshot", snapshot)
            if not snapshot.get("fresh"):
                yield f"kept the files of release {snapshot.get('release')} for rollback"
        changes = [c for c in compare_plan(plan, self.target.install_dir) if c.kind != "unchanged"]
        self._check_space(ctx, plan)
        try:
            write_plan(plan, self.target.install_dir)
        except InstallerError as e:
            raise step_failure(self.name, e) from e
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
                f"{kib(needed)} (with a margin), {kib(free)} is free",
                step=self.name,
                hint=f"free some space on the file system that holds {probe}, then run again",
            )

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield from restore_previous(self.target, ctx, ctx.data.get("snapshot") or {"fresh": True})


# -- the previous install ---------------------------------------------------------------


def snapshot_previous(target: ComposeInstallation) -> dict[str, Any]:
    """Copy the files of the last healthy install to ``state/previous/`` (for rollback)."""
    record = target.installed_record()
    paths = target.rendered_index()
    if record is None or not paths:
        return {"fresh": True}
    staging = target.state.path / f"previous.new-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    files: dict[str, int] = {}
    try:
        for relative in paths:
            source = target.install_dir / relative
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
        old = target.state.path / f"previous.old-{os.getpid()}"
        if target.state.previous.exists():
            target.state.previous.rename(old)
        staging.rename(target.state.previous)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise StateError(target.state.previous, e) from e
    return {
        "fresh": False,
        "release": (record.get("release") or {}).get("version"),
        "files": sorted(files),
    }


def restore_previous(
    target: ComposeInstallation, ctx: StepContext, snapshot: dict[str, Any]
) -> Iterator[StepUpdate]:
    """Put back the previous install's files and containers (or remove a first install's)."""
    if snapshot.get("fresh", True):
        yield from _remove_first_install(target, ctx)
        return
    meta = read_json(target.state.previous / "snapshot.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
        raise StepFailed(
            f"the previous installation's files are missing from {target.state.previous}",
            step=ctx.step.name,
            hint="restore them from a backup and run `docker compose up -d` there",
        )
    saved: dict[str, int] = meta["files"]
    for relative in target.rendered_index():
        if relative not in saved:
            (target.install_dir / relative).unlink(missing_ok=True)
    for relative, mode in saved.items():
        if not safe_relative(relative):
            continue
        content = (target.state.previous / "files" / relative).read_bytes()
        atomic_write(target.install_dir / relative, content, int(mode))
    atomic_write_json(target.state.path / RENDERED_INDEX, {"files": sorted(saved)}, 0o600)
    yield f"restored the files of release {meta.get('release')}"
    name = str(meta.get("compose_project") or target.project.name)
    previous = ComposeProject(target.install_dir, name)
    services = _services_in(target.install_dir / "docker-compose.yml")
    services = [s for s in services if s != MIGRATE_SERVICE]
    yield f"starting the previous containers: {', '.join(services)}"
    try:
        yield from previous.up(services, wait=True, cancel=None)
    except CommandFailed as e:
        raise step_failure(ctx.step.name, e, "the previous installation did not come back") from e
    yield f"release {meta.get('release')} is running again"


def _remove_first_install(target: ComposeInstallation, ctx: StepContext) -> Iterator[StepUpdate]:
    compose_file = target.install_dir / "docker-compose.yml"
    try:
        target.engine.project_containers(target.project.name, oneoff=None)
        reachable = True
    except InstallerError:
        reachable = False  # no container can have been made where no engine answers
    if compose_file.is_file() and reachable:
        yield "removing the containers and network this install created (volumes are kept)"
        try:
            yield from target.project.down()
        except CommandFailed as e:
            raise step_failure(ctx.step.name, e, "cannot remove the new containers") from e
    for relative in target.rendered_index():
        (target.install_dir / relative).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # remove the directories we made, if now empty
            parent = (target.install_dir / relative).parent
            while parent != target.install_dir and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    (target.state.path / RENDERED_INDEX).unlink(missing_ok=True)
    yield "removed the generated files (state/ keeps the logs and generated secrets)"


def _services_in(compose_file: Path) -> list[str]:
    try:
        document = load_yaml(compose_file.read_bytes())
    except OSError:
        return []
    return list((document.get("services") or {}).keys())
