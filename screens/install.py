"""Step 6, install: the runner's events, rendered live.

The run happens in a thread worker that only iterates the engine's events. Events are
handed to the UI through a queue and a single pending message: however fast the runner
talks (a progress event per layer while images load), at most one "events ready"
message waits in the screen's queue, and each one drains a bounded batch, so a keypress
is never stuck behind thousands of log lines.

Quitting asks first, then sets the cancel flag the runner polls between steps: the run
stops after the current step and keeps its journal, so a later run resumes there.
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static
from textual.worker import get_current_worker

from installer.runner import CancelToken
from screens.install_log import InstallLog
from screens.state import FailureInfo
from screens.step import StepScreen

if TYPE_CHECKING:
    from installer.events import Event

# Events handled per drain (a drain is quick: log lines are written together and only the
# last progress is drawn), and the rest between drains, when keys and repaints run.
_BATCH = 2_000
_REST = 0.04
_STATE_LABEL = {
    "pending": "  waiting",
    "running": "▶ running",
    "done": "✓ done",
    "skipped": "✓ already done",
    "failed": "✗ failed",
}
_TAIL = 15
# Lines the log view holds, and the run's lines kept in memory for the full-log view and
# the support file (the run's log file in the state directory has every line).
_SHOWN_LINES = 5_000
_KEPT_LINES = 50_000


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def format_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class InstallScreen(StepScreen):
    """The install, step by step, with the current step's log."""

    STEP = "install"
    CSS_PATH = "install.tcss"
    CAN_GO_BACK = False
    QUIT_QUESTION = (
        "Stop the install? It stops after the current step and keeps its journal; run "
        "codequal-installer apply with the saved answer file (or this wizard) to resume."
    )
    HELP = (
        "One row per install step with its state and how long it took; below, the live "
        "log of the current step (secrets are never shown). A progress bar appears while "
        "images are loaded or pulled.\n\n"
        "[b]f[/b] switches between the current step's log and the full log. Scroll up to "
        "read: the log stops following until you press End.\n"
        "[b]Ctrl+Q[/b] stops the install after the current step; the journal is kept so "
        "that a later run resumes where it stopped."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_log", "Full log"),
        Binding("escape", "back", "Back", show=False),
    ]

    class EventsReady(Message):
        """The runner has queued events (sent at most once until they are drained)."""

    class RunEnded(Message):
        """The runner's event stream is exhausted."""

    class RunCrashed(Message):
        """The engine raised instead of reporting a failure as an event."""

        def __init__(self, message: str, hint: str | None) -> None:
            super().__init__()
            self.message = message
            self.hint = hint

    def __init__(self) -> None:
        super().__init__()
        self._events: deque[Event] = deque()
        self._pending = False
        self._pending_lock = threading.Lock()
        self.cancel = CancelToken()
        self.full_log = False
        self.current_step: str | None = None
        self.step_lines: dict[str, list[str]] = {}
        self.step_started: dict[str, tuple[str, float]] = {}
        self.step_state: dict[str, str] = {}
        self.failure: FailureInfo | None = None
        self.finished = False
        self._unwritten: list[str] = []
        self._last_progress: Event | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="install-body"):
            yield Static("Starting the install…", id="run-status")
            yield DataTable(id="step-table", cursor_type="none", show_cursor=False)
            with Horizontal(id="progress-line"):
                yield Static("", id="progress-label")
                yield ProgressBar(id="progress", show_eta=False)
            yield InstallLog(id="install-log", max_lines=_SHOWN_LINES)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        table.add_column("Step", key="step", width=30)
        table.add_column("State", key="state", width=16)
        table.add_column("Time", key="time", width=8)
        for name, title in self.wizard.state.plan_steps:
            self._add_step(name, title)
        self.query_one("#progress-line").display = False
        self.query_one(InstallLog).border_title = "log"
        self.wizard.state.run_log.clear()
        self.set_interval(1.0, self._tick)
        # What is alive now (the app, the engine's modules) outlives the run: keep it out of
        # the collector's full passes while the run allocates events, which otherwise stall
        # the screen for tens of milliseconds; on_unmount gives it back.
        gc.freeze()
        self._run()

    def on_unmount(self) -> None:
        gc.unfreeze()

    # -- the worker --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="install")
    def _run(self) -> None:
        worker = get_current_worker()
        state = self.wizard.state
        answers = state.validate().answers
        if answers is None:
            self.post_message(self.RunCrashed("the answers are not valid", None))
            return

        try:
            for event in self.wizard.backend.install(
                answers, state.secrets_model(), cancel=self.cancel
            ):
                if worker.is_cancelled:  # the app is closing: stop at the next checkpoint
                    self.cancel.cancel("the wizard was closed")
                self._events.append(event)
                with self._pending_lock:
                    if self._pending:
                        continue
                    self._pending = True
                self.post_message(self.EventsReady())
        except Exception as e:  # noqa: BLE001 - reported on the failure screen
            self.post_message(self.RunCrashed(str(e) or type(e).__name__, getattr(e, "hint", None)))
            return
        self.post_message(self.RunEnded())

    def on_install_screen_run_ended(self, message: InstallScreen.RunEnded) -> None:
        """The runner's events are over: make sure the run ended in a verdict."""
        message.stop()
        while self._events and self.is_attached:
            self._handle(self._events.popleft())
        if self.is_attached:
            self._flush()
        if not self.is_attached or self.finished:
            return
        if self.cancel.cancelled:
            self.wizard.exit_interrupted()
        else:
            self.post_message(self.RunCrashed("the install ended without a result", None))

    def on_install_screen_events_ready(self, message: InstallScreen.EventsReady) -> None:
        message.stop()
        for _ in range(_BATCH):
            try:
                event = self._events.popleft()
            except IndexError:
                break
            self._handle(event)
            if not self.is_attached:
                return
        self._flush()
        # "Pending" stays set through a short rest, so that however fast events come, the
        # screen redraws at most every _REST seconds and keys get the time between.
        self.set_timer(_REST, self._after_rest)

    def _after_rest(self) -> None:
        with self._pending_lock:
            if not self._events:
                self._pending = False
                return
        self.post_message(self.EventsReady())

    # -- rendering events --------------------------------------------------------------

    def _add_step(self, name: str, title: str) -> None:
        table = self.query_one(DataTable)
        if name in self.step_state:
            return
        self.step_state[name] = "pending"
        self.step_lines[name] = []
        table.add_row(title, _STATE_LABEL["pending"], "", key=name)

    def _set_state(self, name: str, state: str, elapsed: float | None = None) -> None:
        table = self.query_one(DataTable)
        self.step_state[name] = state
        table.update_cell(name, "state", _STATE_LABEL[state])
        if elapsed is not None:
            table.update_cell(name, "time", format_elapsed(elapsed))

    def _log(self, step: str | None, line: str) -> None:
        run_log = self.wizard.state.run_log
        run_log.append(line)
        if len(run_log) > 2 * _KEPT_LINES:
            del run_log[:-_KEPT_LINES]
        if step is not None:
            lines = self.step_lines.setdefault(step, [])
            lines.append(line)
            if len(lines) > 2 * _SHOWN_LINES:
                del lines[:-_SHOWN_LINES]
        if self.full_log or step == self.current_step:
            self._unwritten.append(line)

    def _flush(self) -> None:
        """Write the batch's log lines at once, and show only its last progress."""
        if self._unwritten:
            self.query_one(InstallLog).write_lines(self._unwritten)
            self._unwritten = []
        if self._last_progress is not None:
            self._show_progress(self._last_progress)
            self._last_progress = None

    def _handle(self, event: Event) -> None:
        kind = event.type
        step = event.step
        if kind == "run.started":
            self.query_one("#run-status", Static).update(event.message or "Installing…")
            for item in event.data.get("steps", []):
                if isinstance(item, dict) and item.get("name"):
                    self._add_step(str(item["name"]), str(item.get("title") or item["name"]))
        elif kind == "step.started" and step is not None:
            self._add_step(step, str(event.data.get("title") or event.message or step))
            self.current_step = step
            self.step_started[step] = (event.ts, self.wizard.clock())
            self._set_state(step, "running")
            self._flush()
            log = self.query_one(InstallLog)
            if not self.full_log:
                log.replace(self.step_lines.get(step, []))
            log.border_title = f"log: {step}"
            self._log(step, f"==> {event.message or step}")
        elif kind == "step.output":
            self._log(step, event.message)
        elif kind == "step.progress":
            self._last_progress = event
        elif kind in ("step.finished", "step.skipped") and step is not None:
            self._add_step(step, step.replace("_", " "))
            started = self.step_started.get(step)
            elapsed = _seconds_between(started[0], event.ts) if started else None
            self._set_state(step, "done" if kind == "step.finished" else "skipped", elapsed)
            if kind == "step.skipped":
                self._log(step, f"==> {step}: {event.message or 'already done'}")
            self._last_progress = None
            self._progress_line(False)
        elif kind == "step.failed" and step is not None:
            self._add_step(step, step.replace("_", " "))
            started = self.step_started.get(step)
            elapsed = _seconds_between(started[0], event.ts) if started else None
            self._set_state(step, "failed", elapsed)
            self._log(step, f"✗ {event.message}")
            tail = event.data.get("log_tail") or self.step_lines.get(step, [])[-_TAIL:]
            self.failure = FailureInfo(
                step=step,
                message=event.message,
                hint=event.data.get("hint"),
                log_tail=[str(line) for line in tail],
            )
        elif kind == "rollback.started":
            self._log(None, f"==> {event.message}")
        elif kind == "step.rolled_back" and step is not None:
            self._log(step, f"↺ {event.message}")
        elif kind == "run.finished":
            self.wizard.state.result = run_result(event)
            self.finished = True
            self.wizard.finish_install(succeeded=True)
        elif kind == "run.failed":
            self._run_failed(event)

    def _progress_line(self, shown: bool) -> None:
        line = self.query_one("#progress-line")
        if line.display != shown:
            line.display = shown

    def _show_progress(self, event: Event) -> None:
        bar = self.query_one(ProgressBar)
        self._progress_line(True)
        if event.total:
            bar.update(total=event.total, progress=event.current or 0)
        else:
            bar.update(total=None)
        unit = f" {event.unit}" if event.unit else ""
        label = event.message or (event.step or "")
        if event.total:
            label += f" {_amount(event.current)}/{_amount(event.total)}{unit}"
        self.query_one("#progress-label", Static).update(label)

    def _run_failed(self, event: Event) -> None:
        state = self.wizard.state
        self.finished = True
        if event.exit_code == 130 or self.cancel.cancelled:
            self.wizard.exit_interrupted()
            return
        failure = self.failure or FailureInfo(
            step=event.step or self.current_step or "install",
            message=event.message,
            hint=event.data.get("hint"),
            log_tail=list(state.run_log[-_TAIL:]),
        )
        if failure.hint is None and event.data.get("hint"):
            failure.hint = str(event.data["hint"])
        failure.rolled_back = bool(event.data.get("rolled_back"))
        state.failure = failure
        state.failed_step = failure.step
        self.wizard.finish_install(succeeded=False)

    def on_install_screen_run_crashed(self, message: RunCrashed) -> None:
        if self.finished:
            return
        self.finished = True
        state = self.wizard.state
        step = self.current_step or "install"
        state.failure = FailureInfo(
            step=step,
            message=message.message,
            hint=message.hint,
            log_tail=list(state.run_log[-_TAIL:]),
        )
        state.failed_step = step
        self.wizard.finish_install(succeeded=False)

    def _tick(self) -> None:
        step = self.current_step
        if step is None or self.step_state.get(step) != "running":
            return
        started = self.step_started.get(step)
        if started is not None:
            elapsed = self.wizard.clock() - started[1]
            self.query_one(DataTable).update_cell(step, "time", format_elapsed(elapsed))

    # -- keys --------------------------------------------------------------------------

    def action_toggle_log(self) -> None:
        self._flush()
        self.full_log = not self.full_log
        log = self.query_one(InstallLog)
        if self.full_log:
            log.replace(self.wizard.state.run_log)
            log.border_title = "log: all steps"
        else:
            log.replace(self.step_lines.get(self.current_step or "", []))
            log.border_title = f"log: {self.current_step or ''}"

    def on_quit_confirmed(self) -> None:
        """Ctrl+Q confirmed: stop between steps; the run reports back, then we exit."""
        self.cancel.cancel("stopped from the wizard")
        self.query_one("#run-status", Static).update(
            "Stopping after the current step… (the journal is kept)"
        )


def run_result(event: Event) -> dict[str, Any]:
    """What the done screen shows: the run's result file (URLs, credentials, versions),
    completed by the final event's facts (log file, what changed)."""
    import json
    from pathlib import Path

    result: dict[str, Any] = {}
    result_file = event.data.get("result_file")
    if result_file:
        try:
            loaded = json.loads(Path(str(result_file)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = None
        if isinstance(loaded, dict):
            result.update(loaded)
    for key, value in event.data.items():
        result.setdefault(key, value)
    result.setdefault("message", event.message)
    return result


def _amount(value: float | None) -> str:
    if value is None:
        return "0"
    return f"{value:g}"


SCREEN = InstallScreen
