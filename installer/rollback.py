"""Back to the release before the last upgrade, with its data: ``rollback`` and the
automatic rollback of a failed upgrade.

Every upgrade of a Compose installation makes a verified backup first, encrypted also to
the state's own age key (``state/rollback-identity.key``, 0600, never in an archive), so
that returning to the release before it never waits for the operator's identity. Both
ways back restore that archive (:mod:`installer.backup.restore`, whose plan is the
target's install plan with the restore's steps in their places): the previous images and
configuration, the database (PostgreSQL dropped and restored from the dump, SQLite's file
put back) and the named volumes, then the live tables compared with the manifest.

- :func:`restore_events` is the shared part: the pre-upgrade archive checked (decrypted,
  every member hashed) and restored on the runner, as one stream of events.
- A failed upgrade (:mod:`installer.upgrade`) calls it when the migration may have run.
- ``rollback`` (:func:`run_rollback`, :func:`rollback_events`) is the deliberate return:
  it finds the last upgrade in ``state/history.jsonl`` (or an upgrade that was killed,
  :class:`PendingUpgrade`), says first what will be lost (:func:`rollback_preview`: the
  time since the upgrade, the rows written since, table by table), takes a safety backup
  of the installation as it is, then restores.

:class:`DowntimeClock` measures how long the service was down: from the moment the old
services stopped serving (the upgrade's ``services`` step, or the restore's
``restore-volumes`` step, which stops them) to the moment the restored release passed its
verification through the front door.

Exit codes of ``rollback``: 0 done; 1 the restore failed; 2 nothing to roll back (no
upgrade in the history, the archive or the state's key is gone) or not confirmed without
a terminal; 4 the archive is not verified, or fails its hash check; 130 interrupted (the
same command resumes).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from installer.errors import ExitCode, InstallerError, Interrupted, UsageError
from installer.events import Event
from installer.statedir import StateDir
from installer.upgrade_pending import PENDING_UPGRADE, PendingUpgrade

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets
    from installer.runner import CancelToken, RunOutcome

# The key a pre-upgrade backup is also encrypted to (see the module documentation).
ROLLBACK_IDENTITY = "rollback-identity.key"
PREFLIGHT_STEP = "rollback-preflight"
SAFETY_STEP = "rollback-safety-backup"


class RollbackRefused(UsageError):
    """Nothing to roll back to: no upgrade to undo, or its archive or key is gone (exit 2)."""


class RollbackBackupUnverified(InstallerError):
    """The last upgrade's backup was never verified, or no longer matches (exit 4)."""

    exit_code = ExitCode.BUNDLE_INTEGRITY


def with_release(answers: AnswerFile, version: str) -> AnswerFile:
    """The same answers, asking for release ``version``."""
    from installer.answers import AnswerFile

    document = answers.model_dump(mode="json")
    document.setdefault("release", {})["version"] = version
    return AnswerFile.model_validate(document)


def rollback_identity(state: StateDir) -> Path:
    return state.path / ROLLBACK_IDENTITY


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _seconds_since(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (datetime.now(timezone.utc) - moment).total_seconds())


def duration_text(seconds: float) -> str:
    """``42s``, ``5 min 3 s``, ``2 h 10 min``, ``3 days 4 h``."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h"


# -- how long the service was down -------------------------------------------------------


@dataclass
class DowntimeClock:
    """From the old services stopping (the ``services`` step of an upgrade, or a restore's
    ``restore-volumes``, which stops them) to the last ``verification`` that passed after.
    Fed every event of the upgrade and of the restore, as they happen."""

    down_at: float | None = None
    up_at: float | None = None
    down_ts: str | None = None
    up_ts: str | None = None

    STOPPING_STEPS = ("services", "restore-volumes")

    def observe(self, event: Event) -> None:
        now = time.monotonic()
        if event.type == "step.started" and event.step in self.STOPPING_STEPS:
            if self.down_at is None:
                self.down_at, self.down_ts = now, event.ts
            self.up_at = self.up_ts = None  # down again (or still), until verified
        elif (
            event.type == "step.finished"
            and event.step == "verification"
            and self.down_at is not None
        ):
            self.up_at, self.up_ts = now, event.ts

    @property
    def seconds(self) -> float | None:
        """The downtime; 0 when the services never stopped; None while not up again."""
        if self.down_at is None:
            return 0.0
        if self.up_at is None:
            return None
        return round(self.up_at - self.down_at, 1)

    def sentence(self, serving: str = "the restored release") -> str:
        """How long the service was down, until ``serving`` passed its checks."""
        seconds = self.seconds
        if seconds is None:
            return f"the service is still down ({serving} did not pass its checks)"
        if self.down_at is None:
            return "the service did not stop (the old services kept serving)"
        return (
            f"the service was down for {seconds:.1f}s (from the old services stopping to "
            f"{serving} passing its checks)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "down_at": self.down_ts, "up_at": self.up_ts}


# -- restoring the archive ----------------------------------------------------------------


@dataclass
class RestoreEnding:
    """How :func:`restore_events` ended: the runner's outcome and its final event."""

    exit_code: int
    final: Event
    outcome: RunOutcome | None = None


SafetyBackup = Callable[["CancelToken"], Generator[Event, None, "Path | None"]]


def restore_events(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    archive: Path,
    identity: Path,
    *,
    cancel: CancelToken,
    heading: str,
    safety_backup: SafetyBackup | None = None,
    clock: DowntimeClock | None = None,
) -> Generator[Event, None, RestoreEnding]:
    """``archive`` restored as release ``answers.release`` on the runner, as one run.

    Yields ``run.started`` (``heading``, with the preflight, the safety backup when asked,
    and every step of the restore plan), the preflight (the manifest decrypted with
    ``identity``, refusals, every member hashed), the safety backup's lines, then the
    restore runner's events (its own ``run.started`` as a line). Its final ``run.*`` event
    is not yielded but returned, for the caller to say what the whole operation came to.
    An :class:`InstallerError` before the runner ends the stream the same way.
    """
    from installer.backup.restore import ArchiveSource, RestorePlan, RestoreRefused, refusals
    from installer.runner import Runner
    from installer.targets.compose import ComposeTarget

    steps = [{"name": PREFLIGHT_STEP, "title": "Check the pre-upgrade backup"}]
    if safety_backup is not None:
        steps.append({"name": SAFETY_STEP, "title": "Safety backup of the installation"})
    step: str | None = None
    try:
        target = ComposeTarget(answers, secrets)
        source = ArchiveSource.open(archive, identity)
        restore = RestorePlan(
            target,
            source,
            safety_note="taken before the run"
            if safety_backup is not None
            else "none: the installation is half upgraded, the backup is of its release",
        )
        steps += [{"name": s.name, "title": s.title} for s in restore.plan().steps]
        yield Event("run.started", heading, data={"steps": steps})
        step = PREFLIGHT_STEP
        yield Event("step.started", steps[0]["title"], step=step, data={"title": steps[0]["title"]})
        problems = refusals(source, answers, target.release.version)
        if problems:
            raise RestoreRefused(problems[0], problems=problems, hint="nothing was changed")
        yield Event("step.output", f"checking every member of {archive.name}", step=step)
        source.verify_hashes()
        yield Event(
            "step.finished",
            f"{archive.name}: CodeQual {source.release}, made {source.manifest.get('created')}; "
            "every member matches its manifest",
            step=step,
        )
        cancel.raise_if_cancelled()
        safety: Path | None = None
        if safety_backup is not None:
            step = SAFETY_STEP
            yield Event(
                "step.started", steps[1]["title"], step=step, data={"title": steps[1]["title"]}
            )
            safety = yield from safety_backup(cancel)
            yield Event(
                "step.finished",
                f"safety backup: {safety}" if safety else "nothing to keep",
                step=step,
                data={"archive": str(safety) if safety else None},
            )
        step = None
        restore.safety_backup = safety
        runner = Runner(restore.plan(), cancel=cancel)
        for event in runner.run():
            if clock is not None:
                clock.observe(event)
            if event.type == "run.started":
                yield Event("step.output", f"==> {event.message}", data=event.data)
                continue
            if event.type in ("run.finished", "run.failed"):
                code = event.exit_code if event.exit_code is not None else 1
                return RestoreEnding(int(code), event, runner.outcome)
            yield event
        raise InstallerError("the restore ended without a result")  # run() always ends so
    except InstallerError as e:
        data: dict[str, Any] = {"hint": e.hint} if e.hint else {}
        found = getattr(e, "problems", None)
        if found:
            data["problems"] = list(found)
        if step is not None:
            yield Event("step.failed", e.message, step=step, data=dict(data))
        final = Event("run.failed", e.message, exit_code=int(e.exit_code), data=data)
        return RestoreEnding(int(e.exit_code), final)


# -- what a rollback returns to ----------------------------------------------------------


@dataclass(frozen=True)
class RollbackBasis:
    """The upgrade a rollback undoes: from which release, its archive, when."""

    installed: str | None
    previous: str
    archive: Path
    upgraded_at: str | None
    pending: PendingUpgrade | None = None


def _find_basis(answers: AnswerFile) -> RollbackBasis:
    """The last upgrade's release and archive; raises :class:`RollbackRefused` (exit 2)."""
    from installer.history import history_path, installed_release, read_history

    state = StateDir.for_install_dir(answers.install_dir)
    installed = installed_release(state)
    pending = PendingUpgrade.load(state)
    if pending is not None:
        if not pending.archive:
            raise RollbackRefused(
                f"the interrupted upgrade {pending.from_release} -> {pending.to_release} "
                "made no backup: there is nothing to roll back to",
                hint=f"finish it: codequal-installer upgrade --to {pending.to_release}",
            )
        # Half upgraded: the release being installed is the one rolled back from.
        return RollbackBasis(
            pending.to_release,
            pending.from_release,
            Path(pending.archive),
            pending.started_at,
            pending,
        )
    if installed is None:
        raise RollbackRefused(
            "nothing is installed here to roll back",
            hint="install first: codequal-installer apply --answers FILE",
        )
    upgrade = None
    for entry in reversed(read_history(history_path(state))):
        if entry.kind == "upgrade" and entry.outcome == "finished":
            upgrade = entry
            break
        if entry.kind in ("rollback", "restore", "install"):
            break
    if upgrade is None or not upgrade.from_release:
        raise RollbackRefused(
            f"no upgrade to undo: CodeQual {installed} was not installed by an upgrade, or "
            "its upgrade was rolled back already",
            hint="to go back to an earlier backup, use `codequal-installer restore ARCHIVE`",
        )
    if upgrade.to_release != installed:
        raise RollbackRefused(
            f"the installed release {installed} is not the one the last upgrade installed "
            f"({upgrade.to_release})",
            hint="to go back to an earlier backup, use `codequal-installer restore ARCHIVE`",
        )
    if not upgrade.backup:
        raise RollbackRefused(
            f"the upgrade {upgrade.from_release} -> {upgrade.to_release} made no backup: "
            "there is nothing to roll back to",
            hint="restore an archive of your own with `codequal-installer restore ARCHIVE`",
        )
    return RollbackBasis(installed, upgrade.from_release, Path(upgrade.backup), upgrade.started_at)


def _check_archive(basis: RollbackBasis, state: StateDir) -> None:
    """Refuse a missing archive or key (exit 2) and an unverified archive (exit 4)."""
    from installer.backup.catalog import read_verification

    if not basis.archive.is_file():
        raise RollbackRefused(
            f"the pre-upgrade backup {basis.archive} is missing",
            hint="without it the data cannot be rolled back; restore another archive with "
            "`codequal-installer restore ARCHIVE`",
        )
    if not rollback_identity(state).is_file():
        raise RollbackRefused(
            f"the state's rollback key {rollback_identity(state)} is missing",
            hint=f"restore the archive with your own identity: codequal-installer restore "
            f"{basis.archive} --identity KEY",
        )
    if read_verification(basis.archive) is None:
        raise RollbackBackupUnverified(
            f"the pre-upgrade backup {basis.archive.name} is not verified (no verification "
            "record, or the file changed since it was verified)",
            hint=f"check it: codequal-installer backup verify {basis.archive} --identity KEY; "
            "a rollback uses only a verified backup",
        )


# -- the preview ---------------------------------------------------------------------------


def _rows(count: int | None) -> str:
    return "1 row" if count == 1 else f"{count} rows"


@dataclass(frozen=True)
class TableLoss:
    """One table: its rows in the archive and now."""

    table: str
    rows_then: int | None
    rows_now: int | None
    changed: bool = False  # same count, other content (rows updated since)

    @property
    def written_since(self) -> int | None:
        if self.rows_then is None or self.rows_now is None:
            return self.rows_now if self.rows_then is None else None
        return max(self.rows_now - self.rows_then, 0)

    def sentence(self) -> str | None:
        """What restoring the archive does to this table (None: nothing)."""
        if self.rows_then is None:
            return f"table {self.table}: new since the upgrade, {_rows(self.rows_now)}, removed"
        if self.rows_now is None:
            return (
                f"table {self.table}: gone since the upgrade, comes back ({_rows(self.rows_then)})"
            )
        if self.rows_now > self.rows_then:
            return (
                f"table {self.table}: {_rows(self.rows_now - self.rows_then)} written since the "
                f"upgrade ({self.rows_then} -> {self.rows_now}), lost"
            )
        if self.rows_now < self.rows_then:
            return (
                f"table {self.table}: {_rows(self.rows_then - self.rows_now)} deleted since the "
                f"upgrade ({self.rows_then} -> {self.rows_now}), back again"
            )
        if self.changed:
            return f"table {self.table}: rows changed since the upgrade, changes lost"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows_then": self.rows_then,
            "rows_now": self.rows_now,
            "written_since": self.written_since,
            "changed": self.changed,
        }


@dataclass(frozen=True)
class RollbackPreview:
    """What ``rollback`` would do and lose, computed without changing anything."""

    install_dir: str
    target: str
    installed: str | None
    previous: str | None
    upgraded_at: str | None
    seconds_since_upgrade: float | None
    archive: Path | None
    verified: bool
    tables: tuple[TableLoss, ...] = ()
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    exit_code: int = 0
    interrupted_upgrade: bool = False

    @property
    def allowed(self) -> bool:
        return not self.problems

    def loss_lines(self) -> list[str]:
        """What will be lost, in the operator's words, one line each."""
        if not self.allowed:
            return [f"rollback refused: {p}" for p in self.problems]
        lines = []
        if self.interrupted_upgrade:
            lines.append(
                f"the upgrade {self.previous} -> {self.installed} was interrupted; the "
                f"rollback returns to {self.previous}"
            )
        since = (
            f"{duration_text(self.seconds_since_upgrade)} ago ({self.upgraded_at})"
            if self.seconds_since_upgrade is not None
            else "at an unknown time"
        )
        lines.append(
            f"CodeQual {self.installed} goes back to {self.previous}, with the data of "
            + (f"the pre-upgrade backup {self.archive.name}" if self.archive else "its backup")
            + f", made {since}"
        )
        ago = (
            f" ({duration_text(self.seconds_since_upgrade)} ago)"
            if self.seconds_since_upgrade is not None
            else ""
        )
        lines.append(f"everything written since the upgrade{ago} is lost:")
        said = [s for s in (t.sentence() for t in self.tables) if s]
        if said:
            lines += [f"  {s}" for s in said]
        elif self.tables:
            lines.append("  no rows written since the upgrade (every table equals the backup's)")
        lines += [f"  {n}" for n in self.notes]
        if self.target in ("development", "production"):
            lines.append("  files written into the volumes since the upgrade are replaced too")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "install_dir": self.install_dir,
            "target": self.target,
            "installed": self.installed,
            "previous": self.previous,
            "upgraded_at": self.upgraded_at,
            "seconds_since_upgrade": self.seconds_since_upgrade,
            "archive": str(self.archive) if self.archive else None,
            "verified": self.verified,
            "tables": [t.to_dict() for t in self.tables],
            "notes": list(self.notes),
            "problems": list(self.problems),
            "exit_code": self.exit_code,
            "allowed": self.allowed,
            "interrupted_upgrade": self.interrupted_upgrade,
            "lines": self.loss_lines(),
        }


def _kubernetes(name: str) -> Any:
    """A function of the Kubernetes lifecycle module, or a clear refusal when it is absent."""
    import importlib

    try:
        module = importlib.import_module("installer.targets.kubernetes.lifecycle")
        return getattr(module, name)
    except (ImportError, AttributeError) as e:
        raise UsageError(
            "rollback is not available for the Kubernetes targets in this build",
            hint="roll back with the release record's previous release (apply with it)",
        ) from e


def rollback_preview(answers: AnswerFile, secrets: LoadedSecrets) -> RollbackPreview:
    """What a rollback would return to and lose; changes nothing, asks nothing.

    A refusal is in ``problems`` (with the exit code ``rollback`` would give), never
    raised. The rows written since the upgrade are counted where the live database can
    be read (``notes`` says when it cannot).
    """
    if not answers.is_compose:
        preview: RollbackPreview = _kubernetes("kubernetes_rollback_preview")(answers, secrets)
        return preview
    from installer.history import installed_release

    state = StateDir.for_install_dir(answers.install_dir)
    preview = RollbackPreview(
        install_dir=str(answers.install_dir),
        target=answers.target,
        installed=installed_release(state),
        previous=None,
        upgraded_at=None,
        seconds_since_upgrade=None,
        archive=None,
        verified=False,
    )
    try:
        basis = _find_basis(answers)
        preview = replace(
            preview,
            installed=basis.installed,
            previous=basis.previous,
            upgraded_at=basis.upgraded_at,
            seconds_since_upgrade=_seconds_since(basis.upgraded_at),
            archive=basis.archive,
            interrupted_upgrade=basis.pending is not None,
        )
        _check_archive(basis, state)
    except InstallerError as e:
        return replace(preview, problems=(e.message,), exit_code=int(e.exit_code))
    tables, notes = _table_losses(answers, secrets, basis, state)
    return replace(preview, verified=True, tables=tables, notes=notes)


def _table_losses(
    answers: AnswerFile, secrets: LoadedSecrets, basis: RollbackBasis, state: StateDir
) -> tuple[tuple[TableLoss, ...], tuple[str, ...]]:
    from installer.backup.archive import read_manifest
    from installer.backup.restore import _stat_pair, live_table_stats
    from installer.targets.compose import ComposeTarget

    try:
        manifest = read_manifest(basis.archive, rollback_identity(state))
    except InstallerError as e:
        return (), (f"the backup's row counts could not be read: {e.message}",)
    archived = manifest.database.tables if manifest.database is not None else {}
    then = {name: (s.rows, s.checksum) for name, s in archived.items()}
    try:
        current = with_release(answers, basis.installed) if basis.installed else answers
        live = live_table_stats(ComposeTarget(current, secrets))
    except InstallerError as e:
        return (), (f"the rows written since could not be counted: {e.message}",)
    if not live:
        return (), ("the rows written since could not be counted: no database file found",)
    losses = []
    for name in sorted(set(then) | set(live)):
        rows_then, sum_then = then.get(name, (None, None))
        rows_now, sum_now = _stat_pair(live[name]) if name in live else (None, None)
        losses.append(
            TableLoss(
                name,
                int(rows_then) if rows_then is not None else None,
                int(rows_now) if rows_now is not None else None,
                changed=rows_then is not None and rows_now is not None and sum_then != sum_now,
            )
        )
    return tuple(losses), ()


# -- the rollback ----------------------------------------------------------------------


def rollback_events(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    cancel: CancelToken,
    preview: RollbackPreview | None = None,
) -> Iterator[Event]:
    """The rollback, without asking (the front end confirmed on the preview), as events.

    Ends with exactly one ``run.finished`` or ``run.failed`` carrying the exit code; an
    error is an event, never raised. Installs no signal handler: a front end stops it with
    ``cancel``. Records a ``rollback`` entry in the history, with what was lost (from
    ``preview`` when the front end has it, else counted again).
    """
    if not answers.is_compose:
        yield from _kubernetes("kubernetes_rollback_events")(answers, secrets, cancel=cancel)
        return
    state = StateDir.for_install_dir(answers.install_dir)
    try:
        basis = _find_basis(answers)
        _check_archive(basis, state)
        _abandon_interrupted_upgrade(state, basis)
    except InstallerError as e:
        data: dict[str, Any] = {"hint": e.hint} if e.hint else {}
        yield Event("run.failed", e.message, exit_code=int(e.exit_code), data=data)
        return
    if preview is not None and preview.allowed and preview.archive == basis.archive:
        tables, notes = preview.tables, preview.notes
    else:
        tables, notes = _table_losses(answers, secrets, basis, state)
    lost = {
        "tables": [t.to_dict() for t in tables if t.sentence()],
        "notes": list(notes),
        "seconds_since_upgrade": _seconds_since(basis.upgraded_at),
    }
    yield from _rollback_run(answers, secrets, basis, state, cancel, lost)


def _abandon_interrupted_upgrade(state: StateDir, basis: RollbackBasis) -> None:
    """An upgrade killed mid-run left its journal unfinished: the restore does not resume
    it (it rolls back instead), so it is closed first, under the run lock."""
    from installer.runner import Journal, RunLock

    if basis.pending is None:
        return
    lock = RunLock(state.lock, "rollback")
    lock.acquire()  # RunInProgress (exit 2) when the upgrade is in fact still running
    try:
        journal = Journal.load(state.journal)
        if journal is not None and journal.unfinished and basis.pending.phase == "upgrading":
            journal.status = "failed"
            journal.extra["abandoned_for"] = "rollback"
            journal.save()
    finally:
        lock.release()
    _record_interrupted_upgrade(state, basis.pending)


def _record_interrupted_upgrade(state: StateDir, pending: PendingUpgrade) -> None:
    """The killed upgrade never wrote its history entry: an ``interrupted`` one, once."""
    from installer.history import HistoryEntry, append_entry, history_path, read_history

    entries = read_history(history_path(state))
    for entry in reversed(entries):
        if entry.kind == "upgrade" and entry.started_at == pending.started_at:
            return
        if entry.started_at < pending.started_at:
            break
    with contextlib.suppress(InstallerError):
        append_entry(
            history_path(state),
            HistoryEntry(
                kind="upgrade",
                from_release=pending.from_release,
                to_release=pending.to_release,
                started_at=pending.started_at,
                duration_seconds=_seconds_since(pending.started_at) or 0.0,
                exit_code=int(ExitCode.INTERRUPTED),
                outcome="interrupted",
                backup=pending.archive,
                forced_path=pending.forced_path,
                details={"killed": True, "phase": pending.phase, "then": "rollback"},
            ),
        )


def _rollback_run(  # noqa: PLR0917 - the rollback's facts, each named at the one call
    answers: AnswerFile,
    secrets: LoadedSecrets,
    basis: RollbackBasis,
    state: StateDir,
    cancel: CancelToken,
    lost: dict[str, Any],
) -> Iterator[Event]:
    from installer.history import HistoryEntry, append_entry, history_path

    started_at = _utc_now()
    started = time.monotonic()
    clock = DowntimeClock()
    previous = with_release(answers, basis.previous)
    current = with_release(answers, basis.installed) if basis.installed else answers

    def safety(cancel: CancelToken) -> Generator[Event, None, Path | None]:
        return (yield from _safety_backup(current, secrets, state, cancel))

    heading = f"roll back CodeQual {basis.installed} to {basis.previous} from {basis.archive.name}"
    ending = yield from restore_events(
        previous,
        secrets,
        basis.archive,
        rollback_identity(state),
        cancel=cancel,
        heading=heading,
        safety_backup=None if basis.pending is not None else safety,
        clock=clock,
    )
    details: dict[str, Any] = {"lost": lost, "downtime": clock.to_dict()}
    if ending.exit_code == 0:
        PendingUpgrade.clear(state)
        message = (
            f"rolled back: CodeQual {basis.previous} is running with the data of "
            f"{basis.archive.name}; {clock.sentence(f'CodeQual {basis.previous}')}"
        )
        final = Event(
            "run.finished",
            message,
            exit_code=0,
            data={
                **ending.final.data,
                "downtime_seconds": clock.seconds,
                "restored_from": str(basis.archive),
                "release": basis.previous,
            },
        )
        outcome = "finished"
    else:
        message = f"the rollback to {basis.previous} failed: {ending.final.message}"
        hint = (
            "run the same rollback again: it resumes where it stopped"
            if ending.exit_code in (int(ExitCode.INSTALL_FAILED), int(ExitCode.INTERRUPTED))
            else ending.final.data.get("hint")
        )
        final = replace(
            ending.final,
            message=message,
            data={**ending.final.data, "hint": hint, "downtime_seconds": clock.seconds},
        )
        outcome = "interrupted" if ending.exit_code == int(ExitCode.INTERRUPTED) else "failed"
    if ending.outcome is not None and ending.outcome.status != "refused":
        with contextlib.suppress(InstallerError):
            append_entry(
                history_path(state),
                HistoryEntry(
                    kind="rollback",
                    from_release=basis.installed,
                    to_release=basis.previous,
                    started_at=started_at,
                    duration_seconds=time.monotonic() - started,
                    exit_code=ending.exit_code,
                    outcome=outcome,
                    backup=str(basis.archive),
                    run_id=ending.outcome.run_id if ending.outcome else None,
                    details=details,
                ),
            )
    yield final


def _safety_backup(
    answers: AnswerFile, secrets: LoadedSecrets, state: StateDir, cancel: CancelToken
) -> Generator[Event, None, Path | None]:
    """``backup create`` of the installation as it is, before the rollback replaces its
    data: encrypted to the answers' recipients and to the state's key. Its events become
    lines of the safety step."""
    from installer.backup.create import BackupCreate
    from installer.backup.crypto import recipient_of

    recipients = list(
        dict.fromkeys([*answers.backup.recipients, recipient_of(rollback_identity(state))])
    )
    job = BackupCreate(answers, secrets, cancel=cancel, recipients=recipients)
    for event in job.run():
        if event.type in ("step.output", "step.progress"):
            yield replace(event, step=SAFETY_STEP, data={})
        elif event.type in ("step.started", "step.finished"):
            yield Event("step.output", f"{event.step}: {event.message}", step=SAFETY_STEP)
        elif event.type == "run.failed":
            raise InstallerError(
                f"the safety backup of the installation failed: {event.message}; nothing "
                "was rolled back",
                hint=str(event.data.get("hint") or "") or None,
            )
    if job.exit_code != 0 or job.result is None:
        raise InstallerError(
            "the safety backup of the installation failed: nothing was rolled back"
        )
    return Path(job.result.archive)


# -- the command --------------------------------------------------------------------------


def display_for(as_json: bool) -> Any:
    """The run display the command line uses: NDJSON, a live view, or plain lines."""
    if as_json:
        from installer.run_display import JsonRunDisplay

        return JsonRunDisplay()
    if sys.stdout.isatty():
        from installer.run_display import LiveRunDisplay

        return LiveRunDisplay()
    from installer.run_display import PlainRunDisplay

    return PlainRunDisplay()


def run_rollback(answers_path: str, secrets_path: str | None, *, yes: bool, as_json: bool) -> int:
    """``codequal-installer rollback``: the exit code."""
    from installer.install_cli import _json_failure

    try:
        return _rollback(answers_path, secrets_path, yes=yes, as_json=as_json)
    except InstallerError as e:
        if as_json:
            _json_failure(e)
        raise


def _rollback(answers_path: str, secrets_path: str | None, *, yes: bool, as_json: bool) -> int:
    from installer.install_cli import _signals_cancel
    from installer.runner import CancelToken
    from installer.validation import load_answers, load_secrets

    answers = load_answers(answers_path)
    loaded = load_secrets(secrets_path)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    preview = rollback_preview(answers, loaded)
    if not preview.allowed:
        error_class: type[InstallerError] = (
            RollbackBackupUnverified
            if preview.exit_code == int(ExitCode.BUNDLE_INTEGRITY)
            else RollbackRefused
        )
        raise error_class(preview.problems[0], hint="nothing was changed")
    if as_json:
        click.echo(
            Event(
                "step.output",
                "what the rollback loses: " + "; ".join(preview.loss_lines()),
                step="rollback-preview",
                data={"preview": preview.to_dict()},
            ).to_json()
        )
    else:
        for line in preview.loss_lines():
            click.echo(line, err=True)
    if not yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(
                "refusing to roll back without confirmation, and there is no terminal to ask on",
                hint="pass --yes to roll back unattended",
            )
        try:
            confirmed = click.confirm(
                f"Roll back CodeQual {preview.installed} to {preview.previous}, losing the above?",
                default=False,
                err=True,
            )
        except click.exceptions.Abort:
            confirmed = False
        if not confirmed:
            raise Interrupted("not confirmed: nothing was changed")
    cancel = CancelToken()
    display = display_for(as_json)
    code = int(ExitCode.INSTALL_FAILED)
    with _signals_cancel(cancel):
        try:
            for event in rollback_events(answers, loaded, cancel=cancel, preview=preview):
                display.show(event)
                if event.type in ("run.finished", "run.failed") and event.exit_code is not None:
                    code = int(event.exit_code)
        finally:
            display.close()
    return code


__all__ = [
    "PENDING_UPGRADE",
    "ROLLBACK_IDENTITY",
    "DowntimeClock",
    "PendingUpgrade",
    "RestoreEnding",
    "RollbackBackupUnverified",
    "RollbackPreview",
    "RollbackRefused",
    "TableLoss",
    "restore_events",
    "rollback_events",
    "rollback_preview",
    "run_rollback",
    "with_release",
]
