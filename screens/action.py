"""What every day-2 action in the wizard shares: a review before it, a run panel during it.

A review (:class:`ActionReview`, :class:`FormReview`) is a modal that says what the action
will change and dismisses with what the run needs (or None: nothing runs). The run panel
(:class:`RunPanel`) starts the action's event stream in a thread worker and renders its
events into the install's live log, a status line and a progress bar; when the stream
ends it posts :class:`RunPanel.Ended` with the verdict. :class:`ActionScreen` is the step
screen around them: one action at a time, the screen read again after each, and quitting
during a run stops it at its next checkpoint first. The Backups and Manage screens both
are one, so that every action looks and behaves the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, ProgressBar, Static
from textual.worker import get_current_worker

from screens.install_log import InstallLog
from screens.step import StepScreen

if TYPE_CHECKING:
    from installer.events import Event
    from installer.runner import CancelToken

_SHOWN_LINES = 5_000

EventStream = Callable[["CancelToken"], Iterator["Event"]]


# -- reviews ------------------------------------------------------------------------------


class ActionReview(ModalScreen[Any]):
    """A review before an action: what it changes, what it needs, then confirm."""

    CSS_PATH = "action.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _show_preview(
        self, preview: Any, error: str | None, review_id: str, render: Callable[[Any], str]
    ) -> None:
        """Show a preview read in a worker (or why it could not be read) in the Static
        ``review_id``; Confirm is enabled, and focused, only when the preview allows the
        action."""
        self.query_one("#reading").display = False
        review = self.query_one(f"#{review_id}", Static)
        if preview is None:
            review.update(f"[$error]{escape(error or '')}[/]")
            return
        self.preview = preview
        review.update(render(preview))
        confirm = self.query_one("#confirm", Button)
        confirm.disabled = not preview.allowed
        if preview.allowed:
            confirm.focus()


class FormReview(ActionReview):
    """A review with a field to fill: confirmed (Enter or the button) only when ``_check``
    passes, dismissed with ``_result``."""

    def _check(self) -> bool:
        raise NotImplementedError

    def _result(self) -> Any:
        raise NotImplementedError

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._check()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._check():
            self.dismiss(self._result())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm" and self._check():
            self.dismiss(self._result())
        elif event.button.id == "cancel":
            self.dismiss(None)


# -- the run panel ------------------------------------------------------------------------


class RunPanel(Vertical):
    """A status line, a progress bar and the live log of one action's run at a time."""

    DEFAULT_CSS = """
    RunPanel {
        width: 100%;
        height: 1fr;
        & > #run-status {
            height: auto;
            max-height: 4;
            padding: 0 1;
        }
        & > #run-progress {
            height: 1;
            padding: 0 1;
        }
        & #run-progress-label {
            width: 1fr;
            height: 1;
        }
        & #run-progress-bar {
            width: auto;
        }
        & > #run-log {
            height: 1fr;
            min-height: 5;
            margin: 0 1;
        }
    }
    """

    class Ended(Message):
        """The run is over; ``verdict`` is its ``run.finished`` or ``run.failed`` event."""

        def __init__(self, panel: RunPanel, verdict: Event) -> None:
            super().__init__()
            self.panel = panel
            self.verdict = verdict

    class Streamed(Message):
        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    class Stopped(Message):
        def __init__(self, crashed: str | None = None) -> None:
            super().__init__()
            self.crashed = crashed

    def __init__(
        self, *, idle: str, exit_meaning: Callable[[int], str], id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.idle = idle
        self.exit_meaning = exit_meaning
        self.running: str | None = None  # the title of the run in progress
        self.verdict: Event | None = None
        self.cancel: CancelToken | None = None
        self._last_failure = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="run-status")
        with Horizontal(id="run-progress"):
            yield Static("", id="run-progress-label")
            yield ProgressBar(id="run-progress-bar", show_eta=False)
        yield InstallLog(id="run-log", max_lines=_SHOWN_LINES)

    def on_mount(self) -> None:
        self.query_one("#run-progress").display = False
        log = self.log_view
        log.border_title = "log"
        log.write_line(self.idle)

    @property
    def log_view(self) -> InstallLog:
        return self.query_one(InstallLog)

    @property
    def lines(self) -> list[str]:
        return self.log_view.lines

    def start(self, title: str, stream: EventStream) -> None:
        """Run ``stream`` in a worker thread and show its events; ``title`` names the run."""
        from installer.runner import CancelToken

        self.running = title
        self.verdict = None
        self._last_failure = ""
        self.cancel = CancelToken()
        log = self.log_view
        log.clear()
        log.border_title = f"log: {title}"
        self.status(f"▶ {escape(title)} running…")
        log.focus()
        self._run(stream, self.cancel)

    def stop(self, reason: str) -> None:
        """Ask the run to stop at its next checkpoint."""
        if self.cancel is not None and self.running is not None:
            self.cancel.cancel(reason)
            self.status("Stopping at the next checkpoint…")

    @work(thread=True, exclusive=True, group="action-run")
    def _run(self, stream: EventStream, cancel: CancelToken) -> None:
        worker = get_current_worker()
        try:
            for event in stream(cancel):
                if worker.is_cancelled:  # the app is closing: stop at the next checkpoint
                    cancel.cancel("the wizard was closed")
                self.post_message(self.Streamed(event))
        except Exception as e:  # noqa: BLE001 - a bug in the engine: shown, not raised
            self.post_message(self.Stopped(str(e) or type(e).__name__))
            return
        self.post_message(self.Stopped())

    def on_run_panel_streamed(self, message: Streamed) -> None:
        message.stop()
        self.show(message.event)

    def on_run_panel_stopped(self, message: Stopped) -> None:
        message.stop()
        if self.verdict is None:
            from installer.events import Event

            reason = message.crashed or "the run ended without a result"
            self.show(Event("run.failed", f"unexpected error: {reason}", exit_code=1))
        assert self.verdict is not None  # noqa: S101 - show() of run.failed sets it
        self.running = None
        self._progress(None)
        self.post_message(self.Ended(self, self.verdict))

    # -- rendering ------------------------------------------------------------------------

    def write(self, line: str) -> None:
        self.log_view.write_line(line)

    def show(self, event: Event) -> None:
        kind = event.type
        if kind == "run.started":
            self.write(event.message)
        elif kind == "step.started":
            self.write(f"==> {event.message or event.step}")
            self.status(f"▶ {escape(event.message or event.step or '')}")
        elif kind == "step.output":
            self.write(event.message)
        elif kind == "step.progress":
            self._progress(event)
        elif kind == "step.finished":
            self.write(f"✓ {event.message or event.step}")
            self._progress(None)
        elif kind == "step.skipped":
            self.write(f"✓ {event.step}: {event.message or 'already done'}")
        elif kind == "step.failed":
            self.write(f"✗ {event.message}")
            self._last_failure = event.message
            self._progress(None)
        elif kind == "rollback.started":
            self.write(f"==> {event.message}")
        elif kind == "step.rolled_back":
            self.write(f"↺ {event.message}")
        elif kind in ("run.finished", "run.failed"):
            self.verdict = event
            self._verdict(event)

    def _verdict(self, event: Event) -> None:
        code = event.exit_code if event.exit_code is not None else 1
        if event.type == "run.finished" and code == 0:
            self.write(f"✓ {event.message}")
            self.status(f"[$success]✓ {escape(event.message)}[/]")
            return
        if event.message != self._last_failure:
            self.write(f"✗ {event.message}")
        self.write(f"  exit {code}: {self.exit_meaning(code)}")
        hint = event.data.get("hint")
        if hint:
            self.write(f"  hint: {hint}")
        for problem in event.data.get("problems") or []:
            self.write(f"  - {problem}")
        status = f"[$error]✗ {escape(event.message)}[/]\n  exit {code}: {self.exit_meaning(code)}"
        if hint:
            status += f"\n  hint: {escape(str(hint))}"
        self.status(status)

    def status(self, text: str) -> None:
        self.query_one("#run-status", Static).update(text)

    @property
    def status_text(self) -> str:
        return str(self.query_one("#run-status", Static).render())

    def _progress(self, event: Event | None) -> None:
        from installer.sizes import human_size

        line = self.query_one("#run-progress")
        if event is None:
            line.display = False
            return
        line.display = True
        bar = self.query_one(ProgressBar)
        if event.total:
            bar.update(total=event.total, progress=event.current or 0)
        else:
            bar.update(total=None)
        label = event.message or ""
        if event.total and event.unit == "bytes":
            label += f" {human_size(event.current or 0)}/{human_size(event.total)}"
        self.query_one("#run-progress-label", Static).update(label)


# -- the screen ---------------------------------------------------------------------------


class ActionScreen(StepScreen):
    """A step screen whose actions run one at a time in its :class:`RunPanel`.

    Subclasses name their actions' titles (``ACTION_TITLES``) and what stopping one leaves
    behind (``STOP_CONSEQUENCE``, the end of the quit question), keep their buttons in step
    with :attr:`running` in :meth:`_sync_actions` and read their facts again in
    :meth:`_reload` after every run.
    """

    ACTION_TITLES: ClassVar[dict[str, str]] = {}
    STOP_CONSEQUENCE: ClassVar[str] = "."

    def __init__(self) -> None:
        super().__init__()
        self.running: str | None = None  # the action whose run is in the panel
        self._quit_after_run = False

    @property
    def verdict(self) -> Event | None:
        """The last run's ``run.finished`` or ``run.failed`` event."""
        return self.query_one(RunPanel).verdict

    def _sync_actions(self) -> None:
        """Enable what may run now (nothing while :attr:`running`)."""

    def _reload(self) -> None:
        """Read the screen's facts again: a run has ended."""

    def _start(self, action: str, stream: EventStream, title: str | None = None) -> None:
        if self.running is not None:
            return
        self.running = action
        self.query_one(RunPanel).start(title or self.ACTION_TITLES[action], stream)
        self._sync_actions()

    def on_run_panel_ended(self, message: RunPanel.Ended) -> None:
        message.stop()
        self.running = None
        self._sync_actions()
        self._reload()
        if self._quit_after_run:
            from screens.app import WizardOutcome

            self.app.exit(WizardOutcome.QUIT)

    @property
    def QUIT_QUESTION(self) -> str:  # type: ignore[override]
        if self.running is None:
            return "Quit the installer?"
        return (
            f"Stop the {self.ACTION_TITLES[self.running]} and quit? It stops at its next "
            f"checkpoint{self.STOP_CONSEQUENCE}"
        )

    def on_quit_confirmed(self) -> None:
        if self.running is None:
            from screens.app import WizardOutcome

            self.app.exit(WizardOutcome.QUIT)
            return
        self._quit_after_run = True
        self.query_one(RunPanel).stop("stopped from the wizard")
