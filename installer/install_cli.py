"""The ``apply`` and ``status`` commands' work, kept out of :mod:`installer.cli` so that
start-up stays light (the runner, Docker SDK and rich load only when these run).

``apply`` is a front end on the runner like the wizard: it loads and validates the inputs,
asks the target adapter for a plan, and renders the events. It refuses to change anything
without ``--yes`` when there is no terminal to ask on. SIGINT and SIGTERM cancel the run at
its next checkpoint (exit 130, the journal kept for a resume), never mid-write.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click

from installer.errors import ExitCode, InstallerError, Interrupted, UsageError
from installer.events import Event


@contextlib.contextmanager
def _signals_cancel(cancel: Any) -> Iterator[None]:
    """SIGINT/SIGTERM set the run's cancel flag instead of raising mid-step."""

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        cancel.cancel(f"interrupted by {name}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _json_failure(error: InstallerError) -> None:
    data: dict[str, Any] = {}
    if error.hint:
        data["hint"] = error.hint
    problems = getattr(error, "problems", None)
    if problems:
        data["problems"] = list(problems)
    event = Event("run.failed", error.message, exit_code=int(error.exit_code), data=data)
    click.echo(event.to_json())


def print_preview(preview: Any) -> None:
    """The plan for ``--dry-run``: what would be written and what each step would do."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]Plan:[/bold] CodeQual {preview.release} ({preview.target}) in {preview.location}"
    )
    facts = preview.facts
    if facts.get("compose_project"):
        console.print(f"Compose project: {facts['compose_project']}")
    files = Table(title="Files", title_justify="left", show_edge=False)
    for column in ("change", "path", "mode", "size"):
        files.add_column(column, justify="right" if column == "size" else "left")
    for item in preview.files:
        style = {"new": "green", "changed": "yellow", "removed": "red"}.get(item.change, "dim")
        secret = " (secrets)" if item.holds_secrets else ""
        files.add_row(
            f"[{style}]{item.change}[/{style}]",
            item.path + secret,
            f"{item.mode:04o}",
            str(item.size),
        )
    console.print(files)
    objects = facts.get("objects") or []
    if objects:
        how = (
            "server-side dry run"
            if facts.get("dry_run") == "server"
            else "as rendered: the cluster was not reached"
        )
        listed = Table(
            title=f"Objects in apply order ({how})", title_justify="left", show_edge=False
        )
        for column in ("#", "object", "what applying it would do"):
            listed.add_column(column)
        for index, entry in enumerate(objects, start=1):
            where = f" ({entry['namespace']})" if entry.get("namespace") else ""
            listed.add_row(str(index), f"{entry['kind']} {entry['name']}{where}", entry["verdict"])
        console.print(listed)
    steps = Table(title="Steps", title_justify="left", show_edge=False)
    steps.add_column("#")
    steps.add_column("step")
    steps.add_column("what it does")
    for index, step in enumerate(preview.steps, start=1):
        steps.add_row(str(index), step.title, step.description)
    console.print(steps)
    images = facts.get("images") or {}
    if images:
        console.print("Images: " + ", ".join(f"{k}={v}" for k, v in images.items()))
    console.print("[dim]dry run: nothing was changed[/dim]")


def run_apply(
    answers_path: str,
    secrets_path: str | None,
    *,
    yes: bool,
    dry_run: bool,
    as_json: bool,
    bundle: str | None,
    key: str | None = None,
) -> int:
    """``codequal-installer apply``: returns the exit code."""
    try:
        return _apply(
            answers_path,
            secrets_path,
            yes=yes,
            dry_run=dry_run,
            as_json=as_json,
            bundle=bundle,
            key=key,
        )
    except InstallerError as e:
        if as_json:
            _json_failure(e)
        raise


def _apply(
    answers_path: str,
    secrets_path: str | None,
    *,
    yes: bool,
    dry_run: bool,
    as_json: bool,
    bundle: str | None,
    key: str | None,
) -> int:
    from installer.runner import CancelToken, Runner
    from installer.targets import target_for
    from installer.validation import load_answers, load_secrets

    answers = load_answers(answers_path)
    loaded = load_secrets(secrets_path)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    bundle_path = None
    if bundle is not None:
        bundle_path = Path(bundle).resolve()
        if not bundle_path.exists():
            raise UsageError(f"--bundle {bundle}: no such file")
    key_path = None
    if key is not None:
        key_path = Path(key).resolve()
        if not key_path.is_file():
            raise UsageError(f"--key {key}: no such file")
    target = target_for(answers, loaded, bundle=bundle_path, bundle_key=key_path)
    if key_path is not None and target.bundle is None:  # the key would check nothing
        raise UsageError(
            "--key is the offline bundle's public key, and no bundle is given",
            hint="give the bundle with --bundle (or airgap.bundle; with airgap.enabled: true "
            "for airgap.bundle and for the Kubernetes targets), or leave out --key",
        )

    from installer.upgrade_pending import check_apply_over_pending, settle_apply_over_pending

    pending = check_apply_over_pending(answers)  # an upgrade killed mid-run: finish or refuse
    if dry_run:
        preview = target.preview()
        if as_json:
            click.echo(json.dumps({"dry_run": True, **preview.to_dict()}, indent=2))
        else:
            print_preview(preview)
        return int(ExitCode.OK)

    if not yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(
                "refusing to change this machine without confirmation, and there is no "
                "terminal to ask on",
                hint="pass --yes to apply unattended (see what would change with --dry-run)",
            )
        preview = target.preview()
        changed = [f for f in preview.files if f.change != "unchanged"]
        click.echo(
            f"About to install CodeQual {preview.release} ({preview.target}) in "
            f"{preview.location}: {len(changed)} of {len(preview.files)} files to write, "
            f"{len(preview.steps)} steps.",
            err=True,
        )
        try:
            confirmed = click.confirm("Apply?", default=False, err=True)
        except click.exceptions.Abort:
            confirmed = False
        if not confirmed:
            raise Interrupted("not confirmed: nothing was changed")

    cancel = CancelToken()
    runner = Runner(target.plan(), cancel=cancel)
    from installer.history import HistoryRecorder

    recorder = HistoryRecorder(runner.plan.state, getattr(target, "release", None))
    if as_json:
        from installer.run_display import JsonRunDisplay

        display: Any = JsonRunDisplay()
    elif sys.stdout.isatty():
        from installer.run_display import LiveRunDisplay

        display = LiveRunDisplay()
    else:
        from installer.run_display import PlainRunDisplay

        display = PlainRunDisplay()
    with _signals_cancel(cancel):
        try:
            for event in runner.run():
                display.show(event)
        finally:
            display.close()
    assert runner.outcome is not None  # noqa: S101 - run() always sets it
    recorder.finished(runner.outcome)
    settle_apply_over_pending(pending, runner.outcome, runner.plan.state)
    return runner.outcome.exit_code


def run_status(install_dir: str | None, answers_path: str | None, as_json: bool) -> int:
    """``codequal-installer status``: 0 when installed and every service is healthy."""
    from installer.status import installation_status

    if install_dir is None and answers_path is not None:
        from installer.validation import load_answers

        answers = load_answers(answers_path)
        if not answers.is_compose:
            from installer.targets.kubernetes.plan import print_kubernetes_status

            return print_kubernetes_status(answers, as_json=as_json)
        install_dir = answers.install_dir
    directory = Path(install_dir or "/opt/codequal")
    status = installation_status(directory)
    if as_json:
        click.echo(json.dumps(status.to_dict(), indent=2))
        return int(ExitCode.OK if status.healthy else ExitCode.INSTALL_FAILED)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    data = status.to_dict()
    last = status.last_run
    if not status.installed:
        console.print(f"nothing installed in {directory}")
        if data.get("history"):  # uninstalled: what happened here is still worth showing
            from installer.history import print_lifecycle

            print_lifecycle(console, data)
        if last.get("status") in ("running", "interrupted", "rolling_back"):
            console.print(
                f"an apply was interrupted at step {last.get('step')}: "
                "run the same apply again to resume"
            )
        return int(ExitCode.INSTALL_FAILED)
    console.print(
        f"[bold]CodeQual {data['release']}[/bold] ({data['target']}) in {directory}, "
        f"installed {data['installed_at']}; schema version {data['schema_version']}; "
        f"Compose project {data['compose_project']}"
    )
    if status.docker_error:
        console.print(f"[red]cannot read the services: {status.docker_error}[/red]")
    else:
        table = Table(show_edge=False)
        for column in ("service", "state", "health", "image"):
            table.add_column(column)
        for service in status.services:
            style = "green" if service.ok else "red"
            table.add_row(
                service.name,
                f"[{style}]{service.state}[/{style}]",
                service.health or "-",
                service.image,
            )
        console.print(table)
    for name, url in data["urls"].items():
        console.print(f"  {name:10} {url}")
    from installer.history import print_lifecycle

    print_lifecycle(console, data)
    if last.get("status") in ("running", "interrupted", "rolling_back"):
        console.print(
            f"[yellow]an apply was interrupted at step {last.get('step')}: run it again "
            "to resume[/yellow]"
        )
    elif last.get("status") in ("failed", "rollback_failed"):
        console.print(
            f"[yellow]the last apply failed at step {last.get('step')} "
            f"({last.get('status')}); see state/logs[/yellow]"
        )
    return int(ExitCode.OK if status.healthy else ExitCode.INSTALL_FAILED)
