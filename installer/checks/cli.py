"""``codequal-installer check``: the report as a table for people, or as JSON."""

from __future__ import annotations

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
    """The report as a table, then the environment and a one-line summary.

    Drawn by hand rather than with rich: importing rich costs more than the whole of
    ``check`` does, and ``check`` is measured against ``--version``. Values are printed
    as they are (a process name like "[bold]" is not markup); the status is coloured
    only on a terminal that takes colour (NO_COLOR, TERM=dumb and pipes get none).
    """
    out = file if file is not None else sys.stdout
    title = f"Prerequisites for the {report.target} target ({report.profile} profile)"
    rows = [
        [
            result.name,
            result.status,
            result.measured or "—",
            result.required or "—",
            result.hint or result.reason or "",
        ]
        for result in report.results
    ]
    lines = [title, *format_table(_HEADERS, rows, _width(out), colour=_colour(out))]
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
        lines.append("Environment: " + "; ".join(facts))
    counts = report.counts()
    lines.append(
        f"{counts['pass']} passed, {counts['warn']} warned, {counts['fail']} failed, "
        f"{counts['skipped']} skipped"
    )
    text = "\n".join(lines) + "\n"
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.translate(_ASCII_LINES)
    out.write(text)
    out.flush()


_HEADERS = ("Check", "Status", "Measured", "Required", "Fix / note")
_ANSI = {"pass": "32", "warn": "33", "fail": "1;31", "skipped": "2"}
_ASCII_LINES = str.maketrans({"─": "-", "│": "|", "┼": "+", "—": "-"})


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


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, *, colour: bool = False
) -> list[str]:
    """``rows`` under ``headers`` in columns that fit ``width``, long cells wrapped.

    The first two columns (names and statuses) keep their full width; the others share
    what is left (see :func:`_fit`).
    """
    count = len(headers)
    natural = [max([len(headers[i]), *(len(row[i]) for row in rows)]) for i in range(count)]
    room = width - 3 * (count - 1) - sum(natural[:2])
    widths = natural[:2] + _fit(natural[2:], room)
    separator = " │ "
    lines = [
        separator.join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "─┼─".join("─" * w for w in widths),
    ]
    for row in rows:
        cells = [wrap(cell, w) for cell, w in zip(row, widths, strict=True)]
        for line_number in range(max(len(c) for c in cells)):
            parts = []
            for column, (cell, w) in enumerate(zip(cells, widths, strict=True)):
                piece = cell[line_number] if line_number < len(cell) else ""
                padded = piece.ljust(w)
                if colour and column == 1 and piece in _ANSI:
                    padded = f"\x1b[{_ANSI[piece]}m{piece}\x1b[0m" + " " * (w - len(piece))
                parts.append(padded)
            lines.append(separator.join(parts).rstrip())
    return lines


def _fit(natural: Sequence[int], room: int, minimum: int = 10) -> list[int]:
    """Widths for columns whose longest cells are ``natural``, together at most ``room``
    (unless each needs ``minimum``): the narrow ones keep their width, the wide ones share
    the rest equally."""
    widths = list(natural)
    order = sorted(range(len(natural)), key=lambda i: natural[i])
    left = room
    for position, index in enumerate(order):
        share = max(minimum, left // (len(order) - position))
        widths[index] = min(natural[index], share)
        left -= widths[index]
    return widths


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces, and inside a
    word only when the word alone is longer (textwrap's rules for this table, at a
    fraction of its cost: it compiles its patterns on first use)."""
    lines: list[str] = []
    line = ""
    for whole in text.split():
        word = whole
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line = f"{line} {word}"
        else:
            lines.append(line)
            line = word
    if line or not lines:
        lines.append(line)
    return lines
