"""``codequal-installer upgrade``: from the installed release to ``--to VERSION``, checked first.

Before anything changes, in this order:

1. something is installed here, and it is not already ``VERSION`` (or newer: going back is
   ``rollback``'s work);
2. the installation is healthy (every service up and healthy: an upgrade started on a sick
   installation cannot tell its own failure from the old one);
3. the path is allowed (:mod:`installer.upgrade_path`): skipping a required stop exits 2
   naming the stop and the path to follow, unless ``--force-path REASON``, whose reason
   goes into the history;
4. free disk is at least twice the last backup, and a pre-upgrade backup is made
   (:mod:`installer.backup`), also encrypted to a key kept in the state, and its members
   checked against its manifest (:class:`PreUpgradeBackup`).

Then it runs exactly the plan ``apply`` runs with ``release.version`` set to ``VERSION``
(its migration, verification and automatic rollback on failure), and appends an
``upgrade`` entry to ``state/history.jsonl`` with the backup it relied on.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from installer.answers import AnswerFile
from installer.credentials import LoadedSecrets
from installer.errors import ExitCode, InstallerError, Interrupted, PrerequisiteError, UsageError
from installer.events import Event
from installer.release import ReleaseManifest, version_key
from installer.rollback import ROLLBACK_IDENTITY, display_for, with_release
from installer.statedir import StateDir
from installer.upgrade_pending import PendingUpgrade

__all__ = ["ROLLBACK_IDENTITY", "PreUpgradeBackup", "run_upgrade", "with_release"]


class UnhealthyInstallation(PrerequisiteError):
    """The installation is not healthy: an upgrade would start from an unknown state."""


@dataclass
class BackupOutcome:
    archive: Path | None
    verified: bool
    note: str


class PreUpgradeBackup:
    """The backup half of an upgrade: free disk, then an archive whose members are checked."""

    def __init__(self, answers: AnswerFile, secrets: LoadedSecrets, state: StateDir) -> None:
        self.answers = answers
        self.secrets = secrets
        self.state = state

    def directory(self) -> Path:
        return Path(str(self.answers.backup.directory_for(self.answers.install_dir)))

    def last_backup(self) -> Any | None:
        """The newest archive of ``backup list`` (an ``ArchiveEntry``), or None."""
        from installer.backup.catalog import list_archives

        entries = list_archives(self.directory())
        return entries[0] if entries else None

    def check_disk(self) -> str:
        """Refuse (exit 3) when free disk where archives go is under twice the last one."""
        last = self.last_backup()
        if last is None:
            return "free disk: no earlier backup to measure against"
        return check_free_space(self.directory(), int(last.size))

    def create(self, display: Any, cancel: Any) -> BackupOutcome:
        """Make the pre-upgrade archive and check it against its manifest; its path."""
        from installer.backup.archive import verify_hashes
        from installer.backup.catalog import write_verification
        from installer.backup.create import BackupCreate
        from installer.backup.crypto import recipient_of

        identity = self.rollback_identity()
        recipients = [*self.answers.backup.recipients, recipient_of(identity)]
        job = BackupCreate(self.answers, self.secrets, cancel=cancel, recipients=recipients)
        for event in job.run():
            display.show(event)
        if job.exit_code != 0 or job.result is None:
            raise InstallerError(
                "the pre-upgrade backup failed: nothing was changed",
                hint="fix what the backup reported, then run the upgrade again",
            )
        archive = Path(job.result.archive)
        manifest = verify_hashes(archive, identity)
        write_verification(archive, manifest, "quick", {"purpose": "pre-upgrade"})
        return BackupOutcome(archive, True, f"pre-upgrade backup {archive} (verified)")

    def rollback_identity(self) -> Path:
        """The state's own age identity (0600), made the first time it is needed."""
        path = self.state.path / ROLLBACK_IDENTITY
        if not path.exists():
            from installer.backup.crypto import keygen

            self.state.ensure()
            keygen(path)
        return path


def check_free_space(directory: Path, last_backup_size: int) -> str:
    """Exit 3 unless the file system of ``directory`` has twice ``last_backup_size`` free."""
    from installer.sizes import human_size

    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    needed = 2 * last_backup_size
    if free < needed:
        raise PrerequisiteError(
            f"free disk at {probe} is {human_size(free)}; the upgrade needs at least "
            f"{human_size(needed)} (twice the last backup, {human_size(last_backup_size)})",
            hint=f"free some space on the file system that holds {probe}, then run again",
        )
    return f"free disk: {human_size(free)} (needs {human_size(needed)})"


def installed_version(answers: AnswerFile) -> str | None:
    """The release installed for ``answers`` (Compose: result.json; Kubernetes: the record)."""
    if answers.is_compose:
        from installer.history import installed_release

        return installed_release(StateDir.for_install_dir(answers.install_dir))
    from installer.targets.kubernetes.plan import kubernetes_status

    status = kubernetes_status(answers)
    return str(status["version"]) if status.get("installed") else None


def check_healthy(answers: AnswerFile) -> str:
    """Refuse (exit 3) unless every service of the installation is up and healthy."""
    if answers.is_compose:
        from installer.status import installation_status

        status = installation_status(Path(answers.install_dir))
        sick = [
            f"{s.name} ({s.state}, {s.health or 'no health check'})"
            for s in status.services
            if not s.ok
        ]
        if status.docker_error:
            sick.append(status.docker_error)
        healthy = status.healthy
    else:
        from installer.targets.kubernetes.plan import kubernetes_status

        kube = kubernetes_status(answers)
        sick = [f"{s['name']} ({s['state']})" for s in kube.get("services", []) if not s["healthy"]]
        healthy = bool(kube.get("healthy"))
    if not healthy:
        raise UnhealthyInstallation(
            "the installation is not healthy: " + ("; ".join(sick) or "no service is running"),
            hint="bring it back first (`codequal-installer apply` with the current answers, or "
            "`status` to see what is wrong), then upgrade",
        )
    return "installation healthy"


def run_upgrade(
    answers_path: str,
    secrets_path: str | None,
    *,
    to: str,
    bundle: str | None,
    key: str | None,
    force_path: str | None,
    yes: bool,
    as_json: bool,
) -> int:
    """``codequal-installer upgrade``: the exit code."""
    from installer.install_cli import _json_failure

    try:
        return _upgrade(
            answers_path,
            secrets_path,
            to=to,
            bundle=bundle,
            key=key,
            force_path=force_path,
            yes=yes,
            as_json=as_json,
        )
    except InstallerError as e:
        if as_json:
            _json_failure(e)
        raise


def _say(message: str, as_json: bool) -> None:
    if as_json:
        from installer.events import Event

        click.echo(Event("step.output", message, step="upgrade").to_json())
    else:
        click.echo(message, err=True)


def _upgrade(
    answers_path: str,
    secrets_path: str | None,
    *,
    to: str,
    bundle: str | None,
    key: str | None,
    force_path: str | None,
    yes: bool,
    as_json: bool,
) -> int:
    from installer.release import load_release
    from installer.validation import load_answers, load_secrets

    if force_path is not None and not force_path.strip():
        raise UsageError("--force-path needs a reason (it is recorded in the history)")
    answers = load_answers(answers_path)
    loaded = load_secrets(secrets_path)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    if bundle is not None:  # the bundle's own release, whether this installer ships it or not
        from installer.release import bundle_release

        target_release: ReleaseManifest = bundle_release(
            Path(bundle), version=to, key=Path(key) if key else None, asked_by="--to"
        )
    else:
        target_release = load_release(to)

    state = StateDir.for_install_dir(answers.install_dir) if answers.is_compose else None
    pending = PendingUpgrade.load(state) if state is not None else None
    if pending is not None and state is not None:
        return _resume(
            answers, loaded, pending, state, target_release,
            bundle=bundle, key=key, yes=yes, as_json=as_json,
        )  # fmt: skip

    check = check_upgrade(
        answers, loaded, target_release, force_path=force_path, say=lambda m: _say(m, as_json)
    )
    if check is None:
        return int(ExitCode.OK)
    _confirm(yes, f"Upgrade CodeQual {check.installed} to {target_release.version}?")
    return _run(
        check.new_answers,
        loaded,
        bundle=bundle,
        key=key,
        as_json=as_json,
        backup=check.backup,
        force_path=check.force_path,
        path=check.decision.path,
        kube_current=check.kube_current,
    )


@dataclass
class UpgradeCheck:
    """What an upgrade will do, found before anything changes (and before it is confirmed)."""

    installed: str
    target: ReleaseManifest
    decision: Any  # installer.upgrade_path.UpgradeDecision
    new_answers: AnswerFile
    backup: PreUpgradeBackup | None  # None: no Compose state (Kubernetes)
    force_path: str | None  # the reason recorded, when a refused path is forced
    # Kubernetes: the installed release's answers, whose database the dump Job reads.
    kube_current: AnswerFile | None = None


def check_upgrade(
    answers: AnswerFile,
    loaded: LoadedSecrets,
    target_release: ReleaseManifest,
    *,
    force_path: str | None,
    say: Callable[[str], None],
) -> UpgradeCheck | None:
    """Every check before an upgrade, in order, each one passed said; None: nothing to do.

    Raises, changing nothing: nothing installed or an older target (2), unhealthy (3), a
    refused path without ``force_path`` (2), too little free disk (3).
    """
    from installer.upgrade_path import decide, known_releases

    state = StateDir.for_install_dir(answers.install_dir) if answers.is_compose else None
    installed = installed_version(answers)
    if installed is None:
        raise UsageError(
            "nothing is installed here to upgrade",
            hint="install first: codequal-installer apply --answers FILE",
        )
    if installed == target_release.version:
        say(f"CodeQual {installed} is installed already: nothing to upgrade")
        return None
    if version_key(target_release.version) < version_key(installed):
        raise UsageError(
            f"{target_release.version} is older than the installed {installed}",
            hint="to return to the release before the last upgrade, use `codequal-installer "
            "rollback`",
        )

    say(check_healthy(answers))
    decision = decide(installed, target_release, known_releases([target_release]))
    if not decision.allowed:
        if force_path is None:
            raise decision.refusal()
        say(f"warning: {decision.problem}; going on (--force-path: {force_path})")
    else:
        say(f"upgrade path: {' -> '.join(decision.path or [])}")

    new_answers = with_release(answers, target_release.version)
    # The backup is of what runs now: the installed release's answers (its database image).
    current = with_release(answers, installed)
    backup = PreUpgradeBackup(current, loaded, state) if state is not None else None
    if backup is not None:
        say(backup.check_disk())

    return UpgradeCheck(
        installed=installed,
        target=target_release,
        decision=decision,
        new_answers=new_answers,
        backup=backup,
        force_path=force_path if not decision.allowed else None,
        kube_current=current if not answers.is_compose else None,
    )


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(
            "refusing to upgrade without confirmation, and there is no terminal to ask on",
            hint="pass --yes to upgrade unattended",
        )
    try:
        confirmed = click.confirm(question, default=False, err=True)
    except click.exceptions.Abort:
        confirmed = False
    if not confirmed:
        raise Interrupted("not confirmed: nothing was changed")


def _resume(
    answers: AnswerFile,
    loaded: LoadedSecrets,
    pending: PendingUpgrade,
    state: StateDir,
    target_release: ReleaseManifest,
    *,
    bundle: str | None,
    key: str | None,
    yes: bool,
    as_json: bool,
) -> int:
    """An earlier upgrade was killed: finish it (or the rollback it had begun), and say so.

    Its pre-upgrade backup and checks stand: the installation is half upgraded, so neither
    a health check nor a new backup would mean anything now.
    """
    if pending.to_release != target_release.version:
        raise UsageError(
            f"the upgrade {pending.from_release} -> {pending.to_release} (started "
            f"{pending.started_at}) was interrupted and is not finished",
            hint=f"finish it with `codequal-installer upgrade --to {pending.to_release}`, or "
            f"return to {pending.from_release} with `codequal-installer rollback`",
        )
    from installer.runner import Journal

    archive = Path(pending.archive) if pending.archive else None
    journal = Journal.load(state.journal)
    upgrade_failed = journal is not None and journal.status in ("failed", "rollback_failed")
    if archive is not None and (pending.phase == "restoring" or upgrade_failed):
        _say(
            f"the upgrade {pending.from_release} -> {pending.to_release} had failed and was "
            f"being rolled back when it stopped: finishing the rollback to "
            f"{pending.from_release} from {archive.name if archive else '?'}",
            as_json,
        )
        _confirm(yes, f"Finish rolling back to CodeQual {pending.from_release}?")
        return _restore_after_failure(
            answers, loaded, pending, state, as_json=as_json, reason="the upgrade had failed"
        )
    _say(
        f"resuming the upgrade {pending.from_release} -> {pending.to_release} that was "
        f"interrupted (started {pending.started_at}); its pre-upgrade backup: "
        f"{archive or 'none'}",
        as_json,
    )
    _confirm(yes, f"Resume the upgrade of CodeQual {pending.from_release} to {pending.to_release}?")
    return _run(
        with_release(answers, target_release.version),
        loaded,
        bundle=bundle,
        key=key,
        as_json=as_json,
        backup=None,
        force_path=pending.forced_path,
        path=pending.path,
        resumed=pending,
    )


def _database_touched(state: StateDir) -> bool:
    """The run got as far as the database step (the migration may have run)."""
    from installer.runner import Journal

    journal = Journal.load(state.journal)
    return journal is not None and journal.step("database").changed


@dataclass
class Frontend:
    """How a front end (the wizard) shows and stops an upgrade instead of the terminal:
    ``display(phase)`` makes what shows the events of ``"backup"`` (the pre-upgrade backup),
    ``"upgrade"`` (the runner's plan) and ``"restore"`` (a failed upgrade's data coming
    back); ``say`` shows a line between them; ``cancel`` stops the run at its next
    checkpoint. No signal handler is installed: it may run in a worker thread."""

    cancel: Any  # CancelToken
    display: Callable[[str], Any]
    say: Callable[[str], None]


def perform_upgrade(
    check: UpgradeCheck,
    loaded: LoadedSecrets,
    *,
    bundle: str | None,
    key: str | None,
    frontend: Frontend,
) -> int:
    """The upgrade after :func:`check_upgrade` and the confirmation, shown through
    ``frontend``: exactly what the command runs. The exit code."""
    return _run(
        check.new_answers,
        loaded,
        bundle=bundle,
        key=key,
        as_json=False,
        backup=check.backup,
        force_path=check.force_path,
        path=check.decision.path,
        frontend=frontend,
        kube_current=check.kube_current,
    )


def _shown(frontend: Frontend | None, phase: str, as_json: bool) -> Any:
    return frontend.display(phase) if frontend is not None else display_for(as_json)


def _guarded(frontend: Frontend | None, cancel: Any) -> Any:
    """SIGINT/SIGTERM cancel the run on the terminal; a front end has its own way."""
    from installer.install_cli import _signals_cancel

    return _signals_cancel(cancel) if frontend is None else contextlib.nullcontext()


def _run(
    answers: AnswerFile,
    loaded: LoadedSecrets,
    *,
    bundle: str | None,
    key: str | None,
    as_json: bool,
    backup: PreUpgradeBackup | None,
    force_path: str | None,
    path: list[str] | None,
    resumed: PendingUpgrade | None = None,
    frontend: Frontend | None = None,
    kube_current: AnswerFile | None = None,
) -> int:
    from installer.history import HistoryRecorder, installed_release, utc_now
    from installer.rollback import DowntimeClock
    from installer.runner import CancelToken, Runner
    from installer.targets import target_for

    bundle_path = Path(bundle).resolve() if bundle else None
    if bundle_path is not None and not bundle_path.exists():
        raise UsageError(f"--bundle {bundle}: no such file")
    key_path = Path(key).resolve() if key else None
    target = target_for(answers, loaded, bundle=bundle_path, bundle_key=key_path)
    cancel = frontend.cancel if frontend is not None else CancelToken()
    with _guarded(frontend, cancel):
        archive: Path | None = None
        if resumed is not None:
            archive = Path(resumed.archive) if resumed.archive else None
        elif backup is not None:
            display = _shown(frontend, "backup", as_json)
            try:
                outcome = backup.create(display, cancel)
            finally:
                display.close()
            archive = outcome.archive
            if frontend is not None:
                frontend.say(outcome.note)
            else:
                _say(outcome.note, as_json)
        kube_backup = None
        if kube_current is not None:
            # Kubernetes: the dump is made by a Job in the cluster (in-cluster database), the
            # release record is kept for rollback; a managed database is said to stay as is.
            from installer.targets.kubernetes.lifecycle import kubernetes_pre_upgrade_backup

            display = _shown(frontend, "backup", as_json)
            try:
                kube_backup = kubernetes_pre_upgrade_backup(
                    kube_current,
                    loaded,
                    to_version=str(answers.release.version),
                    display=display,
                    cancel=cancel,
                )
            finally:
                display.close()
            if frontend is not None:
                frontend.say(kube_backup.note)
            else:
                _say(kube_backup.note, as_json)
        runner = Runner(target.plan(), cancel=cancel)
        state = runner.plan.state
        pending: PendingUpgrade | None = None
        if answers.is_compose:
            before = resumed.from_release if resumed else installed_release(state)
            pending = resumed or PendingUpgrade(
                from_release=str(before or ""),
                to_release=str(answers.release.version),
                archive=str(archive) if archive else None,
                started_at=utc_now(),
                forced_path=force_path,
                path=path,
            )
            pending.save(state)
        recorder = HistoryRecorder(
            state,
            target.release,  # type: ignore[attr-defined]
            kind="upgrade",
            backup=str(archive) if archive else (kube_backup.label if kube_backup else None),
            forced_path=force_path,
        )
        if resumed is not None:
            recorder.before = resumed.from_release
            recorder.details["resumed"] = True
        if path:
            recorder.details["path"] = path
        if kube_backup is not None:
            recorder.details.update(kube_backup.details())
        clock = DowntimeClock()
        display = _shown(frontend, "upgrade", as_json)
        restore = False
        try:
            for raw in runner.run():
                clock.observe(raw)
                event = raw
                if event.type == "run.failed":
                    restore = (
                        pending is not None
                        and archive is not None
                        and event.exit_code == int(ExitCode.INSTALL_FAILED)
                        and _database_touched(state)
                    )
                    if restore:
                        # The run is not over: its data comes back next, then the last word.
                        event = Event(
                            "rollback.started",
                            f"the upgrade failed: {event.message}. Restoring CodeQual "
                            f"{pending.from_release if pending else '?'} with its database and "
                            f"volumes from the pre-upgrade backup",
                            data=event.data,
                        )
                elif event.type == "run.finished":
                    event = _with_downtime(event, clock, f"CodeQual {answers.release.version}")
                display.show(event)
        finally:
            display.close()
    assert runner.outcome is not None  # noqa: S101 - run() always sets it
    if restore and pending is not None:
        recorder.details["upgrade_error"] = (
            runner.outcome.error.message if runner.outcome.error else None
        )
        return _restore_after_failure(
            answers,
            loaded,
            pending,
            state,
            as_json=as_json,
            reason=recorder.details["upgrade_error"] or "the upgrade failed",
            clock=clock,
            recorder=recorder,
            frontend=frontend,
        )
    if kube_backup is not None and kube_current is not None and runner.outcome.exit_code == 1:
        # The runner re-applied the previous release's objects; now its data.
        recorder.details["database_restore"] = _kube_restore(
            kube_current, loaded, kube_backup, as_json=as_json, cancel=cancel, frontend=frontend
        )
    if clock.seconds:
        recorder.details["downtime"] = clock.to_dict()
    recorder.finished(runner.outcome)
    if pending is not None and runner.outcome.status != "interrupted":
        PendingUpgrade.clear(state)
    return runner.outcome.exit_code


def _with_downtime(event: Event, clock: Any, serving: str) -> Event:
    """The run's last event, saying how long the service was down."""
    from dataclasses import replace

    if clock.down_at is None:
        return event
    return replace(
        event,
        message=f"{event.message}; {clock.sentence(serving)}",
        data={**event.data, "downtime_seconds": clock.seconds},
    )


def _restore_after_failure(
    answers: AnswerFile,
    loaded: LoadedSecrets,
    pending: PendingUpgrade,
    state: StateDir,
    *,
    as_json: bool,
    reason: str,
    clock: Any = None,
    recorder: Any = None,
    frontend: Frontend | None = None,
) -> int:
    """The failed upgrade's data rollback: the pre-upgrade archive restored as the release
    it was made with, with the state's own key (no operator identity needed).

    The upgrade's exit code stays 1 (it failed) when the restore worked; the last event
    says so, with what came back and how long the service was down.
    """
    from dataclasses import replace

    from installer.history import HistoryRecorder
    from installer.rollback import DowntimeClock, restore_events, rollback_identity
    from installer.runner import CancelToken, RunOutcome

    clock = clock or DowntimeClock()
    if recorder is None:
        recorder = HistoryRecorder(
            state, pending.to_release, kind="upgrade", backup=pending.archive
        )
        recorder.before = pending.from_release
        recorder.details["resumed"] = True
    pending.phase = "restoring"
    pending.save(state)
    archive = Path(str(pending.archive))
    previous = with_release(answers, pending.from_release)
    cancel = frontend.cancel if frontend is not None else CancelToken()
    display = _shown(frontend, "restore", as_json)
    try:
        with _guarded(frontend, cancel):
            stream = restore_events(
                previous,
                loaded,
                archive,
                rollback_identity(state),
                cancel=cancel,
                heading=(
                    f"restore CodeQual {pending.from_release} and its data from the "
                    f"pre-upgrade backup {archive.name}"
                ),
                clock=clock,
            )
            while True:
                try:
                    display.show(next(stream))
                except StopIteration as stop:
                    ending = stop.value
                    break
        restored = ending.exit_code == 0
        details = {
            "downtime_seconds": clock.seconds,
            "restored_from": str(archive),
            "release": pending.from_release,
            "upgrade_error": reason,
        }
        if restored:
            final = Event(
                "run.failed",
                f"the upgrade to {pending.to_release} failed ({reason}); CodeQual "
                f"{pending.from_release} is back, its database and volumes restored from the "
                f"pre-upgrade backup {archive.name}; {clock.sentence()}",
                exit_code=int(ExitCode.INSTALL_FAILED),
                data={**ending.final.data, **details, "data_restored": True},
            )
            code = int(ExitCode.INSTALL_FAILED)
        else:
            code = (
                ending.exit_code
                if ending.exit_code in (int(ExitCode.BUNDLE_INTEGRITY), int(ExitCode.INTERRUPTED))
                else int(ExitCode.INSTALL_FAILED)
            )
            final = replace(
                ending.final,
                message=(
                    f"the upgrade to {pending.to_release} failed ({reason}), and restoring the "
                    f"pre-upgrade backup {archive.name} failed too: {ending.final.message}"
                ),
                exit_code=code,
                data={
                    **ending.final.data,
                    **details,
                    "data_restored": False,
                    "hint": "run the same upgrade (or `codequal-installer rollback`) again: "
                    "it finishes the rollback from where it stopped",
                },
            )
        display.show(final)
    finally:
        display.close()
    recorder.details["downtime"] = clock.to_dict()
    recorder.details["data_restored"] = restored
    recorder.finished(
        RunOutcome(
            code,
            "failed" if restored else "rollback_failed",
            ending.outcome.run_id if ending.outcome else None,
        )
    )
    if restored:
        PendingUpgrade.clear(state)
    return code


def _kube_restore(
    answers: AnswerFile,
    loaded: LoadedSecrets,
    backup: Any,
    *,
    as_json: bool,
    cancel: Any,
    frontend: Frontend | None,
) -> str:
    """After the runner put the previous release's objects back: its data (the dump)."""
    from installer.targets.kubernetes.lifecycle import kubernetes_restore_after_failed_upgrade

    def say(message: str) -> None:
        if frontend is not None:
            frontend.say(message)
        else:
            _say(message, as_json)

    display = _shown(frontend, "restore", as_json)
    try:
        kubernetes_restore_after_failed_upgrade(
            answers, loaded, backup, display=display, cancel=cancel
        )
    except InstallerError as e:
        say(f"error: the database was NOT restored: {e.message}")
        if e.hint:
            say(f"hint: {e.hint}")
        return f"failed: {e.message}"
    finally:
        display.close()
    return "not rolled back (managed database)" if backup.path is None else "restored"
