"""The wizard application (a welcome screen for now; the steps arrive as their own screens)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Static

from installer import __version__


class InstallerApp(App[None]):
    """The CodeQual installer wizard."""

    TITLE = "CodeQual installer"
    SUB_TITLE = f"version {__version__}"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit")]

    def __init__(self, answers_path: str | None = None) -> None:
        super().__init__()
        self.answers_path = answers_path

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(
            "Welcome. This installer puts the CodeQual platform on this machine or a cluster.\n\n"
            "For an unattended install use: codequal-installer apply --answers FILE",
            id="welcome",
        )
        yield Footer()


def run_wizard(answers_path: str | None = None) -> None:
    InstallerApp(answers_path=answers_path).run()
