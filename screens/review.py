"""Step 5, review: every file the install will write, what changes, and the steps.

The plan is rendered by the engine in a worker (writing nothing). Files that hold
secrets are never shown: the review says only where each secret comes from.
Meanwhile the live checks (``check --answers``'s) try the answers against the world again,
with the secrets typed into the form; any that does not pass is shown above the files, and
one that fails keeps Install disabled until it is fixed or skipped by name.
Install saves the answer file and starts the install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.markup import escape
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

from screens.backend import CheckRow, PlanFile, PlanView, PrerequisiteView

if TYPE_CHECKING:
    from textual.widgets.tree import TreeNode
from screens.step import StepScreen

_CHANGE_MARK = {"new": "+", "changed": "~", "unchanged": " ", "removed": "-"}
_STATUS_LABEL = {"pass": "✓ pass", "warn": "! warn", "fail": "✗ fail", "skipped": "- skipped"}


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
        "[b]Live checks[/b]: your answers, with the secrets you typed, tried against the "
        "registries, database, directory, certificate and URLs (as check --answers does). "
        "Any that does not pass is listed above the files; one that fails disables Install "
        "until you fix it (Back) or skip it by name ([b]s[/b]: added to checks.skip).\n"
        "[b]Export[/b] (Ctrl+E, Kubernetes targets): a Helm chart or Kustomize tree of the "
        "same objects, for Argo CD or Flux to apply instead."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "install", "Install"),
        Binding("ctrl+e", "export", "Export"),
        Binding("s", "skip_live", "Skip failing check"),
    ]

    class Planned(Message):
        def __init__(self, plan: PlanView | None, error: str | None = None) -> None:
            super().__init__()
            self.plan = plan
            self.error = error

    class LiveChecked(Message):
        def __init__(self, view: PrerequisiteView | None, error: str | None = None) -> None:
            super().__init__()
            self.view = view
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.plan: PlanView | None = None
        # The live checks' verdicts (None while they run); a crash of the checks themselves
        # is shown, not blocking: the install runs them again before it changes anything.
        self.live: PrerequisiteView | None = None
        self.live_error: str | None = None
        # Install was pressed while the live checks ran: it starts when they pass.
        self.install_when_checked = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Rendering the plan…", id="plan-summary")
        yield Static("", id="live-checks")
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
        self.query_one("#live-checks", Static).display = False
        self._plan()
        self._check_live()

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

    @work(thread=True, exclusive=True, group="live")
    def _check_live(self) -> None:
        state = self.wizard.state
        answers = state.validate().answers
        if answers is None:
            return  # the plan says so
        try:
            view = self.wizard.backend.live_checks(answers, state.secrets_model())
        except Exception as e:  # noqa: BLE001 - shown; the install checks again anyway
            self.post_message(self.LiveChecked(None, f"{type(e).__name__}: {e}"))
            return
        self.post_message(self.LiveChecked(view))

    @property
    def live_failed(self) -> list[CheckRow]:
        return self.live.failed if self.live is not None else []

    def on_review_screen_live_checked(self, message: LiveChecked) -> None:
        self.live, self.live_error = message.view, message.error
        self._show_live()
        self._update_install()
        self.refresh_bindings()
        if self.install_when_checked:
            self.install_when_checked = False
            self.action_install()

    def _show_live(self) -> None:
        """The live checks that did not pass, in ``check``'s words; nothing when all pass."""
        box = self.query_one("#live-checks", Static)
        if self.live is None:
            box.update(f"[b]The live checks could not run:[/b] {escape(self.live_error or '')}")
            box.display = self.live_error is not None
            return
        shown = [row for row in self.live.rows if row.status in ("fail", "warn")]
        lines = []
        for row in shown:
            lines.append(f"[b]{_STATUS_LABEL[row.status]}[/b] {row.name}: {escape(row.measured)}")
            if row.hint:
                lines.append(f"    {escape(row.hint)}")
        failed = self.live_failed
        if failed:
            names = ", ".join(row.name for row in failed)
            skip = ", ".join(row.skip_name or row.name for row in failed)
            lines.append(
                f"[b]Install is disabled:[/b] {names} failed. Fix the answer (Back) and "
                f"review again, or skip it by name: [b]s[/b] adds {skip} to checks.skip."
            )
        box.update("\n".join(lines))
        box.display = bool(lines)

    def _update_install(self) -> None:
        """Install: once the plan is made and the live checks answered, none failing."""
        ready = self.plan is not None and (self.live is not None or self.live_error is not None)
        self.query_one("#install", Button).disabled = not ready or bool(self.live_failed)

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
        self._update_install()
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
        if action == "skip_live":  # shown only while a live check fails
            return bool(self.live_failed)
        return super().check_action(action, parameters)

    def action_export(self) -> None:
        from screens.export import ExportDialog

        answers = self.wizard.state.validate().answers
        if self.plan is None or answers is None:
            self.notify("The plan is not ready yet.", severity="warning")
            return
        self.app.push_screen(ExportDialog(answers, self.wizard.answers_save_path()))

    def action_skip_live(self) -> None:
        from screens.dialogs import ConfirmDialog

        names = [row.skip_name or row.name for row in self.live_failed]
        if not names:
            return

        def answered(skip: bool | None) -> None:
            if skip:
                state = self.wizard.state
                skipped = list(state.get("checks.skip") or [])
                state.set("checks.skip", [*skipped, *(n for n in names if n not in skipped)])
                self.live = self.live_error = None
                self._update_install()
                self.refresh_bindings()
                self._check_live()

        listed = ", ".join(names)
        self.app.push_screen(
            ConfirmDialog(
                f"Skip the [b]{listed}[/b] check? The install will not enforce it, and the "
                "saved answer file lists it under checks.skip.",
                yes="Skip it",
                no="Keep it",
            ),
            answered,
        )

    def action_install(self) -> None:
        if self.plan is None:
            self.notify("The plan is not ready yet.", severity="warning")
            return
        if self.live is None and self.live_error is None:
            self.install_when_checked = True
            self.notify("Install starts once the live checks pass (they take at most 10 s).")
            return
        if self.live_failed:
            names = ", ".join(row.name for row in self.live_failed)
            self.notify(
                f"{names} failed: fix it, or skip it by name (s adds it to checks.skip).",
                severity="error",
            )
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
