"""The review step's export (Kubernetes targets): the install as a Helm chart or a Kustomize
tree, for Argo CD or Flux to apply instead of the installer.

The same export as ``plan --format helm|kustomize`` (:func:`installer.export.export`); it
writes only into the directory chosen here and holds no secret.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, RadioButton, RadioSet, Static

if TYPE_CHECKING:
    from installer.answers import AnswerFile

# Where each format goes by default, beside the saved answer file.
DEFAULT_DIRS = {"helm": "codequal-chart", "kustomize": "codequal-kustomize"}


class ExportDialog(ModalScreen[list[str] | None]):
    """Choose Helm or Kustomize and a directory; write the export there."""

    CSS_PATH: ClassVar[list[str | PurePath]] = ["dialogs.tcss", "export.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]

    class Exported(Message):
        def __init__(self, written: list[str] | None, error: str | None = None) -> None:
            super().__init__()
            self.written = written
            self.error = error

    def __init__(self, answers: AnswerFile, answers_path: Path) -> None:
        super().__init__()
        self._answers = answers
        self._answers_path = answers_path
        self._format = "helm"

    def _default_dir(self, output_format: str) -> str:
        return str(self._answers_path.parent / DEFAULT_DIRS[output_format])

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog export-dialog") as box:
            box.border_title = "Export for GitOps"
            yield Static(
                "Write what Install would apply as files for Argo CD or Flux: no secret is "
                "in them (create-secrets.sh beside them makes the Secrets).",
                classes="question",
            )
            with RadioSet(id="export-format"):
                yield RadioButton("Helm chart", id="format-helm", value=True)
                yield RadioButton("Kustomize base and overlay", id="format-kustomize")
            yield Input(self._default_dir("helm"), id="export-dir")
            yield Static("", id="export-status")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="export-write", variant="success")
                yield Button("Close", id="export-close", variant="primary")

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        chosen = "kustomize" if event.pressed.id == "format-kustomize" else "helm"
        directory = self.query_one("#export-dir", Input)
        if directory.value == self._default_dir(self._format):
            directory.value = self._default_dir(chosen)
        self._format = chosen

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "export-close":
            self.dismiss(None)
            return
        directory = self.query_one("#export-dir", Input).value.strip()
        if not directory:
            self.query_one("#export-status", Static).update("Name a directory to write into.")
            return
        event.button.disabled = True
        self.query_one("#export-status", Static).update("Exporting…")
        self._export(self._format, Path(directory).expanduser())

    @work(thread=True, exclusive=True, group="export")
    def _export(self, output_format: str, directory: Path) -> None:
        from installer.errors import InstallerError
        from installer.export import export

        try:
            written = export([(self._answers_path.name, self._answers)], output_format, directory)
        except InstallerError as e:
            self.post_message(self.Exported(None, e.message))
            return
        except OSError as e:
            self.post_message(self.Exported(None, f"cannot write {directory}: {e.strerror}"))
            return
        self.post_message(self.Exported(written))

    def on_export_dialog_exported(self, message: Exported) -> None:
        status = self.query_one("#export-status", Static)
        self.query_one("#export-write", Button).disabled = False
        if message.written is None:
            status.update(f"[b]Not exported:[/b] {message.error}")
            return
        directory = self.query_one("#export-dir", Input).value.strip()
        what = "Helm chart" if self._format == "helm" else "Kustomize base and overlay"
        status.update(f"{what}: {len(message.written)} files in [b]{directory}[/b].")
        self.notify(f"{what} written to {directory}")
