"""Step 5, review: every file the install will write, what changes, and the steps.

The plan is rendered by the engine in a worker (writing nothing). Files that hold
secrets are never shown: the review says only where each secret comes from.
Install saves the answer file and starts the install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, ScrollableContainer, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Button,
    Footer,
    Header,
    LoadingIndicator,
    Static,
    TabbedContent,
    TabPane,
    Tree,
)

from screens.backend import PlanFile, PlanView

if TYPE_CHECKING:
    from textual.widgets.tree import TreeNode
from screens.step import StepScreen

_CHANGE_MARK = {"new": "+", "changed": "~", "unchanged": " ", "removed": "-"}


def _tree_label(item: PlanFile) -> str:
    name = item.path.rsplit("/", 1)[-1]
    lock = " (secret)" if item.holds_secrets else ""
    return f"{_CHANGE_MARK[item.change]} {name}{lock}"


class ReviewScreen(StepScreen):
    """What Install will do, before it does it."""

    STEP = "review"
    CSS_PATH = "review.tcss"
    HELP = (
        "[b]Files[/b]: every file the install writes, in a tree (+ new, ~ changed, "
        "- removed against an existing install); the highlighted file is previewed. Files "
        "that hold secrets are never shown, only where each secret comes from.\n"
        "[b]Changes[/b]: a unified diff against the installation already in place.\n"
        "[b]Steps[/b]: what the install does, in order.\n\n"
        "[b]Install[/b] (Ctrl+S) saves your answers as an answer file, then starts. Until "
        "then nothing on this machine has changed.\n"
        "[b]Export[/b] (Ctrl+E, Kubernetes targets): a Helm chart or Kustomize tree of the "
        "same objects, for Argo CD or Flux to apply instead."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "install", "Install"),
        Binding("ctrl+e", "export", "Export"),
    ]

    class Planned(Message):
        def __init__(self, plan: PlanView | None, error: str | None = None) -> None:
            super().__init__()
            self.plan = plan
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.plan: PlanView | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Rendering the plan…", id="plan-summary")
        yield LoadingIndicator(id="planning")
        with TabbedContent(id="review-tabs"):
            with TabPane("Files", id="tab-files"), Horizontal(id="files-pane"):
                tree: Tree[PlanFile] = Tree("files", id="file-tree")
                tree.guide_depth = 2
                yield tree
                with ScrollableContainer(id="preview-scroll"):
                    yield Static("", id="preview")
            with TabPane("Changes", id="tab-changes"), VerticalScroll():
                yield Static("", id="changes")
            with TabPane("Steps", id="tab-steps"), VerticalScroll():
                yield Static("", id="steps")
        with Horizontal(classes="nav"):
            yield Static("", classes="status")
            yield Button("Back", id="back", compact=True)
            if self._exportable:
                yield Button("Export…", id="export", disabled=True, compact=True)
            yield Button("Install", id="install", variant="success", disabled=True, compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#review-tabs", TabbedContent).display = False
        self._plan()

    @work(thread=True, exclusive=True, group="plan")
    def _plan(self) -> None:
        state = self.wizard.state
        validation = state.validate()
        if validation.answers is None:
            self.post_message(self.Planned(None, "the answers are not valid; go back to fix them"))
            return
        try:
            plan = self.wizard.backend.plan(validation.answers, state.secrets_model())
        except Exception as e:  # noqa: BLE001 - shown to the operator, who can go back
            self.post_message(self.Planned(None, str(e) or type(e).__name__))
            return
        self.post_message(self.Planned(plan))

    def on_review_screen_planned(self, message: Planned) -> None:
        self.query_one("#planning", LoadingIndicator).display = False
        summary = self.query_one("#plan-summary", Static)
        if message.plan is None:
            summary.update(f"[b]The plan could not be made:[/b] {message.error}\nEsc goes back.")
            return
        plan = self.plan = message.plan
        self.wizard.state.plan_steps = list(plan.steps)
        counts = {kind: 0 for kind in _CHANGE_MARK}
        for item in plan.files:
            counts[item.change] += 1
        changed = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        save_to = self.wizard.answers_save_path()
        summary.update(
            f"{len(plan.files)} files under [b]{plan.root}[/b] ({changed}). "
            f"Install saves your answers to {save_to}, then starts."
        )
        self._fill_tree(plan)
        self._fill_changes(plan)
        self._fill_steps(plan)
        self.query_one("#review-tabs", TabbedContent).display = True
        install = self.query_one("#install", Button)
        install.disabled = False
        for export in self.query("#export").results(Button):
            export.disabled = False
        self.query_one("#file-tree", Tree).focus()

    def _fill_tree(self, plan: PlanView) -> None:
        tree: Tree[PlanFile] = self.query_one("#file-tree", Tree)
        tree.clear()
        tree.root.label = plan.root
        tree.root.expand()
        folders: dict[str, TreeNode[PlanFile]] = {"": tree.root}
        first: TreeNode[PlanFile] | None = None
        for item in sorted(plan.files, key=lambda f: (f.path.count("/") > 0, f.path)):
            parts = item.path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    parent = folders["/".join(parts[: depth - 1])]
                    folders[folder] = parent.add(parts[depth - 1] + "/", expand=True)
            node = folders["/".join(parts[:-1])].add_leaf(_tree_label(item), data=item)
            first = first or node
        if first is not None:
            tree.move_cursor(first)
            self._preview(first.data)

    def _fill_changes(self, plan: PlanView) -> None:
        from rich.syntax import Syntax

        diffs = "".join(item.diff for item in plan.files if item.diff)
        changes = self.query_one("#changes", Static)
        if not any(item.change != "new" for item in plan.files):
            changes.update(f"No installation at {plan.root} yet: every file is new.")
        elif not diffs:
            changes.update("Nothing changes: the installed files are the same.")
        else:
            changes.update(Syntax(diffs, "diff", theme="ansi_dark", word_wrap=False))

    def _fill_steps(self, plan: PlanView) -> None:
        lines = [f"{n:>2}. {title}" for n, (_, title) in enumerate(plan.steps, 1)]
        if plan.secrets:
            lines += ["", "[b]Secrets[/b] (values never shown)"]
            lines += [f"    {key}: {shown}" for key, shown in plan.secrets]
        self.query_one("#steps", Static).update("\n".join(lines))

    def _preview(self, item: PlanFile | None) -> None:
        preview = self.query_one("#preview", Static)
        if item is None:
            preview.update("")
            return
        if item.holds_secrets:
            secrets = self.plan.secrets if self.plan is not None else []
            lines = [
                f"{item.path} holds secrets (mode {item.mode:04o}); its contents are not shown.",
                "",
                *(f"  {key}: {shown}" for key, shown in secrets),
            ]
            preview.update("\n".join(lines))
            return
        from rich.syntax import Syntax

        lexer = Syntax.guess_lexer(item.path, item.preview)
        preview.update(Syntax(item.preview, lexer, theme="ansi_dark", line_numbers=True))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[PlanFile]) -> None:
        event.stop()
        if event.node.data is not None:
            self._preview(event.node.data)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "back":
            self.action_back()
        elif event.button.id == "export":
            self.action_export()
        else:
            self.action_install()

    @property
    def _exportable(self) -> bool:
        return self.wizard.state.target in ("kubernetes", "enterprise")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export":  # hidden where there is nothing to export
            return self._exportable
        return super().check_action(action, parameters)

    def action_export(self) -> None:
        from screens.export import ExportDialog

        answers = self.wizard.state.validate().answers
        if self.plan is None or answers is None:
            self.notify("The plan is not ready yet.", severity="warning")
            return
        self.app.push_screen(ExportDialog(answers, self.wizard.answers_save_path()))

    def action_install(self) -> None:
        if self.plan is None:
            self.notify("The plan is not ready yet.", severity="warning")
            return
        try:
            self.wizard.save_answers()
        except OSError as e:
            self.notify(f"cannot save the answer file: {e.strerror}", severity="error")
            return
        # Where the answers went was said on this screen; the done and failure steps and
        # the exit message say it again.
        self.wizard.go("install")


SCREEN = ReviewScreen
