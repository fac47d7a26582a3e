"""The ``restore`` command: checks that change nothing, then the restore plan on the runner.

In order, before anything on this host is touched:

1. the answers and secrets are loaded and validated (exit 2);
2. the archive's manifest is decrypted with the identity (a wrong key: exit 4);
3. the archive is refused, exit 2, when it is from a newer release than the answers' or
   holds another database engine than the answers ask for;
4. every member is decrypted and hashed against the manifest (damage: exit 4);
5. without ``--yes``, the operator confirms (no terminal: exit 2, as ``apply``).

Then :class:`~installer.backup.restore.RestorePlan` runs on the runner exactly as ``apply``
does: journal, lock, resume, events (``--json``: NDJSON), exit codes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from installer.backup.restore import SAFETY_BACKUP_LINE
from installer.errors import InstallerError, Interrupted, UsageError


def run_restore(
    archive: str,
    *,
    answers_path: str,
    identity: str,
    secrets_path: str | None,
    yes: bool,
    as_json: bool,
) -> int:
    """``codequal-installer restore``: returns the exit code."""
    from installer.install_cli import _json_failure

    try:
        return _restore(
            Path(archive),
            answers_path=answers_path,
            identity=Path(identity),
            secrets_path=secrets_path,
            yes=yes,
            as_json=as_json,
        )
    except InstallerError as e:
        if as_json:
            _json_failure(e)
        raise


def _restore(
    archive: Path,
    *,
    answers_path: str,
    identity: Path,
    secrets_path: str | None,
    yes: bool,
    as_json: bool,
) -> int:
    from installer.backup.restore import ArchiveSource, RestorePlan, RestoreRefused, refusals
    from installer.install_cli import _signals_cancel
    from installer.runner import CancelToken, Runner
    from installer.targets import target_for
    from installer.targets.compose import ComposeTarget
    from installer.validation import load_answers, load_secrets

    answers = load_answers(answers_path)
    loaded = load_secrets(secrets_path)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not archive.is_file():
        raise UsageError(f"{archive}: no such archive")
    if not identity.is_file():
        raise UsageError(
            f"{identity}: no such identity file",
            hint="the age identity (private key) the archive was encrypted to",
        )
    source = ArchiveSource.open(archive.resolve(), identity.resolve())
    target = target_for(answers, loaded) if answers.is_compose else None
    if isinstance(target, ComposeTarget):
        release = target.release.version
    else:
        release = answers.release.version or ""
    problems = refusals(source, answers, release)
    if problems or not isinstance(target, ComposeTarget):
        raise RestoreRefused(
            problems[0] if problems else "restore needs a Compose target",
            problems=problems,
            hint="nothing was changed",
        )
    _say(as_json, f"checking every member of {archive.name} against its manifest")
    source.verify_hashes()
    _say(
        as_json,
        f"{archive.name}: CodeQual {source.release} ({source.manifest.get('target')}), "
        f"made {source.manifest.get('created')}; every member matches its manifest",
    )

    if not yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(
                "refusing to restore without confirmation, and there is no terminal to ask on",
                hint="pass --yes to restore unattended",
            )
        existing = target.installed_record() is not None
        click.echo(
            f"About to restore {archive.name} into {target.install_dir}"
            + (
                " over the installation there (a safety backup of it is taken first)"
                if existing
                else ""
            )
            + ".",
            err=True,
        )
        try:
            confirmed = click.confirm("Restore?", default=False, err=True)
        except click.exceptions.Abort:
            confirmed = False
        if not confirmed:
            raise Interrupted("not confirmed: nothing was changed")

    cancel = CancelToken()
    if as_json:
        from installer.run_display import JsonRunDisplay

        display: Any = JsonRunDisplay()
    elif sys.stdout.isatty():
        from installer.run_display import LiveRunDisplay

        display = LiveRunDisplay()
    else:
        from installer.run_display import PlainRunDisplay

        display = PlainRunDisplay()
    safety: str | None = None
    with _signals_cancel(cancel):
        try:
            backup = _take_safety_backup(
                answers, loaded, identity, target, display=display, cancel=cancel
            )
            restore = RestorePlan(target, source, safety_backup=backup)
            runner = Runner(restore.plan(), cancel=cancel)
            for event in runner.run():
                display.show(event)
                if event.step == "restore-safety-backup" and event.message.startswith(
                    SAFETY_BACKUP_LINE
                ):
                    safety = event.message.split(":", 1)[1].strip()
        finally:
            display.close()
    assert runner.outcome is not None  # noqa: S101 - run() always sets it
    if safety and not as_json:
        click.echo(f"{SAFETY_BACKUP_LINE} {safety}", err=True)
    return runner.outcome.exit_code


def _say(as_json: bool, message: str) -> None:
    if as_json:
        from installer.events import Event

        click.echo(Event("step.output", message, step="restore-preflight").to_json())
    else:
        click.echo(message, err=True)


def _recipient_of(identity: Path) -> str:
    """The age recipient of ``identity`` (``age-keygen -y``)."""
    from installer.backup.crypto import age_program

    try:
        result = subprocess.run(
            [age_program("age-keygen"), "-y", str(identity)],
            capture_output=True,
            check=True,
            text=True,
        )
    except subprocess.CalledProcessError as e:
        raise UsageError(f"{identity} is not an age identity file") from e
    return result.stdout.strip().splitlines()[0]


def _take_safety_backup(
    answers: Any, loaded: Any, identity: Path, target: Any, *, display: Any, cancel: Any
) -> Path | None:
    """``backup create`` of the installation as it is, before the restore changes it,
    encrypted to the answers' recipients and to the restore's own identity (which the
    operator holds). None when there is no installation, or when the unfinished restore
    this run resumes took one already (it is recorded in the journal)."""
    from installer.backup.create import BackupCreate
    from installer.backup.restore import recorded_safety_backup

    if recorded_safety_backup(target.state) is not None:
        return None
    if target.installed_record() is None:
        return None
    recipients = [*answers.backup.recipients, _recipient_of(identity)]
    creator = BackupCreate(answers, loaded, cancel=cancel, recipients=recipients)
    for event in creator.run():
        display.show(event)
    if creator.exit_code != 0 or creator.result is None:
        raise InstallerError(
            "the safety backup of the installation failed: nothing was restored",
            hint="see the events above; fix that, or back up and remove the installation "
            "yourself, then restore again",
        )
    return Path(creator.result.archive)
