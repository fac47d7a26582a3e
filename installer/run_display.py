"""Showing a run on a terminal: a live table of the steps and the current step's output.

:class:`LiveRunDisplay` (rich) redraws one row per step (state, elapsed time, progress)
and the last lines of the step in progress; :class:`PlainRunDisplay` prints one line per
event for logs and pipes; :class:`JsonRunDisplay` writes each event as one NDJSON line
(``apply --json``). All three only render the runner's events: they hold no logic the
wizard lacks. rich is imported when a display is made, never at start-up.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from installer.events import Event

_SYMBOLS = {
    "pending": ("·", "dim"),
    "running": ("▶", "bold cyan"),
    "done": ("✓", "green"),
    "skipped": ("–", "dim green"),
    "failed": ("✗", "bold red"),
    "rolled_back": ("↺", "yellow"),
}


class RunDisplay(Protocol):
    def show(self, event: Event) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Row:
    name: str
    title: str
    status: str = "pending"
    started: float | None = None
    elapsed: float | None = None
    note: str = ""


@dataclass
class _RunView:
    """What the displays remember of the run so far."""

    rows: dict[str, _Row] = field(default_factory=dict)
    current: str | None = None
    failure: Event | None = None
    final: Event | None = None

    def update(self, event: Event) -> None:
        if event.type == "run.started":
            for step in event.data.get("steps", []):
                self.rows[step["name"]] = _Row(step["name"], step["title"])
            return
        row = self.rows.get(event.step or "")
        if event.type in ("run.finished", "run.failed"):
            self.final = event
        if row is None:
            return
        if event.type == "step.started":
            row.status, row.started, self.current = "running", time.monotonic(), row.name
            row.note = ""
        elif event.type in ("step.finished", "step.skipped"):
            row.status = "done" if event.type == "step.finished" else "skipped"
            if row.started is not None:
                row.elapsed = time.monotonic() - row.started
            row.note = "" if event.type == "step.finished" else event.message
        elif event.type == "step.failed":
            row.status = "failed"
            if row.started is not None:
                row.elapsed = time.monotonic() - row.started
            row.note = event.message
            self.failure = event
        elif event.type == "step.rolled_back":
            row.status = "rolled_back"
            row.note = "rolled back"
        elif event.type == "step.progress":
            row.note = progress_text(event)


def progress_text(event: Event) -> str:
    current, total, unit = event.current or 0, event.total, event.unit or ""
    if unit == "bytes":
        amount = f"{current / 1e6:.1f}" + (f"/{total / 1e6:.1f} MB" if total else " MB")
    else:
        amount = f"{current:g}" + (f"/{total:g}" if total else "") + (f" {unit}" if unit else "")
    return f"{amount} {event.message}".strip()


def _result_lines(final: Event) -> list[str]:
    path = final.data.get("result_file")
    if not path:
        return []
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    lines = [f"CodeQual {result.get('release', {}).get('version')} ({result.get('target')})"]
    for name, url in (result.get("urls") or {}).items():
        lines.append(f"  {name:10} {url}")
    credentials = result.get("credentials") or {}
    if credentials:
        lines.append("credentials:")
        lines += [f"  {key:18} {value}" for key, value in credentials.items()]
    return lines


def _ending_lines(view: _RunView) -> list[tuple[str, str]]:
    """(text, style) lines summing up the run, for both terminal displays."""
    final = view.final
    if final is None:
        return []
    out: list[tuple[str, str]] = []
    if final.type == "run.finished":
        out.append((f"✓ {final.message}", "bold green"))
        out += [(line, "") for line in _result_lines(final)]
    else:
        out.append((f"✗ {final.message}", "bold red"))
        tail = (view.failure.data.get("log_tail") if view.failure else None) or []
        if tail:
            out.append(("last lines:", "bold"))
            out += [(f"  {line}", "") for line in tail[-20:]]
        for problem in final.data.get("problems") or []:
            out.append((f"  {problem}", ""))
        hint = final.data.get("hint")
        if hint:
            out.append((f"hint: {hint}", "yellow"))
    log_file = final.data.get("log_file")
    if log_file:
        out.append((f"log: {log_file}", "dim"))
    out.append((f"exit code {final.exit_code}", "dim"))
    return out


class JsonRunDisplay:
    """``apply --json``: one event per line on standard output, nothing else."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def show(self, event: Event) -> None:
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class PlainRunDisplay:
    """One line per event: for a pipe, a CI log, or a terminal without cursor control."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.view = _RunView()

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def show(self, event: Event) -> None:
        self.view.update(event)
        if event.type == "run.started":
            self._write(f"==> {event.message}")
        elif event.type == "step.started":
            self._write(f"--> {event.message}")
        elif event.type == "step.output":
            prefix = "    (rollback) " if event.data.get("phase") == "rollback" else "    "
            self._write(prefix + event.message)
        elif event.type == "step.progress":
            self._write(f"    [{progress_text(event)}]")
        elif event.type == "step.finished":
            self._write(f"    ✓ {event.message}")
        elif event.type == "step.skipped":
            self._write(f"    – {event.step}: {event.message}")
        elif event.type == "step.failed":
            self._write(f"    ✗ {event.step}: {event.message}")
        elif event.type == "rollback.started":
            self._write(f"<-- {event.message}")
        elif event.type == "step.rolled_back":
            self._write(f"    ↺ {event.message}")
        elif event.type in ("run.finished", "run.failed"):
            for text, _style in _ending_lines(self.view):
                self._write(text)

    def close(self) -> None:
        self.stream.flush()


class LiveRunDisplay:
    """The rich live view: a row per step and the streaming output of the current one."""

    def __init__(self, tail_lines: int = 10) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.view = _RunView()
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.header = ""
        # get_renderable: each refresh redraws, so the running step's clock keeps ticking.
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=False,
        )
        self._live.start()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        table.add_column(width=2)
        table.add_column(min_width=26)
        table.add_column(justify="right", width=7)
        table.add_column(overflow="ellipsis", no_wrap=True, max_width=70)
        for row in self.view.rows.values():
            symbol, style = _SYMBOLS.get(row.status, ("?", ""))
            elapsed = row.elapsed
            if row.status == "running" and row.started is not None:
                elapsed = time.monotonic() - row.started
            table.add_row(
                Text(symbol, style=style),
                Text(row.title, style="bold" if row.status == "running" else ""),
                Text(f"{elapsed:.1f}s" if elapsed is not None else "", style="dim"),
                Text(row.note, style="dim"),
            )
        parts: list[Any] = [Text(self.header, style="bold")] if self.header else []
        parts.append(table)
        if self.tail and self.view.final is None:
            parts.append(Text("\n".join(f"  │ {line}" for line in self.tail), style="dim"))
        return Group(*parts)

    def show(self, event: Event) -> None:
        self.view.update(event)
        if event.type == "run.started":
            self.header = event.message
        elif event.type == "step.started":
            self.tail.clear()
        elif event.type == "step.output":
            prefix = "(rollback) " if event.data.get("phase") == "rollback" else ""
            self.tail.append(prefix + event.message)
        self._live.refresh()
        if event.type in ("run.finished", "run.failed"):
            self._live.stop()
            from rich.text import Text

            for text, style in _ending_lines(self.view):
                self.console.print(Text(text, style=style))

    def close(self) -> None:
        self._live.stop()
