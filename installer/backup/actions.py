"""Backups for a front end: what the wizard's Backups screen shows, and the runs it starts.

The command line (:mod:`installer.backup.cli`, :mod:`installer.backup.restore_cli`) prints
and asks on a terminal; a front end needs the same work as plain data to lay out and as
event streams to render. This module is that API, on the same engine functions:

- :func:`installed_at` answers "is there an installation in ``install_dir``?" from its
  ``state/result.json`` alone (cheap: the wizard asks it right after its first frame);
- :func:`list_backups` is ``backup list``; :func:`create_preview` and
  :func:`restore_preview` say what a run would write or replace, changing nothing;
- :func:`create_events`, :func:`verify_events` and :func:`restore_events` run ``backup
  create``, the full ``backup verify`` and ``restore`` and yield their events. Each stream
  ends with exactly one ``run.finished`` or ``run.failed`` (with the exit code the command
  line would exit with); an error the operator can act on is an event, never raised;
- :func:`exit_meaning` says what such an exit code means, in the operator's words.

Every stream is meant to be iterated from a worker thread: nothing here installs a signal
handler; a front end stops a run with the :class:`~installer.runner.CancelToken` it passes.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.errors import ExitCode, InstallerError
from installer.events import Event

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.backup.catalog import ArchiveEntry
    from installer.credentials import LoadedSecrets
    from installer.runner import CancelToken

RESULT_FILE = Path("state") / "result.json"
PREFLIGHT_STEP = "restore-preflight"
SAFETY_STEP = "restore-safety-backup"

_MEANINGS: dict[int, str] = {
    int(ExitCode.OK): "done",
    int(ExitCode.INSTALL_FAILED): "the run failed; the log above says where",
    int(ExitCode.USAGE): (
        "refused before any change: no recipient, no installation, another run holds the "
        "installation's lock, or the archive does not fit these answers"
    ),
    int(ExitCode.PREREQUISITES): (
        "a prerequisite is missing: the age program is not installed, or the Docker Engine "
        "cannot be reached"
    ),
    int(ExitCode.BUNDLE_INTEGRITY): (
        "the archive failed verification: damaged, truncated, not for this identity, or its "
        "data differs from its manifest"
    ),
    int(ExitCode.INTERRUPTED): (
        "interrupted: no archive is left half written, and a restore resumes where it "
        "stopped when it is run again"
    ),
}


def exit_meaning(code: int) -> str:
    """What exit ``code`` of a backup, verify or restore run means (README, "Exit codes")."""
    return _MEANINGS.get(code, "the run failed")


# -- the installation and its archives ----------------------------------------------------


@dataclass(frozen=True)
class Installation:
    """What ``state/result.json`` of an installed Compose target says about it."""

    install_dir: str
    target: str
    release: str
    project: str
    database: str  # "postgres" or "sqlite"


def installed_at(install_dir: str | Path) -> Installation | None:
    """The installation in ``install_dir``, or None (nothing installed there, or unreadable).

    Reads only ``state/result.json``; no Docker, no answers model.
    """
    path = Path(install_dir) / RESULT_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != "installed":
        return None
    release = record.get("release")
    database = record.get("database")
    return Installation(
        install_dir=str(record.get("install_dir") or install_dir),
        target=str(record.get("target") or "?"),
        release=str((release or {}).get("version") or "?") if isinstance(release, dict) else "?",
        project=str(record.get("compose_project") or "codequal"),
        database=str((database or {}).get("kind") or "?") if isinstance(database, dict) else "?",
    )


def default_install_dir() -> str:
    """The answer file's default ``install_dir``."""
    from installer.answers import AnswerFile

    return str(AnswerFile.model_fields["install_dir"].default)


def backup_directory_for(answers: AnswerFile | None, install_dir: str) -> Path:
    """Where the installation's archives are: ``backup.directory`` or ``<install_dir>/backups``."""
    if answers is not None:
        return Path(str(answers.backup.directory_for(answers.install_dir)))
    from installer.backup.section import DEFAULT_SUBDIRECTORY

    return Path(install_dir) / DEFAULT_SUBDIRECTORY


def list_backups(directory: Path) -> list[ArchiveEntry]:
    """The archives in ``directory``, newest first (what ``backup list`` shows)."""
    from installer.backup.catalog import list_archives

    return list_archives(directory)


def verification_text(entry: ArchiveEntry) -> str:
    """``full 2026-12-04T17:30:00Z``, ``quick ...``, or ``no``."""
    if entry.verified is None:
        return "no"
    return f"{entry.verified.get('mode') or '?'} {entry.verified.get('verified_at') or ''}".strip()


# -- create -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatePreview:
    """What ``backup create`` will write, and where, before it starts."""

    install_dir: str
    directory: Path
    name_pattern: str  # codequal-<UTC time>-1.0.0.cqbackup
    recipients: list[str]
    contents: list[tuple[str, str]]  # (member, what it holds)
    pauses: str  # what is paused during the copy, and why
    problems: list[str] = field(default_factory=list)  # why it cannot start (empty: it can)

    @property
    def needs_recipient(self) -> bool:
        """No recipient in the answers nor given: the front end asks for one (an archive
        is always encrypted, so ``backup create`` refuses to start without)."""
        return not self.recipients


def create_preview(
    answers: AnswerFile,
    *,
    recipients: Sequence[str] | None = None,
    directory: Path | None = None,
) -> CreatePreview:
    """What :func:`create_events` with the same arguments will write; changes nothing."""
    from installer.backup.crypto import is_recipient

    install_dir = Path(answers.install_dir)
    where = directory or backup_directory_for(answers, answers.install_dir)
    chosen = list(recipients) if recipients else list(answers.backup.recipients)
    installation = installed_at(install_dir)
    problems: list[str] = []
    if not answers.is_compose:
        problems.append(f"backups cover the Compose targets, not {answers.target}")
    if installation is None:
        problems.append(f"no installation in {install_dir} to back up")
    problems += [f"{r[:20]!r} is not an age recipient" for r in chosen if not is_recipient(r)]
    project = installation.project if installation else answers.compose_project
    release = installation.release if installation else "<release>"
    compose = _installed_compose(install_dir)
    volumes = volumes_to_copy(compose)
    contents: list[tuple[str, str]] = [("manifest.json", "versions, answers (no secrets), hashes")]
    if answers.database.kind == "postgres":
        where_db = f"managed server {answers.database.host}" if answers.database.managed else ""
        contents.append(
            ("database/postgres.pgdump", f"pg_dump -Fc of {answers.database.name} {where_db}")
        )
    else:
        contents.append(("database/sqlite.db.zst", "SQLite copy (backup API, integrity checked)"))
    contents += [(f"volumes/{name}.tar.zst", f"named volume {name}") for name in volumes]
    contents += [
        ("config.tar.zst", f"the rendered configuration in {install_dir}"),
        ("state.tar.zst", "generated secrets, TLS material, journal, result, history"),
    ]
    services = sorted(name for name in (compose.get("services") or {}) if name != "postgres") or [
        "the application services"
    ]
    pauses = (
        f"{', '.join(services)} are paused while the volumes are copied (the database is not; "
        "it is dumped from a snapshot taken during the pause); the pause is measured"
    )
    return CreatePreview(
        install_dir=str(install_dir),
        directory=where,
        name_pattern=f"{project}-<UTC time>-{release}.cqbackup",
        recipients=chosen,
        contents=[(member, what.strip()) for member, what in contents],
        pauses=pauses,
        problems=problems,
    )


def _installed_compose(install_dir: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe", pure=True).load((install_dir / "docker-compose.yml").read_bytes())
    except (OSError, ValueError):
        return {}
    except Exception:  # noqa: BLE001 - a damaged file: the preview lists no volumes
        return {}
    return data if isinstance(data, dict) else {}


def volumes_to_copy(compose: dict[str, Any]) -> list[str]:
    """The named volumes ``backup create`` copies: all but the database service's."""
    services = compose.get("services") or {}
    database: set[str] = set()
    for spec in (services.get("postgres") or {}).get("volumes") or []:
        database.add(str(spec).partition(":")[0])
    return [str(name) for name in compose.get("volumes") or {} if str(name) not in database]


def create_events(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    cancel: CancelToken,
    recipients: Sequence[str] | None = None,
    directory: Path | None = None,
) -> Iterator[Event]:
    """``backup create``, as its events (the last: ``run.finished`` with ``data.archive``)."""
    from installer.backup.create import BackupCreate

    job = BackupCreate(
        answers,
        secrets,
        cancel=cancel,
        directory=directory,
        recipients=list(recipients) if recipients else None,
    )
    yield from job.run()


# -- verify -------------------------------------------------------------------------------


def verify_events(archive: Path, identity: Path, *, cancel: CancelToken) -> Iterator[Event]:
    """The full ``backup verify`` (hashes, then a restore into a sandbox), as its events."""
    from installer.backup.sandbox import verify_in_sandbox

    try:
        yield from verify_in_sandbox(archive, identity, cancel=cancel)
    except InstallerError as e:
        yield from _failed(e, None)


# -- restore ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestorePreview:
    """What ``restore`` would do with this archive and these answers; nothing is changed."""

    archive: Path
    release: str  # the archive's
    target_release: str  # the answers'
    created: str
    archive_target: str
    install_dir: str
    existing: Installation | None
    replaces: list[str]
    safety_directory: Path | None  # where the safety backup goes (None: no installation)
    safety_recipients: list[str]
    refusals: list[str]

    @property
    def allowed(self) -> bool:
        return not self.refusals


def restore_preview(
    archive: Path, identity: Path, answers: AnswerFile, secrets: LoadedSecrets
) -> RestorePreview:
    """Decrypt the archive's manifest (only) and say what a restore would replace.

    Raises :class:`~installer.errors.InstallerError` when the manifest cannot be read (a
    wrong identity or a damaged archive: exit 4; no such file: exit 2).
    """
    from installer.backup.crypto import recipient_of
    from installer.backup.restore import ArchiveSource, refusals

    source = ArchiveSource.open(archive, identity)
    target_release = _answers_release(answers, secrets)
    problems = refusals(source, answers, target_release)
    existing = installed_at(answers.install_dir)
    install_dir = answers.install_dir
    manifest = source.manifest
    replaces = [
        f"the files in {install_dir}: rendered again from these answers, with the "
        "archive's generated secrets and TLS material"
    ]
    volumes = [str(v["name"]) for v in source.volumes]
    if volumes:
        replaces.append(
            f"named volumes {', '.join(volumes)}: emptied, then filled from the archive"
        )
    tables = source.tables
    rows = sum(int(t.get("rows") or 0) for t in tables.values() if isinstance(t, dict))
    if source.engine == "postgres":
        managed = " on the managed server" if answers.database.managed else ""
        replaces.append(
            f"the PostgreSQL database {answers.database.name}{managed}: dropped and created "
            f"afresh from the dump ({len(tables)} tables, {rows} rows)"
        )
    elif source.engine == "sqlite":
        replaces.append(
            f"the SQLite database: replaced by the archive's copy ({len(tables)} tables, "
            f"{rows} rows)"
        )
    replaces.append("the application services: stopped during the restore, then started again")
    if source.release and source.release != target_release and not problems:
        replaces.append(
            f"then the database is migrated forward from {source.release} to {target_release}"
        )
    safety_directory = None
    safety_recipients: list[str] = []
    if existing is not None:
        safety_directory = backup_directory_for(answers, install_dir)
        safety_recipients = [*answers.backup.recipients, recipient_of(identity)]
    return RestorePreview(
        archive=archive,
        release=source.release,
        target_release=target_release,
        created=str(manifest.get("created") or "?"),
        archive_target=str(manifest.get("target") or "?"),
        install_dir=install_dir,
        existing=existing,
        replaces=replaces,
        safety_directory=safety_directory,
        safety_recipients=list(dict.fromkeys(safety_recipients)),
        refusals=problems,
    )


def _answers_release(answers: AnswerFile, secrets: LoadedSecrets) -> str:
    if not answers.is_compose:
        return answers.release.version or ""
    from installer.targets import target_for

    target: Any = target_for(answers, secrets)
    return str(target.release.version)


def restore_events(
    archive: Path,
    identity: Path,
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    cancel: CancelToken,
) -> Iterator[Event]:
    """``restore ARCHIVE --yes``, as events, in the command line's order.

    Refusals and hashes first (nothing changed), then the safety backup of an existing
    installation (``backup create``'s steps, shown as lines of one step), then the restore
    plan on the runner (its own steps, journal and lock). One ``run.started`` opens the
    stream; the runner's ``run.finished``/``run.failed`` ends it.
    """
    from installer.backup.restore import (
        ArchiveSource,
        RestorePlan,
        RestoreRefused,
        recorded_safety_backup,
        refusals,
    )
    from installer.runner import Runner
    from installer.targets import target_for
    from installer.targets.compose import ComposeTarget

    steps = [
        {"name": PREFLIGHT_STEP, "title": "Check the archive against the answers"},
        {"name": SAFETY_STEP, "title": "Safety backup of the installation"},
    ]
    yield Event(
        "run.started",
        f"restore {archive.name} into {answers.install_dir}",
        data={"steps": steps},
    )
    step: str | None = PREFLIGHT_STEP
    try:
        yield Event("step.started", steps[0]["title"], step=step, data={"title": steps[0]["title"]})
        source = ArchiveSource.open(archive.resolve(), identity.resolve())
        target = target_for(answers, secrets) if answers.is_compose else None
        release = target.release.version if isinstance(target, ComposeTarget) else ""
        problems = refusals(source, answers, release)
        if problems or not isinstance(target, ComposeTarget):
            raise RestoreRefused(
                problems[0] if problems else "restore needs a Compose target",
                problems=problems,
                hint="nothing was changed",
            )
        yield Event("step.output", f"checking every member of {archive.name}", step=step)
        source.verify_hashes()
        yield Event(
            "step.finished",
            f"CodeQual {source.release} ({source.manifest.get('target')}), made "
            f"{source.manifest.get('created')}: every member matches its manifest",
            step=step,
        )
        cancel.raise_if_cancelled()
        step = SAFETY_STEP
        safety: Path | None = None
        if recorded_safety_backup(target.state) is None and target.installed_record() is not None:
            yield Event(
                "step.started", steps[1]["title"], step=step, data={"title": steps[1]["title"]}
            )
            safety = yield from _safety_backup(answers, secrets, identity, cancel)
            yield Event("step.finished", f"safety backup: {safety}", step=step)
        else:
            yield Event("step.skipped", "no installation to keep, or taken already", step=step)
        step = None
        runner = Runner(RestorePlan(target, source, safety_backup=safety).plan(), cancel=cancel)
        for event in runner.run():
            if event.type == "run.started":
                # One run.started per stream: the runner's becomes its heading and steps.
                yield Event("step.output", f"==> {event.message}", data=event.data)
                continue
            yield event
    except InstallerError as e:
        yield from _failed(e, step)


class SafetyBackupFailed(InstallerError):
    """The safety backup before a restore failed: nothing was restored. Exits with the
    backup's own code (2 lock held or no recipient, 3 age or Docker missing, ...)."""

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = ExitCode(exit_code) if exit_code in set(ExitCode) else ExitCode(1)


def _safety_backup(
    answers: AnswerFile, secrets: LoadedSecrets, identity: Path, cancel: CancelToken
) -> Generator[Event, None, Path]:
    """``backup create`` of the installation as it is, its events as lines of the safety
    step; encrypted to the answers' recipients and to the restore's own identity. Returns
    the archive's path (``yield from``)."""
    from installer.backup.create import BackupCreate
    from installer.backup.crypto import recipient_of

    recipients = list(dict.fromkeys([*answers.backup.recipients, recipient_of(identity)]))
    job = BackupCreate(answers, secrets, cancel=cancel, recipients=recipients)
    for event in job.run():
        if event.type in ("step.output", "step.progress"):
            yield Event(
                event.type,
                event.message,
                step=SAFETY_STEP,
                current=event.current,
                total=event.total,
                unit=event.unit,
            )
        elif event.type in ("step.started", "step.finished"):
            yield Event("step.output", f"{event.step}: {event.message}", step=SAFETY_STEP)
        elif event.type == "run.failed":
            raise SafetyBackupFailed(
                f"the safety backup of the installation failed: {event.message}; nothing "
                "was restored",
                exit_code=event.exit_code or 1,
                hint=str(event.data.get("hint") or "") or None,
            )
    if job.exit_code != 0 or job.result is None:
        raise SafetyBackupFailed(
            "the safety backup of the installation failed: nothing was restored",
            exit_code=job.exit_code or 1,
        )
    return job.result.archive


def _failed(error: InstallerError, step: str | None) -> Iterator[Event]:
    data: dict[str, Any] = {}
    if error.hint:
        data["hint"] = error.hint
    member = getattr(error, "member", None)
    if member:
        data["member"] = member
    problems = getattr(error, "problems", None)
    if problems:
        data["problems"] = list(problems)
    if step is not None:
        yield Event("step.failed", error.message, step=step, data=dict(data))
    yield Event("run.failed", error.message, exit_code=int(error.exit_code), data=data)
