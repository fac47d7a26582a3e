"""Manage: the installation in ``install_dir`` — its status, and upgrade, backups, rollback
and uninstall, each reviewed first.

Reached from the welcome step when ``install_dir`` holds an installation. The status is
``status``'s (:func:`installer.manage.overview`). Each action opens a review that runs the
command's own checks and says exactly what will change (upgrade: from and to, the path,
the images, the pre-upgrade backup; rollback: what will be lost; uninstall: the inventory,
what is kept and what is removed, the domain typed for a purge) and nothing runs until it
is confirmed. The run then streams into the same live log the install step uses
(:class:`screens.action.RunPanel`). Backups and restore are the Backups screen's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Header,
    Input,
    LoadingIndicator,
    OptionList,
    Static,
)
from textual.widgets.option_list import Option

from screens.action import ActionReview, ActionScreen, RunPanel

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets
    from installer.manage import Overview, ReleaseChoice, UninstallPreview, UpgradePreview
    from installer.rollback import RollbackPreview
    from installer.runner import CancelToken
    from installer.uninstall import Inventory

_TITLES = {"upgrade": "upgrade", "rollback": "rollback", "uninstall": "uninstall"}
BUNDLE_OPTION = "bundle"


def _exit_meaning(code: int) -> str:
    from installer.manage import exit_meaning

    return exit_meaning(code)


@dataclass(frozen=True)
class _Loaded:
    install_dir: str
    overview: Overview
    answers: AnswerFile | None


def overview_text(overview: Overview) -> str:
    """The status block: release, health, services, last backup, the last five entries."""
    if not overview.installed:
        return f"No installation in {escape(overview.install_dir)}."
    health = "[$success]healthy[/]" if overview.healthy else "[$error]NOT healthy[/]"
    lines = [
        f"[b]CodeQual {escape(overview.release or '?')}[/b] ({escape(overview.target or '?')}) "
        f"in {escape(overview.install_dir)}: {health}; schema version "
        f"{escape(overview.schema_version or '?')}",
    ]
    if overview.docker_error:
        lines.append(f"[$error]{escape(overview.docker_error)}[/]")
    if overview.services:
        lines.append(
            "Services: " + " · ".join(f"{escape(n)} {escape(s)}" for n, s in overview.services)
        )
    backup = overview.last_backup
    if backup:
        verified = "verified" if backup.get("verified") else "[$warning]NOT verified[/]"
        lines.append(
            f"Last backup: {escape(Path(str(backup['archive'])).name)} "
            f"({escape(str(backup.get('created')))}, {verified})"
        )
    else:
        lines.append("Last backup: none")
    if overview.history:
        lines.append("[b]History[/b] (newest last)")
        lines += [f"  {escape(entry.describe())}" for entry in overview.history]
    return "\n".join(lines)


class ManageScreen(ActionScreen):
    """Status, then Upgrade, Backups, Rollback and Uninstall, each with a review."""

    STEP = "manage"
    CSS_PATH = "manage.tcss"
    HELP = (
        "The installation in install_dir: its release, health, last backup and the last "
        "five entries of its history (`codequal-installer status`).\n\n"
        "[b]u[/b] Upgrade: choose a release this installer knows (or an offline bundle); "
        "the review runs the upgrade's checks (health, the upgrade path and its required "
        "stops, free disk) and says what changes. A verified backup is taken first; a "
        "failed upgrade rolls back by itself.\n"
        "[b]b[/b] Backups: the archives; create, verify and restore.\n"
        "[b]r[/b] Rollback: back to the release before the last upgrade, from that "
        "upgrade's backup; the review says what will be lost.\n"
        "[b]x[/b] Uninstall: the inventory first; data is kept unless you purge, which "
        "asks you to type the domain.\n"
        "[b]s[/b] reads the status again. Runs stream their log below; Ctrl+Q asks before "
        "stopping one."
    )
    ACTION_TITLES: ClassVar[dict[str, str]] = _TITLES
    STOP_CONSEQUENCE = "; its journal is kept, and running it again resumes or rolls back."
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "upgrade", "Upgrade"),
        Binding("b", "backups", "Backups"),
        Binding("r", "rollback", "Rollback"),
        Binding("x", "uninstall", "Uninstall"),
        Binding("s", "refresh", "Status"),
    ]

    class Loaded(Message):
        def __init__(self, loaded: _Loaded) -> None:
            super().__init__()
            self.loaded = loaded

    class Prepared(Message):
        """A review's facts are ready (or could not be gathered): open its dialog."""

        def __init__(self, action: str, preview: Any, error: str | None = None) -> None:
            super().__init__()
            self.action = action
            self.preview = preview
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.loaded: _Loaded | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="manage-body"):
            with VerticalScroll(id="manage-overview"):
                yield Static("Reading the installation's status…", id="overview")
            with Horizontal(classes="nav", id="manage-actions"):
                yield Static("", classes="status")
                yield Button("Upgrade", id="upgrade", variant="primary", compact=True)
                yield Button("Backups", id="backups", compact=True)
                yield Button("Rollback", id="rollback", variant="warning", compact=True)
                yield Button("Uninstall", id="uninstall", variant="error", compact=True)
            yield RunPanel(
                idle="Choose an action: it is reviewed before anything changes.",
                exit_meaning=_exit_meaning,
            )
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self._sync_actions()
        self._load()

    # -- the status -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="manage-status")
    def _load(self) -> None:
        from installer import manage
        from screens.backups import install_dir_of

        state = self.wizard.state
        answers = state.validate().answers if state.target else None
        install_dir = install_dir_of(state)
        self.post_message(self.Loaded(_Loaded(install_dir, manage.overview(install_dir), answers)))

    def on_manage_screen_loaded(self, message: Loaded) -> None:
        message.stop()
        self.loaded = message.loaded
        text = overview_text(message.loaded.overview)
        if message.loaded.answers is None:
            text += (
                "\n[$warning]Upgrade, rollback and uninstall need the installation's answer "
                "file: start the wizard with --answers FILE.[/]"
            )
        self.query_one("#overview", Static).update(text)
        self._sync_actions()

    # -- actions --------------------------------------------------------------------------

    def _allowed(self, action: str) -> bool:
        if self.running is not None or self.loaded is None:
            return False
        installed = self.loaded.overview.installed
        if action == "backups":
            return True
        return installed and self.loaded.answers is not None

    def _sync_actions(self) -> None:
        for action in ("upgrade", "backups", "rollback", "uninstall"):
            self.query_one(f"#{action}", Button).disabled = not self._allowed(action)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("upgrade", "backups", "rollback", "uninstall"):
            return True if self._allowed(action) else None
        if action in ("back", "refresh") and self.running is not None:
            return False
        return super().check_action(action, parameters)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action = getattr(self, f"action_{event.button.id}", None)
        if callable(action):
            action()

    def action_refresh(self) -> None:
        if self.running is None:
            self._load()

    def action_backups(self) -> None:
        if self._allowed("backups"):
            self.wizard.go("backups")

    def action_upgrade(self) -> None:
        if not self._allowed("upgrade") or self.loaded is None or self.loaded.answers is None:
            return
        installed = self.loaded.overview.release or ""
        self._prepare("upgrade", lambda: _upgrade_choices(installed))

    def action_rollback(self) -> None:
        if not self._allowed("rollback") or self.loaded is None or self.loaded.answers is None:
            return
        answers = self.loaded.answers
        secrets = self._secrets
        self._prepare("rollback", lambda: _rollback_preview(answers, secrets()))

    def action_uninstall(self) -> None:
        if not self._allowed("uninstall") or self.loaded is None or self.loaded.answers is None:
            return
        from installer import manage

        answers = self.loaded.answers
        self._prepare("uninstall", lambda: manage.uninstall_preview(answers))

    def _secrets(self) -> LoadedSecrets:
        return manage_secrets(self.wizard.state.secrets, self.wizard.answers_path)

    @work(thread=True, exclusive=True, group="manage-review")
    def _prepare(self, action: str, gather: Any) -> None:
        from installer.errors import InstallerError

        try:
            preview = gather()
        except InstallerError as e:
            self.post_message(self.Prepared(action, None, e.message))
            return
        except Exception as e:  # noqa: BLE001 - shown to the operator
            self.post_message(self.Prepared(action, None, str(e) or type(e).__name__))
            return
        self.post_message(self.Prepared(action, preview))

    def on_manage_screen_prepared(self, message: Prepared) -> None:
        message.stop()
        loaded = self.loaded
        if message.preview is None or loaded is None or loaded.answers is None:
            self.notify(f"cannot prepare the {message.action}: {message.error}", severity="error")
            return
        answers = loaded.answers
        if message.action == "upgrade":
            review: ActionReview = UpgradeReview(
                loaded.overview.release or "?", answers, message.preview, self._secrets
            )
            self.app.push_screen(review, self._upgrade_confirmed)
        elif message.action == "rollback":
            self.app.push_screen(RollbackReview(message.preview), self._rollback_confirmed)
        elif message.action == "uninstall":
            self.app.push_screen(UninstallReview(message.preview), self._uninstall_confirmed)

    def _upgrade_confirmed(self, choice: UpgradeChoice | None) -> None:
        if choice is None or self.loaded is None or self.loaded.answers is None:
            return
        from installer import manage

        answers = self.loaded.answers
        secrets = self._secrets

        def start(cancel: CancelToken) -> Any:
            return manage.upgrade_events(
                answers,
                secrets(),
                to=choice.version,
                bundle=choice.bundle,
                key=choice.key,
                cancel=cancel,
            )

        self._start("upgrade", start, f"upgrade to {choice.version}")

    def _rollback_confirmed(self, preview: RollbackPreview | None) -> None:
        if preview is None or self.loaded is None or self.loaded.answers is None:
            return
        answers = self.loaded.answers
        secrets = self._secrets

        def start(cancel: CancelToken) -> Any:
            from installer import rollback

            # The preview confirmed is what the history records as lost.
            return rollback.rollback_events(answers, secrets(), cancel=cancel, preview=preview)

        self._start("rollback", start)

    def _uninstall_confirmed(self, purge: bool | None) -> None:
        if purge is None or self.loaded is None or self.loaded.answers is None:
            return
        from installer import manage

        answers = self.loaded.answers

        def start(cancel: CancelToken) -> Any:
            return manage.uninstall_events(answers, purge=purge, cancel=cancel)

        self._start("uninstall", start, "uninstall --purge" if purge else "uninstall")

    def _reload(self) -> None:
        self._load()


def manage_secrets(typed: dict[str, str], answers_path: str | None) -> LoadedSecrets:
    """The secrets a day-2 run renders with: the secrets file the wizard saves beside the
    answer file (``codequal-secrets.yaml``), when there is one, under what was typed, over
    the ``CODEQUAL_<KEY>`` environment, as ``--secrets FILE`` would give them."""
    from installer.credentials import Secrets
    from screens.app import SECRETS_FILE_NAME
    from screens.engine import loaded_secrets

    values: dict[str, str] = {}
    if answers_path is not None:
        beside = Path(answers_path).with_name(SECRETS_FILE_NAME)
        if beside.is_file():
            from installer.validation import load_secrets

            values.update(load_secrets(str(beside), {}).secrets.supplied())
    values.update({k: v for k, v in typed.items() if v})
    return loaded_secrets(Secrets.model_validate(values))


def _upgrade_choices(installed: str) -> list[ReleaseChoice]:
    from installer import manage

    return manage.upgrade_choices(installed)


def _rollback_preview(answers: AnswerFile, secrets: LoadedSecrets) -> RollbackPreview:
    from installer import rollback

    return rollback.rollback_preview(answers, secrets)


# -- the reviews --------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradeChoice:
    """What the upgrade review confirmed: the release, and the bundle it comes from."""

    version: str
    bundle: str | None = None
    key: str | None = None


class UpgradeReview(ActionReview):
    """Choose a release (or a bundle); its checks run and the review says what changes."""

    class Previewed(Message):
        def __init__(self, preview: UpgradePreview | None, error: str | None = None) -> None:
            super().__init__()
            self.preview = preview
            self.error = error

    def __init__(
        self,
        installed: str,
        answers: AnswerFile,
        choices: list[ReleaseChoice],
        secrets: Any,
    ) -> None:
        super().__init__()
        self.installed = installed
        self.answers = answers
        self.choices = choices
        self.secrets = secrets
        self.preview: UpgradePreview | None = None
        self.bundle_key: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="action-review", id="upgrade-box") as box:
            box.border_title = f"Upgrade CodeQual {self.installed}: review"
            yield Static("Upgrade to (Enter reads what it would change):", classes="field-label")
            options = [Option(f"{c.version:<14} {c.note}", id=c.version) for c in self.choices]
            options.append(Option("An offline bundle…", id=BUNDLE_OPTION))
            yield OptionList(*options, id="releases")
            with Horizontal(id="bundle-row"):
                yield Input(placeholder="/path/to/codequal-X.bundle", id="bundle", compact=True)
                yield Input(placeholder="signing key (optional)", id="bundle-key", compact=True)
            yield LoadingIndicator(id="reading")
            with VerticalScroll(classes="review-text"):
                yield Static("Nothing changes until you confirm.", id="upgrade-review")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Upgrade", id="confirm", variant="success", disabled=True, compact=True
                )
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#reading").display = False
        self.query_one("#bundle-row").display = False
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id == BUNDLE_OPTION:
            self.query_one("#bundle-row").display = True
            self.query_one("#bundle", Input).focus()
            return
        self.query_one("#bundle-row").display = False
        self._read(str(event.option.id), None, None)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if self.preview is not None and self.preview.target != event.option.id:
            self._forget()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.preview is not None and self.preview.bundle is not None:
            self._forget()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        bundle = self.query_one("#bundle", Input).value.strip()
        if not bundle:
            return
        key = self.query_one("#bundle-key", Input).value.strip() or None
        self._read(None, bundle, key)

    def _forget(self) -> None:
        self.preview = None
        confirm = self.query_one("#confirm", Button)
        if self.focused is confirm:
            self.query_one(OptionList).focus()
        confirm.disabled = True
        self.query_one("#upgrade-review", Static).update("Nothing changes until you confirm.")

    def _read(self, version: str | None, bundle: str | None, key: str | None) -> None:
        self._forget()
        self.bundle_key = key
        self.query_one("#reading").display = True
        self.query_one("#upgrade-review", Static).update("Running the upgrade's checks…")
        self._preview(version, bundle, key)

    @work(thread=True, exclusive=True, group="upgrade-preview")
    def _preview(self, version: str | None, bundle: str | None, key: str | None) -> None:
        from installer import manage
        from installer.errors import InstallerError

        signature = None
        try:
            if bundle is not None:
                version, signature = manage.bundle_release(bundle, key)
            assert version is not None  # noqa: S101 - a release or a bundle is chosen
            preview = manage.upgrade_preview(
                self.answers, self.secrets(), to=version, bundle=bundle
            )
            preview = dataclasses.replace(preview, bundle_signature=signature)
        except InstallerError as e:
            text = f"✗ {e.message}"
            if e.hint:
                text += f"\n  hint: {e.hint}"
            self.post_message(self.Previewed(None, text))
            return
        except Exception as e:  # noqa: BLE001 - shown to the operator
            self.post_message(self.Previewed(None, f"✗ {e}"))
            return
        self.post_message(self.Previewed(preview))

    def on_upgrade_review_previewed(self, message: Previewed) -> None:
        message.stop()
        self._show_preview(message.preview, message.error, "upgrade-review", upgrade_review_text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        preview = self.preview
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "confirm" and preview is not None and preview.allowed:
            self.dismiss(UpgradeChoice(preview.target, preview.bundle, self.bundle_key))


def upgrade_review_text(preview: UpgradePreview) -> str:
    frm = preview.installed or "?"
    lines = [
        f"[b]CodeQual {escape(frm)} -> {escape(preview.target)}[/b] in "
        f"{escape(preview.install_dir)}"
    ]
    if preview.bundle:
        lines.append(f"  from the bundle {escape(preview.bundle)}")
        if preview.bundle_signature:
            lines.append(f"  signature: {escape(preview.bundle_signature)}")
    if preview.up_to_date:
        lines += ["", f"CodeQual {escape(preview.target)} is installed already: nothing to do."]
        return "\n".join(lines)
    lines += ["", "[b]Checked[/b] (nothing changed yet)"]
    lines += [f"  ✓ {escape(line)}" for line in preview.checks]
    if preview.refusal is not None:
        lines += [
            "",
            f"[$error][b]Refused[/b] (exit {preview.exit_code}): {escape(preview.refusal)}[/]",
        ]
        if preview.hint:
            lines.append(f"  hint: {escape(preview.hint)}")
        return "\n".join(lines)
    if preview.path and len(preview.path) > 2:
        lines.append(f"  stops on the way: {escape(', '.join(preview.path[1:-1]))}")
    lines += ["", "[b]First, a backup[/b]"]
    if preview.backup_directory is not None:
        to = ", ".join(f"{r[:12]}…" for r in preview.backup_recipients)
        lines.append(
            f"  A backup of CodeQual {escape(frm)} is written to "
            f"[b]{escape(str(preview.backup_directory))}[/b], encrypted to "
            + (f"{escape(to)} and " if to else "")
            + "the installation's own rollback key (state/rollback-identity.key), and "
            "checked against its manifest. If it fails, nothing changes."
        )
    lines += ["", "[b]Then[/b]"]
    for service, now, after in preview.images:
        lines.append(f"  • {escape(service)}: {escape(now)} -> {escape(after)}")
    if preview.migration:
        lines.append(f"  • the database is migrated: {escape(preview.migration)}")
    lines.append("  • the services restart on the new release and are verified")
    lines += [
        "",
        "If a step fails, the previous images, configuration and database come back by "
        "themselves. [b]Rollback[/b] returns to CodeQual "
        f"{escape(frm)} later, from the same backup.",
    ]
    return "\n".join(lines)


class RollbackReview(ActionReview):
    """What a rollback returns to and what will be lost; confirmed twice."""

    def __init__(self, preview: RollbackPreview) -> None:
        super().__init__()
        self.preview = preview

    def compose(self) -> ComposeResult:
        with Vertical(classes="action-review") as box:
            box.border_title = "Rollback: review"
            with VerticalScroll(classes="review-text"):
                yield Static(rollback_review_text(self.preview), id="rollback-review")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Roll back…",
                    id="confirm",
                    variant="error",
                    disabled=not self.preview.allowed,
                    compact=True,
                )
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "confirm" and self.preview.allowed:
            from screens.dialogs import ConfirmDialog

            preview = self.preview
            lost = [line.strip() for line in preview.loss_lines()[1:4]]
            question = f"Roll CodeQual {preview.installed} back to {preview.previous}? " + " ".join(
                lost
            )

            def answered(yes: bool | None) -> None:
                if yes:
                    self.dismiss(preview)

            self.app.push_screen(ConfirmDialog(question, yes="Roll back", no="Cancel"), answered)


def rollback_review_text(preview: RollbackPreview) -> str:
    lines = [
        f"[b]CodeQual {escape(str(preview.installed))} -> {escape(str(preview.previous))}"
        f"[/b] in {escape(preview.install_dir)}"
    ]
    if preview.archive is not None:
        verified = "verified" if preview.verified else "[$error]NOT verified[/]"
        lines.append(f"  from the pre-upgrade backup {escape(preview.archive.name)} ({verified})")
    if preview.problems:
        lines += ["", f"[$error][b]Refused[/b] (exit {preview.exit_code}): nothing will change[/]"]
        lines += [f"[$error]  ✗ {escape(p)}[/]" for p in preview.problems]
        return "\n".join(lines)
    lines += ["", "[b]What will be lost[/b]"]
    lines += [f"  {escape(line)}" for line in preview.loss_lines()]
    return "\n".join(lines)


class UninstallReview(ActionReview):
    """The inventory, what is kept and what is removed; purge needs the domain typed."""

    def __init__(self, preview: UninstallPreview) -> None:
        super().__init__()
        self.preview = preview

    @property
    def phrase(self) -> str:
        """What the operator types to purge: the domain (without one, the directory)."""
        inventory = self.preview.inventory
        return self.preview.domain or (inventory.location.split(" ")[0] if inventory else "")

    def compose(self) -> ComposeResult:
        preview = self.preview
        with Vertical(classes="action-review", id="uninstall-box") as box:
            box.border_title = "Uninstall: review"
            yield Static(uninstall_summary(preview, purge=False), id="uninstall-summary")
            if preview.inventory is not None:
                yield DataTable(id="inventory", cursor_type="row", zebra_stripes=True)
                yield Checkbox(
                    "Purge: also remove the volumes, backups, state and certificates",
                    id="purge",
                    compact=True,
                )
                yield Static(
                    f"Type [b]{escape(self.phrase)}[/b] to remove everything:",
                    id="phrase-label",
                    classes="field-label",
                )
                yield Input(placeholder=self.phrase, id="phrase", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Uninstall",
                    id="confirm",
                    variant="error",
                    compact=True,
                    disabled=not preview.allowed,
                )
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        if self.preview.inventory is None:
            self.query_one("#cancel", Button).focus()
            return
        table = self.query_one(DataTable)
        for column in ("Uninstall", "Kind", "Size", "Name"):
            table.add_column(column, key=column.lower())
        self._fill(purge=False)
        self.query_one("#phrase-label").display = False
        self.query_one("#phrase").display = False
        self.query_one("#cancel", Button).focus()

    def _fill(self, *, purge: bool) -> None:
        from installer.sizes import human_size

        inventory = self.preview.inventory
        assert inventory is not None  # noqa: S101 - only called with an inventory
        table = self.query_one(DataTable)
        table.clear()
        for index, item in enumerate(inventory.items):
            action = item.action(purge)
            table.add_row(
                f"{'✗' if action == 'removed' else '✓'} {action}",
                item.kind,
                "" if item.size is None else human_size(item.size),
                _short(item.name),
                key=str(index),
            )
        self.query_one("#uninstall-summary", Static).update(
            uninstall_summary(self.preview, purge=purge)
        )

    @property
    def purge(self) -> bool:
        return bool(self.query("#purge")) and self.query_one("#purge", Checkbox).value

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        purge = event.value
        self._fill(purge=purge)
        self.query_one("#phrase-label").display = purge
        self.query_one("#phrase").display = purge
        self.query_one("#confirm", Button).label = "Purge" if purge else "Uninstall"
        self._check()
        if purge:
            self.query_one("#phrase", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._check()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._check():
            self.dismiss(self.purge)

    def _check(self) -> bool:
        ok = self.preview.allowed
        if ok and self.purge:
            ok = self.query_one("#phrase", Input).value.strip() == self.phrase
        self.query_one("#confirm", Button).disabled = not ok
        return ok

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "confirm" and self._check():
            self.dismiss(self.purge)


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def uninstall_summary(preview: UninstallPreview, *, purge: bool) -> str:
    inventory: Inventory | None = preview.inventory
    if inventory is None:
        text = (
            f"[$error][b]Refused[/b] (exit {preview.exit_code}): {escape(preview.refusal or '')}[/]"
        )
        if preview.hint:
            text += f"\n  hint: {escape(preview.hint)}"
        return text
    release = (
        f"CodeQual {inventory.installed_release}" if inventory.installed_release else "CodeQual"
    )
    removed = sum(1 for i in inventory.items if i.action(purge) == "removed")
    kept = len(inventory.items) - removed
    if purge:
        what = (
            "[$error]Purge[/]: everything the installation labelled is removed, its data "
            "too; images are kept (they may be shared)."
        )
    else:
        what = (
            "Containers and networks are removed; the data stays (volumes, backups, state, "
            "certificates, configuration), and a later apply picks it up."
        )
    return (
        f"[b]{escape(release)}[/b] ({escape(inventory.target)}) in {escape(inventory.location)}\n"
        f"{what} {removed} removed, {kept} kept."
    )


SCREEN = ManageScreen
