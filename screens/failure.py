"""The end of a failed install: the failing step, its last log lines, and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Static

from installer import __version__
from screens.step import StepScreen

SUPPORT_FILE_NAME = "codequal-support.txt"
SUPPORT_BUNDLE_NAME = "codequal-support.tar.gz"


class FailureScreen(StepScreen):
    """A step failed: why, and the ways forward."""

    STEP = "failure"
    CSS_PATH = "failure.tcss"
    CAN_GO_BACK = False
    QUIT_QUESTION = (
        "Quit? The install journal is kept: codequal-installer apply with the saved answer "
        "file resumes at the failed step."
    )
    HELP = (
        "A step of the install failed. Its last log lines are shown; the whole log is "
        "one key away.\n\n"
        "[b]r[/b] Retry step: run the install again from the failed step (fix the cause "
        "first: the hint says how).\n"
        "[b]l[/b] Show full log.\n"
        "[b]s[/b] Save support info: a text file with the answers (no secrets), the "
        "prerequisite report and the log, to attach to a support request.\n"
        "[b]q[/b] Quit: the journal stays, so a later apply resumes."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry step"),
        Binding("l", "show_log", "Full log"),
        Binding("s", "save_support", "Support info"),
        Binding("q", "quit_failed", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        failure = self.wizard.state.failure
        step = failure.step if failure is not None else "install"
        yield Header()
        with Vertical(id="failure-body"):
            yield Static(f"[b]✗ The install failed at step {step}.[/b]", id="failure-title")
            if failure is not None:
                yield Static(failure.message, id="failure-message", markup=False)
                if failure.hint:
                    yield Static(f"Hint: {failure.hint}", id="failure-hint", markup=False)
                if failure.rolled_back:
                    yield Static(
                        "What this run changed was rolled back; an installation that was "
                        "running before keeps running.",
                        id="failure-rollback",
                    )
            with VerticalScroll(id="failure-log"):
                yield Static("", id="failure-tail", markup=False)
        with Horizontal(classes="nav"):
            yield Button("Retry step", id="retry", variant="primary", compact=True)
            yield Button("Show full log", id="log", compact=True)
            yield Button("Save support info", id="support", compact=True)
            yield Button("Quit", id="quit", variant="error", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        failure = self.wizard.state.failure
        # Wrapped, unlike the install log: these lines say why, and must be read whole.
        self.query_one("#failure-log").border_title = "last log lines"
        if failure is not None:
            self.query_one("#failure-tail", Static).update("\n".join(failure.log_tail))
        # The last line is the one that says why: keep the end in view.
        self.query_one("#failure-log", VerticalScroll).anchor()
        self.query_one("#retry", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {
            "retry": self.action_retry,
            "log": self.action_show_log,
            "support": self.action_save_support,
            "quit": self.action_quit_failed,
        }[event.button.id or "quit"]()

    def action_retry(self) -> None:
        state = self.wizard.state
        state.failure = None
        state.failed_step = None
        self.wizard.replace_with("install")

    def action_show_log(self) -> None:
        from screens.dialogs import FullLogDialog

        self.app.push_screen(FullLogDialog("Full log", self.wizard.state.run_log))

    def action_save_support(self) -> None:
        try:
            path = self.write_support_info()
        except OSError as e:
            self.notify(f"cannot write the support file: {e.strerror}", severity="error")
            return
        self.notify(f"Support info saved to {path}")
        self.save_support_bundle()

    @work(thread=True, exclusive=True, group="support-bundle")
    def save_support_bundle(self) -> None:
        """The support bundle (``support-bundle``'s archive) beside the text file."""
        from installer.credentials import LoadedSecrets
        from installer.errors import InstallerError
        from installer.support_bundle import create_support_bundle

        answers = self.wizard.state.validate().answers
        if answers is None:
            return
        out = self.wizard.save_dir / SUPPORT_BUNDLE_NAME
        loaded = LoadedSecrets(self.wizard.state.secrets_model())
        try:
            bundle = create_support_bundle(answers, loaded, out)
        except (InstallerError, OSError) as e:
            self.app.call_from_thread(self.notify, f"no support bundle: {e}", severity="error")
            return
        self.app.call_from_thread(self.notify, f"Support bundle saved to {bundle.out}")

    def write_support_info(self) -> Path:
        """Answers (no secrets), the checks, the failure and the run's log, in one file."""
        from installer.credentials import Redactor
        from installer.examples import dump_answers
        from installer.secretstore import write_private

        state = self.wizard.state
        redact = Redactor(state.secrets.values())
        lines = [f"codequal-installer {__version__}: support information", ""]
        answers = state.validate().answers
        if answers is not None:
            lines += ["== answers (no secrets)", dump_answers(answers, comments=False)]
        if state.prerequisites is not None:
            lines.append(f"== prerequisites ({state.prerequisites.target})")
            lines += [
                f"{r.name}: {r.status}; measured {r.measured}; required {r.required}"
                + (f"; hint: {r.hint}" if r.hint else "")
                for r in state.prerequisites.rows
            ]
            lines.append("")
        if state.failure is not None:
            failure = state.failure
            lines += [f"== failure at step {failure.step}", failure.message]
            if failure.hint:
                lines.append(f"hint: {failure.hint}")
            lines.append("")
        lines += ["== log", *state.run_log]
        path = self.wizard.save_dir / SUPPORT_FILE_NAME
        write_private(path, (redact("\n".join(lines)) + "\n").encode("utf-8"))
        return path

    def action_quit_failed(self) -> None:
        from screens.app import WizardOutcome

        self.app.exit(WizardOutcome.FAILED)

    def on_quit_confirmed(self) -> None:
        self.action_quit_failed()


SCREEN = FailureScreen
