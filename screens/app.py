"""The wizard application: the step order, the keys every step shares, saving answers.

Start-up is measured (benchmarks/bench_wizard_start.py), so this module imports only what
the first frame needs; each step's screen module, the engine and pydantic load when they
are first used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from installer import __version__
from screens.state import WizardState

if TYPE_CHECKING:
    from textual.screen import Screen

    from screens.backend import WizardBackend

# The steps, in order; each is a Screen in screens/<step>.py.
STEP_ORDER: tuple[str, ...] = (
    "welcome",
    "prerequisites",
    "target",
    "configuration",
    "review",
    "install",
)
STEP_TITLES: dict[str, str] = {
    "welcome": "Welcome",
    "prerequisites": "Prerequisites",
    "target": "Target",
    "configuration": "Configuration",
    "review": "Review",
    "install": "Install",
    "done": "Done",
    "failure": "Install failed",
    "backups": "Backups",
    "manage": "Manage",
}
ANSWERS_FILE_NAME = "codequal-answers.yaml"
SECRETS_FILE_NAME = "codequal-secrets.yaml"


class WizardOutcome:
    """How the wizard ended: what ``run_wizard`` turns into an exit code."""

    INSTALLED = "installed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    QUIT = "quit"


class InstallerApp(App[str]):
    """The CodeQual installer wizard."""

    TITLE = "CodeQual installer"
    SUB_TITLE = f"version {__version__}"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "request_quit", "Quit", priority=True),
        Binding("ctrl+c", "request_quit", "Quit", show=False, priority=True),
    ]
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        answers_path: str | None = None,
        *,
        backend: WizardBackend | None = None,
        state: WizardState | None = None,
        save_dir: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        first_step: str = "welcome",
    ) -> None:
        super().__init__()
        self.answers_path = answers_path
        self.state = state if state is not None else WizardState()
        self._backend = backend
        self.save_dir = Path(save_dir) if save_dir is not None else Path.cwd()
        self.clock = clock
        self.first_step = first_step

    @property
    def backend(self) -> WizardBackend:
        """The engine (loaded on first use, after the first frame is painted)."""
        if self._backend is None:
            from screens.engine import EngineBackend

            self._backend = EngineBackend()
        return self._backend

    def get_default_screen(self) -> Screen[None]:
        # The welcome step is the app's base screen: no empty screen is laid out beneath it
        # before the first frame. (A later first step, for tests, is pushed on mount.)
        if self.first_step == "welcome":
            return self.make_screen("welcome")
        return super().get_default_screen()

    def on_mount(self) -> None:
        if self.first_step != "welcome":
            self.push_screen(self.make_screen(self.first_step))

    # -- navigation --------------------------------------------------------------------

    def make_screen(self, step: str) -> Screen[None]:
        """The screen of ``step``, its module imported only now."""
        import importlib

        module = importlib.import_module(f"screens.{step}")
        screen: Screen[None] = module.SCREEN()
        return screen

    def go(self, step: str) -> None:
        """Open ``step`` on top of the current one (Esc comes back)."""
        self.push_screen(self.make_screen(step))

    def replace_with(self, step: str) -> None:
        """Open ``step`` in place of the current one (there is no way back)."""
        self.switch_screen(self.make_screen(step))

    def next_step(self, current: str) -> str:
        """The step after ``current``, skipping what a pre-filled answer file settled."""
        index = STEP_ORDER.index(current)
        step = STEP_ORDER[index + 1]
        if self.state.prefilled_from is not None:
            if step == "target" and "target" not in self.state.prefill_problems:
                step = "configuration"
            if step == "configuration" and self.state.validate().ok and not self.missing_secrets():
                step = "review"
        return step

    def advance(self, current: str) -> None:
        self.go(self.next_step(current))

    def missing_secrets(self) -> list[str]:
        """Secrets the engine requires for these answers that nobody supplied."""
        validation = self.state.validate()
        if validation.answers is None:
            return []
        from screens.form import required_secrets

        supplied = set(self.state.secrets) | _environment_secrets()
        return [key for key in required_secrets(validation.answers) if key not in supplied]

    def finish_install(self, *, succeeded: bool) -> None:
        """The run is over: show done or failure in place of the install screen."""
        self.replace_with("done" if succeeded else "failure")

    def exit_interrupted(self) -> None:
        self.exit(WizardOutcome.INTERRUPTED)

    # -- saving ------------------------------------------------------------------------

    def answers_save_path(self) -> Path:
        """Where Install saves the answer file: the pre-filled file itself, or a new one."""
        if self.answers_path is not None:
            return Path(self.answers_path)
        return self.save_dir / ANSWERS_FILE_NAME

    def save_answers(self) -> Path:
        """Write the complete answer file (defaults included, no secrets) that apply accepts.

        Secrets typed into the form go to a separate file, mode 0600, next to it, so that
        ``apply --answers ... --secrets ...`` can finish or repeat the install.
        """
        from installer.credentials import write_secrets_file
        from installer.examples import dump_answers

        validation = self.state.validate()
        if validation.answers is None:
            raise ValueError("the answers are not valid yet")
        path = self.answers_save_path()
        header = (
            "Saved by the CodeQual installer wizard. Install (or resume) without the wizard: "
            f"codequal-installer apply --answers {path.name}"
        )
        text = dump_answers(validation.answers, header=header)
        _write_atomic(path, text.encode("utf-8"))
        self.state.saved_answers = str(path)
        supplied = {k: v for k, v in self.state.secrets.items() if v}
        if supplied:
            secrets_path = path.with_name(SECRETS_FILE_NAME)
            write_secrets_file(
                secrets_path,
                supplied,
                comment="Secrets for the answer file next to this one (mode 0600).",
            )
            self.state.saved_secrets = str(secrets_path)
        return path

    # -- keys --------------------------------------------------------------------------

    async def action_request_quit(self) -> None:
        """Ctrl+Q: ask first; a step may say what quitting would leave behind."""
        from screens.dialogs import ConfirmDialog

        if isinstance(self.screen, ConfirmDialog):
            return
        question = getattr(self.screen, "QUIT_QUESTION", None) or (
            "Quit the installer? Nothing has been changed on this machine."
        )

        def answered(quit_now: bool | None) -> None:
            if quit_now:
                on_quit = getattr(self.screen, "on_quit_confirmed", None)
                if callable(on_quit):
                    on_quit()
                else:
                    self.exit(WizardOutcome.QUIT)

        self.push_screen(ConfirmDialog(question, yes="Quit", no="Stay"), answered)


def _environment_secrets() -> set[str]:
    from installer.credentials import secrets_from_environment

    return set(secrets_from_environment(os.environ))


def _write_atomic(path: Path, content: bytes) -> None:
    from installer.statedir import replace_file

    replace_file(path, content, 0o644)


def load_prefill(answers_path: str) -> WizardState:
    """A wizard state pre-filled from an answer file, with what it leaves to ask.

    A file that cannot be read or is not a YAML mapping is an error (exit 2, before any
    screen opens); a valid mapping with invalid or missing answers opens the wizard at
    exactly those answers.
    """
    from installer.errors import AnswerFileError
    from installer.validation import validate_answers_document
    from installer.yamlsource import read_yaml

    document = read_yaml(answers_path, what="answer file")
    state = WizardState(draft=dict(document.data), prefilled_from=answers_path)
    state.draft.setdefault("version", 1)
    _, problems = validate_answers_document(document)
    unreadable = [str(p) for p in problems if p.path == "version"]
    if unreadable:
        raise AnswerFileError(
            f"{document.source}: this installer reads answer files of version 1",
            problems=unreadable,
        )
    for problem in problems:
        state.prefill_problems.setdefault(problem.path, []).append(problem.message)
    if "target" in state.prefill_problems:
        state.draft.pop("target", None)
    return state


def run_wizard(answers_path: str | None = None) -> None:
    """Run the wizard (the console script's default command).

    Raises the engine's errors for the command line to report with their exit codes:
    an unreadable answer file (2), a failed install (1), an interrupted one (130).
    """
    from installer.errors import Interrupted, StepFailed

    state = load_prefill(answers_path) if answers_path is not None else None
    app = InstallerApp(answers_path=answers_path, state=state)
    outcome = app.run()
    if outcome == WizardOutcome.FAILED:
        raise StepFailed(
            "the install failed; its journal is kept",
            step=app.state.failed_step or "install",
            hint=_resume_hint(app.state),
        )
    if outcome == WizardOutcome.INTERRUPTED:
        raise Interrupted("the install was stopped between steps", hint=_resume_hint(app.state))


def _resume_hint(state: WizardState) -> str:
    command = "codequal-installer apply"
    if state.saved_answers:
        command += f" --answers {state.saved_answers}"
    if state.saved_secrets:
        command += f" --secrets {state.saved_secrets}"
    return f"resume with: {command}"
