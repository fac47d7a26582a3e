"""The base of every wizard step: its place in the order, Esc back, F1 help."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.binding import Binding, BindingType
from textual.screen import Screen

if TYPE_CHECKING:
    from screens.app import InstallerApp


class StepScreen(Screen[None]):
    """One step of the wizard. Subclasses set ``STEP`` and ``HELP``."""

    STEP: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    # What Ctrl+Q asks on this step; None for the app's default question.
    QUIT_QUESTION: ClassVar[str | None] = None
    CAN_GO_BACK: ClassVar[bool] = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("f1", "help", "Help"),
    ]

    @property
    def wizard(self) -> InstallerApp:
        return cast("InstallerApp", self.app)

    def on_mount(self) -> None:
        from screens.app import STEP_ORDER, STEP_TITLES

        title = STEP_TITLES.get(self.STEP, self.STEP)
        if self.STEP in STEP_ORDER:
            number = STEP_ORDER.index(self.STEP) + 1
            self.sub_title = f"step {number} of {len(STEP_ORDER)}: {title}"
        else:
            self.sub_title = title

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return self.can_go_back
        return True

    @property
    def can_go_back(self) -> bool:
        """There is an earlier step beneath this one, and this step allows going back."""
        stack = self.app.screen_stack
        return self.CAN_GO_BACK and len(stack) > 1 and isinstance(stack[-2], StepScreen)

    def action_back(self) -> None:
        if self.can_go_back:
            self.app.pop_screen()

    def action_help(self) -> None:
        from screens.app import STEP_TITLES
        from screens.dialogs import HelpDialog

        self.app.push_screen(HelpDialog(STEP_TITLES.get(self.STEP, self.STEP), self.HELP))
