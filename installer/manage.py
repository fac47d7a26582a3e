"""The installation's day 2 for a front end: what the wizard's Manage screen shows, and the
runs it starts (status, upgrade, uninstall; backups are :mod:`installer.backup.actions`,
rollback is :mod:`installer.rollback`).

The commands (:mod:`installer.upgrade`, :mod:`installer.uninstall`) print and ask on a
terminal; a front end needs the same work as plain data to lay out and as event streams
to render. This module is that API, on the commands' own functions:

- :func:`overview` is ``status``: release, schema version, health, last backup, history;
- :func:`upgrade_choices` lists the releases this installer knows above the installed one,
  each with whether the path to it is allowed;
- :func:`upgrade_preview` and :func:`uninstall_preview` run every check the command runs
  before its confirmation and say what the run would change; they change nothing;
- :func:`upgrade_events` and :func:`uninstall_events` run the command as if confirmed
  (``--yes``) and yield its events. Each stream starts with one ``run.started`` and ends
  with exactly one ``run.finished`` or ``run.failed`` carrying the command's exit code; an
  error the operator can act on is an event, never raised.

Every stream is meant to be iterated from a worker thread: nothing here installs a signal
handler; a front end stops a run with the :class:`~installer.runner.CancelToken` it passes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.errors import ExitCode, InstallerError
from installer.events import Event

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets
    from installer.history import HistoryEntry
    from installer.release import ReleaseManifest
    from installer.runner import CancelToken
    from installer.uninstall import Inventory

CHECK_STEP = "upgrade-checks"
BACKUP_STEP = "pre-upgrade-backup"
INVENTORY_STEP = "uninstall-inventory"
REMOVE_STEP = "uninstall-remove"

_MEANINGS: dict[int, str] = {
    int(ExitCode.OK): "done",
    int(ExitCode.INSTALL_FAILED): (
        "the run failed and what it changed was rolled back; the log above says where"
    ),
    int(ExitCode.USAGE): (
        "refused before any change: the path skips a required stop, nothing to do, or "
        "another run holds the installation's lock"
    ),
    int(ExitCode.PREREQUISITES): (
        "a prerequisite is not met: the installation is not healthy, free disk is short, "
        "or the Docker Engine cannot be reached"
    ),
    int(ExitCode.BUNDLE_INTEGRITY): "an archive or a bundle failed its integrity check",
    int(ExitCode.INTERRUPTED): (
        "interrupted at a checkpoint: the journal is kept and the next run resumes or rolls back"
    ),
}


def exit_meaning(code: int) -> str:
    """What exit ``code`` of an upgrade, rollback or uninstall means (README, "Exit codes")."""
    return _MEANINGS.get(code, "the run failed")


# -- status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """What ``status`` says of the installation in ``install_dir``."""

    install_dir: str
    installed: bool
    target: str | None
    release: str | None
    schema_version: str | None
    healthy: bool
    services: list[tuple[str, str]]  # (service, "running, healthy")
    docker_error: str | None
    last_backup: dict[str, Any] | None
    history: list[HistoryEntry]  # the last five, oldest first


def overview(install_dir: str | Path) -> Overview:
    """``status --install-dir``: asks the Docker Engine; changes nothing, takes no lock."""
    from installer.history import HistoryEntry
    from installer.status import installation_status

    status = installation_status(Path(install_dir))
    shown = status.to_dict()
    services = [
        (
            s.name,
            f"{s.state}, {s.health or 'no health check'}"
            + (f", {s.containers} containers" if s.containers > 1 else ""),
        )
        for s in status.services
    ]
    return Overview(
        install_dir=str(install_dir),
        installed=status.installed,
        target=shown.get("target"),
        release=shown.get("release"),
        schema_version=str(shown["schema_version"]) if shown.get("schema_version") else None,
        healthy=status.healthy,
        services=services,
        docker_error=status.docker_error,
        last_backup=shown.get("last_backup"),
        history=[HistoryEntry.from_dict(raw) for raw in shown.get("history") or []],
    )


# -- upgrade ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseChoice:
    """A release this installer knows, above the installed one."""

    version: str
    allowed: bool  # the path from the installed release to it is allowed in one step
    note: str  # "direct", or why not and the path to follow


def upgrade_choices(installed: str) -> list[ReleaseChoice]:
    """The known releases newer than ``installed``, oldest first (shipped, and in
    ``CODEQUAL_RELEASES_DIR``), each with what :func:`~installer.upgrade_path.decide` says."""
    from installer.release import version_key
    from installer.upgrade_path import decide, known_releases

    known = known_releases()
    choices = []
    for version in sorted(known, key=version_key):
        if version_key(version) <= version_key(installed):
            continue  # not newer (another build of the same release is not an upgrade path)
        decision = decide(installed, known[version], known)
        if decision.allowed:
            note = "direct"
        elif decision.stops:
            note = f"required stop first: {', '.join(decision.stops)}"
        else:
            note = f"upgrades only from {known[version].upgrade.from_}"
        choices.append(ReleaseChoice(version, decision.allowed, note))
    return choices


@dataclass(frozen=True)
class UpgradePreview:
    """What ``upgrade --to VERSION`` would do; every check before its confirmation run."""

    install_dir: str
    installed: str | None
    target: str
    bundle: str | None
    checks: list[str]  # what the command says as each check passes (health, path, disk)
    path: list[str] | None  # installed first, target last
    images: list[tuple[str, str, str]]  # (service, image now, image after) that change
    backup_directory: Path | None  # where the pre-upgrade backup goes (None: Kubernetes)
    backup_recipients: list[str]  # the answers' recipients (the state's own key is added)
    migration: str  # what migrates the database
    refusal: str | None = None  # why it cannot start (None: it can)
    hint: str | None = None
    exit_code: int = 0  # what the command would exit with when refused
    up_to_date: bool = False
    bundle_signature: str | None = None  # the bundle's signature status line

    @property
    def allowed(self) -> bool:
        return self.refusal is None and not self.up_to_date


def _target_release(to: str) -> ReleaseManifest:
    from installer.release import load_release

    return load_release(to)


def bundle_release(bundle: str | Path, key: str | Path | None = None) -> tuple[str, str]:
    """The release version inside an offline bundle, and its signature's status line."""
    from installer.bundle import inspect_bundle

    report = inspect_bundle(bundle, key=Path(key) if key else None)
    return report.metadata.release_version, report.signature


def upgrade_preview(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    to: str,
    bundle: str | None = None,
) -> UpgradePreview:
    """Run :func:`~installer.upgrade.check_upgrade` for ``to`` (the health of the services,
    the path, free disk) and say what the upgrade would change. Changes nothing; a refusal
    is in ``.refusal`` with the command's exit code, never raised."""
    from installer.upgrade import check_upgrade, installed_version

    checks: list[str] = []
    installed: str | None = None
    backup_directory = (
        Path(str(answers.backup.directory_for(answers.install_dir))) if answers.is_compose else None
    )

    def preview(**changes: Any) -> UpgradePreview:
        fields: dict[str, Any] = {
            "install_dir": answers.install_dir,
            "installed": installed,
            "target": to,
            "bundle": bundle,
            "checks": checks,
            "path": None,
            "images": [],
            "backup_directory": backup_directory,
            "backup_recipients": list(answers.backup.recipients),
            "migration": "",
        }
        return UpgradePreview(**{**fields, **changes})

    try:
        refuse_interrupted(answers)
        installed = installed_version(answers)
        release = _target_release(to)
        check = check_upgrade(answers, secrets, release, force_path=None, say=checks.append)
    except InstallerError as e:
        return preview(
            installed=installed, refusal=e.message, hint=e.hint, exit_code=int(e.exit_code)
        )
    if check is None:
        return preview(up_to_date=True)
    return preview(
        path=list(check.decision.path or []),
        images=_changed_images(check.installed, release, answers),
        migration=" ".join(release.migration.command),
    )


def refuse_interrupted(answers: AnswerFile) -> None:
    """Exit 2 when an earlier upgrade was interrupted: the command line finishes it (or its
    rollback) first, and says which; a new upgrade cannot start over it."""
    if not answers.is_compose:
        return
    from installer.errors import UsageError
    from installer.statedir import StateDir
    from installer.upgrade_pending import PendingUpgrade

    pending = PendingUpgrade.load(StateDir.for_install_dir(answers.install_dir))
    if pending is not None:
        raise UsageError(
            f"the upgrade {pending.from_release} -> {pending.to_release} (started "
            f"{pending.started_at}) was interrupted and is not finished",
            hint=f"finish it with `codequal-installer upgrade --to {pending.to_release}`, or "
            f"return to {pending.from_release} with Rollback",
        )


def _changed_images(
    installed: str, release: ReleaseManifest, answers: AnswerFile
) -> list[tuple[str, str, str]]:
    try:
        now = _target_release(installed).images(answers)
    except InstallerError:
        now = {}
    after = release.images(answers)
    return [
        (service, now.get(service, "?"), image)
        for service, image in after.items()
        if now.get(service) != image
    ]


class _QueueDisplay:
    """A run display for :func:`~installer.upgrade.perform_upgrade` that hands each event
    to the stream: the backup's own run becomes one step of the upgrade's."""

    def __init__(self, phase: str, out: queue.Queue[Event | None], ended: list[Event]) -> None:
        self.phase = phase
        self.out = out
        self.ended = ended

    def show(self, event: Event) -> None:
        if self.phase == "backup":
            self.out.put(self._backup_event(event))
            return
        if event.type == "run.started":
            # One run.started per stream: the runner's becomes its heading.
            self.out.put(Event("step.output", f"==> {event.message}", data=event.data))
            return
        if event.type in ("run.finished", "run.failed"):
            self.ended.append(event)
        self.out.put(event)

    def _backup_event(self, event: Event) -> Event:
        kind = event.type
        if kind == "run.started":
            return Event("step.started", "Pre-upgrade backup", step=BACKUP_STEP)
        if kind == "run.finished":
            return Event("step.finished", event.message, step=BACKUP_STEP)
        if kind == "run.failed":
            return Event("step.failed", event.message, step=BACKUP_STEP, data=event.data)
        if kind in ("step.output", "step.progress"):
            return Event(
                kind,
                event.message,
                step=BACKUP_STEP,
                current=event.current,
                total=event.total,
                unit=event.unit,
            )
        return Event("step.output", f"{event.step}: {event.message}", step=BACKUP_STEP)

    def close(self) -> None:
        return None


def upgrade_events(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    to: str,
    cancel: CancelToken,
    bundle: str | None = None,
    key: str | None = None,
) -> Iterator[Event]:
    """``upgrade --to VERSION --yes`` as events: the checks again (the installation may have
    changed since the preview), the pre-upgrade backup as one step, then the plan ``apply``
    runs for the new release (its own steps, journal, lock and automatic rollback).

    The command's work runs in a thread of its own (it reports through a display); this
    generator hands its events on in order. Closing the generator early cancels the run at
    its next checkpoint and waits for it.
    """
    from installer.upgrade import Frontend, check_upgrade, perform_upgrade

    out: queue.Queue[Event | None] = queue.Queue()
    ended: list[Event] = []
    step = CHECK_STEP

    def say(message: str) -> None:
        out.put(Event("step.output", message, step=step))

    def work() -> None:
        nonlocal step
        try:
            out.put(Event("step.started", "Check the installation and the path", step=step))
            refuse_interrupted(answers)
            check = check_upgrade(answers, secrets, _target_release(to), force_path=None, say=say)
            if check is None:
                out.put(Event("step.finished", "nothing to upgrade", step=step))
                ended.append(
                    Event("run.finished", f"CodeQual {to} is installed already", exit_code=0)
                )
                out.put(ended[-1])
                return
            out.put(Event("step.finished", "checks passed: nothing changed yet", step=step))
            step = BACKUP_STEP
            frontend = Frontend(
                cancel=cancel, display=lambda phase: _QueueDisplay(phase, out, ended), say=say
            )
            perform_upgrade(check, secrets, bundle=bundle, key=key, frontend=frontend)
        except InstallerError as e:
            for event in failure_events(e, step if not ended else None):
                if event.type == "run.failed":
                    ended.append(event)
                out.put(event)
        except Exception as e:  # noqa: BLE001 - a bug: reported as the run's end, not lost
            ended.append(Event("run.failed", f"unexpected error: {e}", exit_code=1))
            out.put(ended[-1])
        finally:
            out.put(None)

    yield Event(
        "run.started",
        f"upgrade {answers.install_dir} to CodeQual {to}",
        data={
            "steps": [
                {"name": CHECK_STEP, "title": "Check the installation and the path"},
                {"name": BACKUP_STEP, "title": "Pre-upgrade backup"},
            ]
        },
    )
    thread = threading.Thread(target=work, name="codequal-upgrade", daemon=True)
    thread.start()
    try:
        while (event := out.get()) is not None:
            yield event
        if not ended:
            yield Event("run.failed", "the upgrade ended without a result", exit_code=1)
    finally:
        if thread.is_alive():
            cancel.cancel("the front end stopped following the upgrade")
            thread.join()


def failure_events(error: InstallerError, step: str | None) -> Iterator[Event]:
    """An error as the run's last events: the step's failure, then ``run.failed``."""
    data: dict[str, Any] = {}
    if error.hint:
        data["hint"] = error.hint
    problems = getattr(error, "problems", None)
    if problems:
        data["problems"] = list(problems)
    if step is not None:
        yield Event("step.failed", error.message, step=step, data=dict(data))
    yield Event("run.failed", error.message, exit_code=int(error.exit_code), data=data)


# -- uninstall ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UninstallPreview:
    """``uninstall``'s inventory, and what the operator must type for ``--purge``."""

    inventory: Inventory | None
    domain: str  # typed to confirm --purge
    refusal: str | None = None
    hint: str | None = None
    exit_code: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.refusal is None and self.inventory is not None


def _compose_inventory(answers: AnswerFile) -> tuple[Inventory, dict[str, Any], Any]:
    from installer.engine.docker import DockerEngine
    from installer.errors import UsageError
    from installer.uninstall import compose_inventory

    if not answers.is_compose:
        raise UsageError(
            f"the wizard uninstalls Compose installations; for {answers.target} use "
            "`codequal-installer uninstall --answers FILE`"
        )
    client = DockerEngine(timeout=60).client
    inventory, found = compose_inventory(answers, client)
    if not inventory.items:
        raise UsageError(f"nothing of an installation was found in {answers.install_dir}")
    return inventory, found, client


def uninstall_preview(answers: AnswerFile) -> UninstallPreview:
    """The inventory ``uninstall`` prints first (containers, networks, volumes with sizes,
    images, state, backups, certificates); changes nothing."""
    domain = answers.domain or ""
    try:
        inventory, _, _ = _compose_inventory(answers)
    except InstallerError as e:
        return UninstallPreview(
            None, domain, refusal=e.message, hint=e.hint, exit_code=int(e.exit_code)
        )
    return UninstallPreview(inventory, domain)


def uninstall_events(answers: AnswerFile, *, purge: bool, cancel: CancelToken) -> Iterator[Event]:
    """``uninstall [--purge] --yes`` as events: the inventory again, then the removal under
    the installation's lock, one line per thing removed or kept."""
    from installer.uninstall import remove_compose

    started = time.monotonic()
    what = "uninstall --purge" if purge else "uninstall (data kept)"
    yield Event("run.started", f"{what} of {answers.install_dir}")
    step = INVENTORY_STEP
    try:
        yield Event("step.started", "Inventory", step=step)
        inventory, found, client = _compose_inventory(answers)
        removed = [i for i in inventory.items if i.action(purge) == "removed"]
        yield Event(
            "step.finished",
            f"{len(inventory.items)} things found, {len(removed)} to remove",
            step=step,
        )
        cancel.raise_if_cancelled()
        step = REMOVE_STEP
        yield Event("step.started", "Remove", step=step)
        done = remove_compose(
            answers, inventory, found, purge=purge, client=client, started=started
        )
        for line in done:
            yield Event("step.output", line, step=step)
        yield Event("step.finished", f"{len(done)} done", step=step)
    except InstallerError as e:
        yield from failure_events(e, step)
        return
    kept = "everything removed" if purge else "data kept: a later apply picks it up"
    yield Event("run.finished", f"uninstalled ({kept})", exit_code=0)
