"""``codequal-installer check``: the report as a table for people, or as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

import click

from installer.checks.prerequisites import run_prerequisites
from installer.checks.report import PrerequisiteReport
from installer.errors import UsageError

if TYPE_CHECKING:
    from installer.answers import AnswerFile

_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skipped": "dim"}


def run_check(
    target: str | None, answers_path: str | None, skip: Sequence[str], as_json: bool
) -> None:
    """Run the checks, print the report, and raise (exit 3) when a check failed."""
    subject: AnswerFile | str
    if answers_path is not None:
        from installer.validation import load_answers

        answers = load_answers(answers_path)
        if target is not None and target != answers.target:
            raise UsageError(
                f"--target {target} differs from the answer file's target {answers.target}",
                hint="drop --target, or change target: in the answer file",
            )
        subject = answers
    else:
        subject = target or "development"
    report = run_prerequisites(subject, skip=skip)
    if as_json:
        click.echo(report.to_json())
    else:
        render_report(report)
    report.raise_for_failures()


def render_report(report: PrerequisiteReport, file: TextIO | None = None) -> None:
    """The report as a rich table, then the environment and a one-line summary."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Measured values and hints are plain text: "[::1]" is an address, not markup.
    console = Console(file=file, highlight=False, markup=False, emoji=False)
    table = Table(
        title=f"Prerequisites for the {report.target} target ({report.profile} profile)",
        title_justify="left",
        expand=False,
    )
    table.add_column("Check", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Measured")
    table.add_column("Required")
    table.add_column("Fix / note")
    for result in report.results:
        note = result.hint or result.reason or ""
        table.add_row(
            Text(result.name),
            Text(result.status, style=_STYLES[result.status]),
            Text(result.measured or "—"),
            Text(result.required or "—"),
            Text(note),
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
        console.print("Environment: " + "; ".join(facts))
    counts = report.counts()
    console.print(
        f"{counts['pass']} passed, {counts['warn']} warned, {counts['fail']} failed, "
        f"{counts['skipped']} skipped"
    )
