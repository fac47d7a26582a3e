"""``codequal-installer backup ...``: create, verify, list, prune, keygen.

A thin front end: the work is in :mod:`installer.backup.create`,
:mod:`installer.backup.archive` and :mod:`installer.backup.catalog`. ``create`` and
``verify`` report through the same event displays as ``apply`` (a live view on a
terminal, one line per event otherwise, NDJSON with ``--json``). Nothing heavy is
imported at module level.

Exit codes: 0 done; 2 bad usage (no recipient, no installation, another run holds the
lock); 3 ``age`` not installed, Docker unreachable; 4 an archive failed verification
(damaged, truncated, wrong key); 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from installer.errors import ExitCode, InstallerError, UsageError
from installer.events import Event


def _display(as_json: bool) -> Any:
    if as_json:
        from installer.run_display import JsonRunDisplay

        return JsonRunDisplay()
    if sys.stdout.isatty():
        from installer.run_display import LiveRunDisplay

        return LiveRunDisplay()
    from installer.run_display import PlainRunDisplay

    return PlainRunDisplay()


def _json_failure(error: InstallerError) -> None:
    data: dict[str, Any] = {}
    if error.hint:
        data["hint"] = error.hint
    member = getattr(error, "member", None)
    if member:
        data["member"] = member
    click.echo(
        Event("run.failed", error.message, exit_code=int(error.exit_code), data=data).to_json()
    )


def _directory(answers_path: str | None, directory: str | None) -> tuple[Path, int | None]:
    """The backup directory (``--dir`` or the answers'), and the answers' ``keep``."""
    if directory is not None:
        keep = None
        if answers_path is not None:
            from installer.validation import load_answers

            keep = load_answers(answers_path).backup.keep
        return Path(directory), keep
    if answers_path is None:
        raise UsageError(
            "say which backups: --answers FILE (its backup.directory) or --dir DIRECTORY"
        )

    from installer.validation import load_answers

    answers = load_answers(answers_path)
    return Path(str(answers.backup.directory_for(answers.install_dir))), answers.backup.keep


def _size(size: float) -> str:
    from installer.backup.create import _size as human

    return human(size)


@click.group("backup")
def backup() -> None:
    """Encrypted backups of a Compose installation: create, verify, list, prune, keygen."""


@backup.command("create")
@click.option(
    "--answers",
    "answers_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The installation's answer file.",
)
@click.option(
    "--secrets",
    "secrets_path",
    type=click.Path(dir_okay=False),
    help="The secrets file the installation was made with (for a supplied database password).",
)
@click.option(
    "--to",
    "directory",
    type=click.Path(file_okay=False),
    help="Directory to write the archive to (default: backup.directory).",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="age recipient (age1...) to encrypt to, instead of backup.recipients; repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line (NDJSON).")
def create_command(
    answers_path: str,
    secrets_path: str | None,
    directory: str | None,
    recipients: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write one encrypted archive of the installation: database, volumes, files, state.

    The application containers are paused while the volumes are copied (the pause is
    reported); the database is dumped from a snapshot taken during that pause.
    """
    try:
        sys.exit(_create(answers_path, secrets_path, directory, list(recipients), as_json))
    except InstallerError as e:
        if as_json:
            _json_failure(e)
            sys.exit(int(e.exit_code))
        raise


def _create(
    answers_path: str,
    secrets_path: str | None,
    directory: str | None,
    recipients: list[str],
    as_json: bool,
) -> int:
    from installer.backup.create import BackupCreate
    from installer.install_cli import _signals_cancel
    from installer.runner import CancelToken
    from installer.validation import load_answers, load_secrets

    answers = load_answers(answers_path)
    loaded = load_secrets(secrets_path)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    cancel = CancelToken()
    job = BackupCreate(
        answers,
        loaded,
        cancel=cancel,
        directory=Path(directory).resolve() if directory else None,
        recipients=recipients or None,
    )
    display = _display(as_json)
    with _signals_cancel(cancel):
        try:
            for event in job.run():
                display.show(event)
        finally:
            display.close()
    return job.exit_code if job.exit_code is not None else int(ExitCode.INSTALL_FAILED)


@backup.command("verify")
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option(
    "--identity",
    "identity_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="age identity file (from `backup keygen`) that decrypts the archive.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Only decrypt and check every member against the manifest (no sandbox restore).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line (NDJSON).")
def verify_command(archive: str, identity_path: str, quick: bool, as_json: bool) -> None:
    """Check an archive: every member against the manifest, then (without --quick) a restore
    into a throwaway sandbox compared with the manifest's row counts and checksums.

    Exit 0 when it holds (recorded beside it as ARCHIVE.verified.json), 4 naming the member
    or the key that fails. Nothing else is written.
    """
    try:
        if quick:
            code = _verify_quick(Path(archive), Path(identity_path), as_json)
        else:
            code = _verify_full(Path(archive), Path(identity_path), as_json)
    except InstallerError as e:
        if as_json:
            _json_failure(e)
            sys.exit(int(e.exit_code))
        raise
    sys.exit(code)


def _verify_quick(archive: Path, identity: Path, as_json: bool) -> int:
    from installer.backup.archive import verify_hashes
    from installer.backup.catalog import write_verification
    from installer.backup.errors import BackupIntegrityError

    if not archive.is_file():
        raise UsageError(f"{archive}: no such archive")
    total = archive.stat().st_size
    display = _display(as_json)
    steps = [{"name": "hashes", "title": "Decrypt and check every member"}]
    display.show(
        Event("run.started", f"verify {archive} (quick: hashes only)", data={"steps": steps})
    )
    display.show(Event("step.started", steps[0]["title"], step="hashes"))
    started = time.monotonic()
    seen = [0, 0.0]

    def progress(amount: int) -> None:
        seen[0] += amount
        now = time.monotonic()
        if now - seen[1] >= 0.25:
            seen[1] = now
            rate = seen[0] / max(now - started, 1e-6) / 1e6
            display.show(
                Event(
                    "step.progress",
                    f"decrypting · {rate:.1f} MB/s",
                    step="hashes",
                    current=seen[0],
                    total=total,
                    unit="bytes",
                )
            )

    try:
        try:
            manifest = verify_hashes(archive, identity, progress)
        except BackupIntegrityError as e:
            data: dict[str, Any] = {"member": e.member}
            if e.hint:
                data["hint"] = e.hint
            display.show(Event("step.failed", e.message, step="hashes", data=data))
            display.show(
                Event("run.failed", e.message, exit_code=int(e.exit_code), data=dict(data))
            )
            return int(e.exit_code)
        record = write_verification(archive, manifest, "quick")
        elapsed = time.monotonic() - started
        display.show(
            Event(
                "step.finished",
                f"{len(manifest.members) + 1} members match the manifest ({elapsed:.1f}s)",
                step="hashes",
            )
        )
        display.show(
            Event(
                "run.finished",
                f"{archive.name}: every member matches the manifest "
                f"(CodeQual {manifest.release}, {manifest.target}, made {manifest.created}); "
                f"recorded in {record.name}",
                exit_code=0,
                data={
                    "archive": str(archive),
                    "record": str(record),
                    "release": manifest.release,
                    "created": manifest.created,
                    "members": [m.model_dump() for m in manifest.members],
                },
            )
        )
        return 0
    finally:
        display.close()


def _verify_full(archive: Path, identity: Path, as_json: bool) -> int:
    from installer.backup.sandbox import verify_in_sandbox
    from installer.install_cli import _signals_cancel
    from installer.runner import CancelToken

    cancel = CancelToken()
    display = _display(as_json)
    exit_code = int(ExitCode.INSTALL_FAILED)
    with _signals_cancel(cancel):
        try:
            for event in verify_in_sandbox(archive, identity, cancel=cancel):
                display.show(event)
                if event.type in ("run.finished", "run.failed") and event.exit_code is not None:
                    exit_code = int(event.exit_code)
        finally:
            display.close()
    return exit_code


@backup.command("list")
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False),
    help="Answer file whose backup.directory to list.",
)
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False), help="Directory to list instead."
)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_command(answers_path: str | None, directory: str | None, as_json: bool) -> None:
    """The archives, newest first: size, release, when made, verified or not."""
    from installer.backup.catalog import list_archives

    where, _ = _directory(answers_path, directory)
    entries = list_archives(where)
    if as_json:
        document = {"directory": str(where), "archives": [e.to_dict() for e in entries]}
        click.echo(json.dumps(document, indent=2))
        return
    if not entries:
        click.echo(f"no archives in {where}")
        return
    from rich.console import Console
    from rich.table import Table

    # A pipe gets whole lines (rich would fold them to 80 columns).
    console = Console() if sys.stdout.isatty() else Console(width=200)
    table = Table(title=str(where), title_justify="left")
    for column in ("archive", "size", "release", "created", "verified"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for entry in entries:
        verified = "no"
        if entry.verified is not None:
            verified = f"{entry.verified.get('mode')} {entry.verified.get('verified_at')}"
        table.add_row(entry.name, _size(entry.size), entry.release, entry.created, verified)
    console.print(table)


@backup.command("prune")
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False),
    help="Answer file: its backup.directory and backup.keep.",
)
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False), help="Directory to prune instead."
)
@click.option(
    "--keep", type=click.IntRange(min=1), help="How many archives to keep (default: backup.keep)."
)
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print what was (or would be) deleted as JSON."
)
def prune_command(
    answers_path: str | None,
    directory: str | None,
    keep: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete all but the newest archives; the newest verified archive is always kept."""
    from installer.backup.catalog import delete_archive, list_archives, prune_plan
    from installer.backup.section import DEFAULT_KEEP

    where, configured = _directory(answers_path, directory)
    count = keep or configured or DEFAULT_KEEP
    plan = prune_plan(list_archives(where), count)
    if not dry_run:
        for entry in plan.delete:
            delete_archive(entry)
    if as_json:
        document = {
            "directory": str(where),
            "keep": count,
            "dry_run": dry_run,
            "deleted": [e.to_dict() for e in plan.delete],
            "kept": [e.to_dict() for e in plan.keep],
            "kept_newest_verified": plan.kept_verified.name if plan.kept_verified else None,
        }
        click.echo(json.dumps(document, indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    for entry in plan.delete:
        click.echo(f"{verb} {entry.path} ({_size(entry.size)}, {entry.created})")
    if plan.kept_verified is not None:
        click.echo(
            f"kept {plan.kept_verified.name}: the newest verified archive "
            "(newer ones are not verified)"
        )
    done = "would be deleted" if dry_run else "deleted"
    click.echo(f"{len(plan.keep)} archives kept, {len(plan.delete)} {done} in {where}")


@backup.command("keygen")
@click.option(
    "--out",
    "out_path",
    default="codequal-backup.key",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Identity (private key) file to write (0600; never overwritten).",
)
def keygen_command(out_path: str) -> None:
    """Make an age identity for backups; prints its recipient (the public key)."""
    from installer.backup.crypto import keygen

    recipient = keygen(Path(out_path))
    click.echo(recipient)
    click.echo(
        f"identity written to {out_path} (0600): keep it safe and away from this server; "
        "archives cannot be restored without it.\n"
        f"add the recipient to the answers: backup: {{recipients: [{recipient}]}}",
        err=True,
    )
