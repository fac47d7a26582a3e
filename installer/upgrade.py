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

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from installer.answers import AnswerFile
from installer.credentials import LoadedSecrets
from installer.errors import ExitCode, InstallerError, Interrupted, PrerequisiteError, UsageError
from installer.release import ReleaseManifest, version_key
from installer.statedir import StateDir

# The key a pre-upgrade backup is also encrypted to, so that an automatic rollback never
# waits for the operator's identity. It stays in the state directory (0600) and must never
# be copied into an archive (``backup create`` leaves it out of ``state.tar.zst``).
ROLLBACK_IDENTITY = "rollback-identity.key"


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


def with_release(answers: AnswerFile, version: str) -> AnswerFile:
    """The same answers, asking for release ``version``."""
    document = answers.model_dump(mode="json")
    document.setdefault("release", {})["version"] = version
    return AnswerFile.model_validate(document)


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
    from installer.upgrade_path import decide, known_releases
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

    installed = installed_version(answers)
    if installed is None:
        raise UsageError(
            "nothing is installed here to upgrade",
            hint="install first: codequal-installer apply --answers FILE",
        )
    if installed == target_release.version:
        _say(f"CodeQual {installed} is installed already: nothing to upgrade", as_json)
        return int(ExitCode.OK)
    if version_key(target_release.version) < version_key(installed):
        raise UsageError(
            f"{target_release.version} is older than the installed {installed}",
            hint="to return to the release before the last upgrade, use `codequal-installer "
            "rollback`",
        )

    _say(check_healthy(answers), as_json)
    decision = decide(installed, target_release, known_releases([target_release]))
    if not decision.allowed:
        if force_path is None:
            raise decision.refusal()
        _say(f"warning: {decision.problem}; going on (--force-path: {force_path})", as_json)
    else:
        _say(f"upgrade path: {' -> '.join(decision.path or [])}", as_json)

    new_answers = with_release(answers, target_release.version)
    state = StateDir.for_install_dir(answers.install_dir) if answers.is_compose else None
    # The backup is of what runs now: the installed release's answers (its database image).
    current = with_release(answers, installed)
    backup = PreUpgradeBackup(current, loaded, state) if state is not None else None
    if backup is not None:
        _say(backup.check_disk(), as_json)

    if not yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(
                "refusing to upgrade without confirmation, and there is no terminal to ask on",
                hint="pass --yes to upgrade unattended",
            )
        try:
            confirmed = click.confirm(
                f"Upgrade CodeQual {installed} to {target_release.version}?",
                default=False,
                err=True,
            )
        except click.exceptions.Abort:
            confirmed = False
        if not confirmed:
            raise Interrupted("not confirmed: nothing was changed")

    return _run(
        new_answers,
        loaded,
        bundle=bundle,
        key=key,
        as_json=as_json,
        backup=backup,
        force_path=force_path if not decision.allowed else None,
        path=decision.path,
    )


def _display(as_json: bool) -> Any:
    if as_json:
        from installer.run_display import JsonRunDisplay

        return JsonRunDisplay()
    if sys.stdout.isatty():
        from installer.run_display import LiveRunDisplay

        return LiveRunDisplay()
    from installer.run_display import PlainRunDisplay

    return PlainRunDisplay()


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
) -> int:
    from installer.history import HistoryRecorder
    from installer.install_cli import _signals_cancel
    from installer.runner import CancelToken, Runner
    from installer.targets import target_for

    bundle_path = Path(bundle).resolve() if bundle else None
    if bundle_path is not None and not bundle_path.exists():
        raise UsageError(f"--bundle {bundle}: no such file")
    key_path = Path(key).resolve() if key else None
    target = target_for(answers, loaded, bundle=bundle_path, bundle_key=key_path)
    cancel = CancelToken()
    with _signals_cancel(cancel):
        archive: Path | None = None
        if backup is not None:
            display = _display(as_json)
            try:
                outcome = backup.create(display, cancel)
            finally:
                display.close()
            archive = outcome.archive
            _say(outcome.note, as_json)
        runner = Runner(target.plan(), cancel=cancel)
        recorder = HistoryRecorder(
            runner.plan.state,
            target.release,  # type: ignore[attr-defined]
            kind="upgrade",
            backup=str(archive) if archive else None,
            forced_path=force_path,
        )
        if path:
            recorder.details["path"] = path
        display = _display(as_json)
        try:
            for event in runner.run():
                display.show(event)
        finally:
            display.close()
    assert runner.outcome is not None  # noqa: S101 - run() always sets it
    recorder.finished(runner.outcome)
    return runner.outcome.exit_code
