"""Step 2, prerequisites: the engine's checks of this machine, with fixes and skips.

Detection and the checks run in a thread worker (they probe Docker, ports, DNS, the
cluster), so the screen stays responsive; results come back as a message.
"""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, LoadingIndicator, Static

from screens.backend import CheckRow, Detection, PrerequisiteView
from screens.step import StepScreen

_STATUS_LABEL = {"pass": "✓ pass", "warn": "! warn", "fail": "✗ fail", "skipped": "- skipped"}


class PrerequisitesScreen(StepScreen):
    """What this machine offers against what the target needs."""

    STEP = "prerequisites"
    CSS_PATH = "prerequisites.tcss"
    HELP = (
        "Each row is one check of this machine: what was measured, what the target "
        "needs, and for anything that does not pass, how to fix it (shown below the "
        "table for the highlighted row).\n\n"
        "[b]r[/b] re-runs every check (after you fixed something). "
        "[b]s[/b] skips the highlighted check: the install will not enforce it, and the "
        "answer file records it under checks.skip, as an operator on a small test machine "
        "would do.\n\n"
        "The install runs these checks again, for the target you choose, as its first step."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rerun", "Re-run"),
        Binding("s", "skip", "Skip check"),
        Binding("ctrl+s", "continue", "Continue"),
    ]

    class Checked(Message):
        """The worker's result: detection and the prerequisite report (or an error)."""

        def __init__(
            self,
            detection: Detection | None,
            report: PrerequisiteView | None,
            error: str | None = None,
        ) -> None:
            super().__init__()
            self.detection = detection
            self.report = report
            self.error = error

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="prerequisites-body"):
            yield Static("Checking this machine…", id="checked-against")
            yield LoadingIndicator(id="checking")
            yield DataTable(id="checks", cursor_type="row", zebra_stripes=True)
            yield Static("", id="check-hint")
        with Horizontal(classes="nav"):
            yield Static("", id="check-summary", classes="status")
            yield Button("Re-run", id="rerun", compact=True)
            yield Button("Skip check", id="skip", compact=True)
            yield Button("Continue", id="continue", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        table.add_columns("Check", "Status", "Measured")
        table.display = False
        state = self.wizard.state
        if state.prerequisites is not None:
            self._show(state.prerequisites)
        else:
            self.action_rerun()

    # -- running the checks ------------------------------------------------------------

    def action_rerun(self) -> None:
        self.query_one("#checking", LoadingIndicator).display = True
        self.query_one("#check-summary", Static).update("checking…")
        self._check()

    @work(thread=True, exclusive=True, group="prerequisites")
    def _check(self) -> None:
        state = self.wizard.state
        backend = self.wizard.backend
        try:
            detection = state.detection or backend.detect()
            target = state.target or detection.recommended_target
            report = backend.prerequisites(state.answers_for_checks(target))
        except Exception as e:  # noqa: BLE001 - any engine failure is shown, not raised
            self.post_message(self.Checked(None, None, f"{type(e).__name__}: {e}"))
            return
        self.post_message(self.Checked(detection, report))

    def on_prerequisites_screen_checked(self, message: Checked) -> None:
        self.query_one("#checking", LoadingIndicator).display = False
        if message.report is None:
            self.query_one("#checked-against", Static).update(
                f"[b]The checks could not run:[/b] {message.error}"
            )
            self.query_one("#check-summary", Static).update("r re-runs the checks")
            return
        state = self.wizard.state
        state.detection = message.detection
        state.prerequisites = message.report
        self._show(message.report)

    def _show(self, report: PrerequisiteView) -> None:
        state = self.wizard.state
        detection = state.detection
        against = f"Checked against the [b]{report.target}[/b] target"
        if detection is not None and detection.recommended_target == report.target:
            against += f" (recommended: {detection.reason})"
        self.query_one("#checked-against", Static).update(against + ".")
        table = self.query_one(DataTable)
        table.display = True
        keep = table.cursor_row
        table.clear()
        for row in report.rows:
            table.add_row(row.name, _STATUS_LABEL[row.status], row.measured)
        if report.rows:
            table.move_cursor(row=min(keep, len(report.rows) - 1))
        counts = report.counts()
        marks = {"pass": "✓", "warn": "!", "fail": "✗", "skipped": "-"}
        summary = "  ".join(f"{marks[k]} {counts[k]}" for k in marks if counts[k])
        self.query_one("#check-summary", Static).update(summary)
        self._show_hint()
        table.focus()

    def _highlighted(self) -> CheckRow | None:
        report = self.wizard.state.prerequisites
        table = self.query_one(DataTable)
        if report is None or not report.rows or not table.display:
            return None
        return report.rows[min(table.cursor_row, len(report.rows) - 1)]

    def _show_hint(self) -> None:
        """The highlighted check: what it needs, and how to fix it when it did not pass."""
        row = self._highlighted()
        detail = self.query_one("#check-hint", Static)
        if row is None:
            detail.update("")
            return
        if row.status == "skipped":
            text = f"[b]{row.name}[/b] skipped"
        else:
            text = f"[b]{row.name}[/b] needs {escape(row.required)}"
        if row.hint:
            style = "b" if row.status in ("fail", "warn") else "dim"
            text += f"\n[{style}]{escape(row.hint)}[/{style}]"
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_hint()

    # -- skipping and going on ---------------------------------------------------------

    def action_skip(self) -> None:
        from screens.dialogs import ConfirmDialog

        row = self._highlighted()
        if row is None or row.status in ("pass", "skipped") or row.skip_name is None:
            self.notify("Only a check that warns or fails can be skipped.", severity="warning")
            return
        name = row.skip_name

        def answered(skip: bool | None) -> None:
            if skip:
                state = self.wizard.state
                skipped = list(state.get("checks.skip") or [])
                if name not in skipped:
                    state.set("checks.skip", [*skipped, name])
                self.action_rerun()

        self.app.push_screen(
            ConfirmDialog(
                f"Skip the [b]{name}[/b] check? The install will not enforce it, and the "
                "saved answer file lists it under checks.skip.",
                yes="Skip it",
                no="Keep it",
            ),
            answered,
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"rerun": self.action_rerun, "skip": self.action_skip}.get(
            event.button.id or "", self.action_continue
        )()

    def action_continue(self) -> None:
        from screens.dialogs import ConfirmDialog

        report = self.wizard.state.prerequisites
        if report is None:
            self.notify("The checks have not finished yet.", severity="warning")
            return
        failed = report.failed
        if not failed:
            self.wizard.advance(self.STEP)
            return

        def answered(go_on: bool | None) -> None:
            if go_on:
                self.wizard.advance(self.STEP)

        names = ", ".join(row.name for row in failed)
        self.app.push_screen(
            ConfirmDialog(
                f"{len(failed)} check{'s' if len(failed) != 1 else ''} fail ({names}). "
                "The install checks again for the target you choose and stops if they still "
                "fail. Continue anyway?",
                yes="Continue",
                no="Stay",
            ),
            answered,
        )


SCREEN = PrerequisitesScreen
