"""``codequal-installer check``: the report as a table for people, or as JSON."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

import click

from installer.checks.prerequisites import run_prerequisites
from installer.errors import UsageError

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.checks.report import PrerequisiteReport
    from installer.live.result import LiveInput


def run_check(
    target: str | None,
    answers_path: str | None,
    skip: Sequence[str],
    as_json: bool,
    secrets_path: str | None = None,
) -> None:
    """Run the checks, print the report, and raise (exit 3) when a check failed."""
    subject: AnswerFile | str
    live: LiveInput | None
    if answers_path is not None:
        from installer.validation import load_answers

        answers = load_answers(answers_path)
        if target is not None and target != answers.target:
            raise UsageError(
                f"--target {target} differs from the answer file's target {answers.target}",
                hint="drop --target, or change target: in the answer file",
            )
        subject = answers
        # The answers are tried against the world too (installer.live): their secrets
        # from --secrets, else the CODEQUAL_* environment.
        from installer.live.result import LiveInput
        from installer.validation import load_secrets

        live = LiveInput.for_answers(answers, load_secrets(secrets_path))
    else:
        if secrets_path is not None:
            raise UsageError("--secrets needs --answers (the secrets of which answers?)")
        subject = target or "development"
        live = None
    report = run_prerequisites(subject, skip=skip, live=live)
    if as_json:
        click.echo(report.to_json())
    else:
        render_report(report)
    report.raise_for_failures()


def render_report(report: PrerequisiteReport, file: TextIO | None = None) -> None:
    """The report as a table (drawn by rich), then the environment and a one-line summary.

    Values are printed as they are (a process name like "[bold]" is not markup); the status
    is coloured only on a terminal that takes colour (NO_COLOR, TERM=dumb and pipes get
    none). An output that cannot encode box drawing (an ASCII locale) gets ASCII lines.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = file if file is not None else sys.stdout
    encoding = getattr(out, "encoding", None) or "utf-8"
    unicode_lines = _encodes(encoding, "─│┼—")
    colour = _colour(out)
    table = Table(
        box=box.MINIMAL if unicode_lines else box.ASCII,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if colour else "",
    )
    for index, header in enumerate(_HEADERS):
        table.add_column(header, no_wrap=index < 2, overflow="fold")
    none = "—" if unicode_lines else "-"
    for result in report.results:
        table.add_row(
            Text(result.name),
            Text(result.status, style=_STATUS_STYLES[result.status] if colour else ""),
            Text(result.measured or none),
            Text(result.required or none),
            Text(result.hint or result.reason or ""),
        )
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=_width(out),
        force_terminal=colour,
        no_color=not colour,
        color_system="standard" if colour else None,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(
        f"Prerequisites for the {report.target} target ({report.profile} profile)", soft_wrap=True
    )
    console.print(table)
    environment = report.environment
    if environment is not None:
        facts = [
            "runtimes: " + (", ".join(environment.container_runtimes) or "none"),
            (
                f"inside a {environment.in_container} container ({environment.container_evidence})"
                if environment.in_container
                else "not inside a container"
            ),
            f"cloud: {environment.cloud or 'none recognised'}",
        ]
        if environment.kubernetes_flavour:
            facts.append(f"cluster: {environment.kubernetes_flavour}")
        airgap = {True: "yes", False: "no", None: "unknown"}[environment.airgapped]
        facts.append(f"air-gapped: {airgap} ({environment.airgap_evidence})")
        console.print("Environment: " + "; ".join(facts), soft_wrap=True)
    counts = report.counts()
    console.print(
        f"{counts['pass']} passed, {counts['warn']} warned, {counts['fail']} failed, "
        f"{counts['skipped']} skipped"
    )
    text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
    # What the output cannot encode (a name in another script on an ASCII locale) is
    # replaced rather than ending the report in an error.
    out.write(text.encode(encoding, "replace").decode(encoding))
    out.flush()


_HEADERS = ("Check", "Status", "Measured", "Required", "Fix / note")
_STATUS_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skipped": "dim"}


def _encodes(encoding: str, text: str) -> bool:
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _width(out: TextIO) -> int:
    """The terminal's width (COLUMNS first, as shells and rich read it), else 100."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 100


def _colour(out: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())
