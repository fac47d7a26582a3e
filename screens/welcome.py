"""Step 1, welcome: what will happen, this installer's version, and the keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Footer, Header, Static

from installer import __version__
from screens.step import StepScreen

if TYPE_CHECKING:
    from installer.backup.actions import Installation

INTRO = f"""\
[b]CodeQual installer {__version__}[/b]

This wizard installs the CodeQual platform: the API service, DeepWiki, a database, \
nginx with TLS and, if you want them, Prometheus, Grafana and Loki.

[b]What happens[/b]
  1. Prerequisites  this machine is measured and checked
  2. Target         development, production, kubernetes or enterprise
  3. Configuration  the answers the target needs, checked as you type
  4. Review         every file that will be written, and the install steps
  5. Install        live progress and logs; a failed step can be retried

Nothing on this machine changes until you press [b]Install[/b] on the review step. \
Your answers are saved as an answer file that [b]codequal-installer apply[/b] accepts.\
"""

KEYS = "Enter select · Tab/Shift+Tab move · Esc back · F1 help · Ctrl+Q quit"


class WelcomeScreen(StepScreen):
    """What the installer will do, before it does anything."""

    STEP = "welcome"
    CSS_PATH = "welcome.tcss"
    HELP = (
        "The installer walks through five steps and changes nothing until you press "
        "Install on the review step.\n\n"
        "For an unattended install, write an answer file "
        "([b]codequal-installer answers example --target T[/b]) and run "
        "[b]codequal-installer apply --answers FILE[/b]. "
        "[b]codequal-installer --answers FILE[/b] opens this wizard with that file "
        "filled in and asks only what is missing or invalid."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "start", "Start", show=False),
        Binding("ctrl+s", "start", "Start"),
        Binding("m", "manage", "Manage"),
        Binding("b", "backups", "Backups"),
    ]

    class InstallationFound(Message):
        def __init__(self, installation: Installation) -> None:
            super().__init__()
            self.installation = installation

    installation: Installation | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="welcome-body"):
            yield Static(INTRO, id="intro")
            prefill = self.wizard.state.prefilled_from
            if prefill is not None:
                problems = len(self.wizard.state.prefill_problems)
                todo = (
                    f"{problems} answer{'s' if problems != 1 else ''} to complete"
                    if problems
                    else "every answer is valid"
                )
                yield Static(f"Pre-filled from {prefill}: {todo}.", id="prefill")
            yield Static(KEYS, id="keys")
        with Horizontal(classes="nav"):
            yield Button("Start", id="start", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#start", Button).focus()
        self.call_after_refresh(self._find_installation)

    @work(thread=True, exclusive=True, group="installation")
    def _find_installation(self) -> None:
        # After the first frame (not to slow it): an installation in install_dir offers
        # Manage and its Backups.
        from screens.backups import find_installation

        installation = find_installation(self.wizard.state)
        if installation is not None:
            self.post_message(self.InstallationFound(installation))

    def on_welcome_screen_installation_found(self, message: InstallationFound) -> None:
        from screens.backups import installation_line

        message.stop()
        self.installation = message.installation
        line = (
            f"\n{installation_line(message.installation)} [b]Manage[/b] (m): its status, "
            "upgrade, rollback, uninstall; [b]Backups[/b] (b): its archives."
        )
        self.query_one("#welcome-body").mount(Static(line, id="installation"), after="#intro")
        manage = Button("Manage", id="manage", variant="primary", compact=True)
        backups = Button("Backups", id="backups", compact=True)
        self.query_one(".nav").mount(manage, backups, before="#start")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("backups", "manage"):
            return self.installation is not None
        return super().check_action(action, parameters)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "backups":
            self.action_backups()
        elif event.button.id == "manage":
            self.action_manage()
        else:
            self.action_start()

    def action_backups(self) -> None:
        if self.installation is not None:
            self.wizard.go("backups")

    def action_manage(self) -> None:
        if self.installation is not None:
            self.wizard.go("manage")

    def action_start(self) -> None:
        self.wizard.advance(self.STEP)


SCREEN = WelcomeScreen
