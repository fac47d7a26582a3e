"""Backups: the installation's archives, and create, verify, restore, each reviewed first.

Reached from the welcome step when ``install_dir`` holds an installation. The list is
``backup list``'s; each action opens a review that says what it will write or replace
(and asks for what it needs: a recipient, the identity file), then runs in a thread
worker that only iterates the engine's events (:mod:`installer.backup.actions`) and hands
them to this screen, which renders them into the same live log the install step uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    DataTable,
    Footer,
    Header,
    Input,
    LoadingIndicator,
    Static,
)

from screens.action import ActionReview, ActionScreen, FormReview, RunPanel

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.backup.actions import CreatePreview, Installation, RestorePreview
    from installer.backup.catalog import ArchiveEntry
    from installer.credentials import LoadedSecrets
    from installer.events import Event
    from installer.runner import CancelToken
    from screens.state import WizardState

_ACTION_TITLES = {"create": "backup", "verify": "verification", "restore": "restore"}


# -- what the welcome step asks -----------------------------------------------------------


def install_dir_of(state: WizardState) -> str:
    """The installation directory the wizard's answers name (or the default one)."""
    from installer.backup.actions import default_install_dir

    answers = state.validate().answers if state.target else None
    if answers is not None:
        return answers.install_dir
    draft = state.get("install_dir")
    return draft if isinstance(draft, str) and draft.startswith("/") else default_install_dir()


def find_installation(state: WizardState) -> Installation | None:
    """The installation in the answers' ``install_dir``, when there is one."""
    from installer.backup import actions

    return actions.installed_at(install_dir_of(state))


def installation_line(installation: Installation) -> str:
    return (
        f"CodeQual {installation.release} ({installation.target}) is installed in "
        f"{installation.install_dir}."
    )


# -- the screen ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    install_dir: str
    installation: Installation | None
    directory: Path
    entries: list[ArchiveEntry]
    answers: AnswerFile | None


def _created(entry: ArchiveEntry) -> str:
    return entry.created.replace("T", " ").removesuffix("Z")[:16]


def _verified(entry: ArchiveEntry) -> str:
    if entry.verified is None:
        return "no"
    return f"✓ {entry.verified.get('mode') or 'yes'}"


class BackupsScreen(ActionScreen):
    """The installation's archives; Create, Verify and Restore, each with a review."""

    STEP = "backups"
    CSS_PATH = "backups.tcss"
    HELP = (
        "The archives of this installation (`backup list`): newest first, with their size, "
        "release, when they were made, and whether a verification passed.\n\n"
        "[b]c[/b] Create: writes one encrypted archive (database, volumes, configuration, "
        "state); the review says what is written where, and to which age recipients.\n"
        "[b]v[/b] Verify: decrypts the highlighted archive with your identity file, checks "
        "every member, and restores it into a throwaway sandbox to compare the data.\n"
        "[b]r[/b] Restore: replaces the installation with the highlighted archive; the "
        "review says what is replaced, and a safety backup of the installation is taken "
        "first.\n\n"
        "Runs stream their log below; Ctrl+Q asks before stopping one."
    )
    ACTION_TITLES: ClassVar[dict[str, str]] = _ACTION_TITLES
    STOP_CONSEQUENCE = (
        ": a backup leaves no half-written archive, a restore resumes when run again."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "create", "Create"),
        Binding("v", "verify", "Verify"),
        Binding("r", "restore", "Restore"),
    ]

    class Listed(Message):
        def __init__(self, listing: _Listing) -> None:
            super().__init__()
            self.listing = listing

    class Reviewed(Message):
        """A review's facts are ready (or could not be gathered): open its dialog."""

        def __init__(self, action: str, preview: Any, error: str | None = None) -> None:
            super().__init__()
            self.action = action
            self.preview = preview
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.listing: _Listing | None = None
        self.identity: str = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="backups-body"):
            yield Static("Looking for archives…", id="backups-summary")
            yield DataTable(id="archive-table", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="nav", id="backup-actions"):
                yield Static("", classes="status")
                yield Button("Create", id="create", variant="primary", compact=True)
                yield Button("Verify", id="verify", compact=True)
                yield Button("Restore", id="restore", variant="warning", compact=True)
                yield Button("Back", id="back", compact=True)
            yield RunPanel(
                idle="Choose an archive and an action; its log appears here.",
                exit_meaning=_exit_meaning,
            )
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        table.add_column("Archive", key="name")
        table.add_column("Verified", key="verified")
        table.add_column("Size", key="size")
        table.add_column("Release", key="release")
        table.add_column("Created (UTC)", key="created")
        self._sync_actions()
        self._list()

    # -- the list -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="backup-list")
    def _list(self) -> None:
        from installer.backup import actions

        state = self.wizard.state
        answers = state.validate().answers if state.target else None
        install_dir = install_dir_of(state)
        directory = actions.backup_directory_for(answers, install_dir)
        listing = _Listing(
            install_dir=install_dir,
            installation=actions.installed_at(install_dir),
            directory=directory,
            entries=actions.list_backups(directory),
            answers=answers,
        )
        self.post_message(self.Listed(listing))

    def on_backups_screen_listed(self, message: Listed) -> None:
        message.stop()
        listing = self.listing = message.listing
        table = self.query_one(DataTable)
        selected = self.selected
        table.clear()
        from installer.sizes import human_size

        for entry in listing.entries:
            table.add_row(
                entry.name,
                _verified(entry),
                human_size(entry.size),
                entry.release,
                _created(entry),
                key=str(entry.path),
            )
        if selected is not None:
            for index, entry in enumerate(listing.entries):
                if entry.path == selected.path:
                    table.move_cursor(row=index)
        self.query_one("#backups-summary", Static).update(self._summary(listing))
        self._sync_actions()
        if listing.entries and self.running is None:
            table.focus()

    def _summary(self, listing: _Listing) -> str:
        lines = []
        if listing.installation is not None:
            lines.append(escape(installation_line(listing.installation)))
        else:
            lines.append(f"No installation in {escape(listing.install_dir)}.")
        count = len(listing.entries)
        found = f"{count} archive{'s' if count != 1 else ''}" if count else "no archives yet"
        lines.append(f"Archives in [b]{escape(str(listing.directory))}[/b]: {found}.")
        if listing.answers is None:
            lines.append(
                "[$warning]Create and Restore need the installation's answer file: start "
                "the wizard with --answers FILE.[/]"
            )
        return "\n".join(lines)

    @property
    def selected(self) -> ArchiveEntry | None:
        if self.listing is None or not self.listing.entries:
            return None
        row = self.query_one(DataTable).cursor_row
        entries = self.listing.entries
        return entries[row] if 0 <= row < len(entries) else None

    # -- actions --------------------------------------------------------------------------

    def _allowed(self, action: str) -> bool:
        if self.running is not None or self.listing is None:
            return False
        if action == "create":
            return self.listing.answers is not None and self.listing.installation is not None
        if action == "verify":
            return self.selected is not None
        if action == "restore":
            return self.selected is not None and self.listing.answers is not None
        return True

    def _sync_actions(self) -> None:
        for action in ("create", "verify", "restore"):
            self.query_one(f"#{action}", Button).disabled = not self._allowed(action)
        self.query_one("#back", Button).disabled = self.running is not None
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("create", "verify", "restore"):
            return True if self._allowed(action) else None
        if action == "back" and self.running is not None:
            return False
        return super().check_action(action, parameters)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._sync_actions()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id or ""
        if button == "back":
            self.action_back()
        elif button == "create":
            self.action_create()
        elif button == "verify":
            self.action_verify()
        elif button == "restore":
            self.action_restore()

    def action_create(self) -> None:
        if self._allowed("create"):
            self._prepare_create()

    def action_verify(self) -> None:
        entry = self.selected
        if entry is None or not self._allowed("verify"):
            return
        # The archive reviewed is the one run, whatever the list shows meanwhile.
        self.app.push_screen(
            VerifyReview(entry, self.identity),
            lambda identity: self._verify_confirmed(entry, identity),
        )

    def action_restore(self) -> None:
        entry = self.selected
        listing = self.listing
        if entry is None or listing is None or listing.answers is None:
            return
        if not self._allowed("restore"):
            return
        review = RestoreReview(entry, listing.answers, self._secrets, self.identity)
        self.app.push_screen(review, lambda identity: self._restore_confirmed(entry, identity))

    def _secrets(self) -> LoadedSecrets:
        from screens.engine import loaded_secrets

        return loaded_secrets(self.wizard.state.secrets_model())

    @work(thread=True, exclusive=True, group="backup-review")
    def _prepare_create(self) -> None:
        from installer.backup import actions

        answers = self.listing.answers if self.listing is not None else None
        if answers is None:
            return
        try:
            preview = actions.create_preview(answers)
        except Exception as e:  # noqa: BLE001 - shown to the operator
            self.post_message(self.Reviewed("create", None, str(e) or type(e).__name__))
            return
        self.post_message(self.Reviewed("create", preview))

    def on_backups_screen_reviewed(self, message: Reviewed) -> None:
        message.stop()
        if message.preview is None:
            self.notify(f"cannot prepare the backup: {message.error}", severity="error")
            return
        self.app.push_screen(CreateReview(message.preview), self._create_confirmed)

    def _create_confirmed(self, recipients: list[str] | None) -> None:
        listing = self.listing
        if recipients is None or self.running is not None:
            return
        if listing is None or listing.answers is None:
            return
        from installer.backup import actions

        answers = listing.answers
        secrets = self._secrets

        def start(cancel: CancelToken) -> Iterator[Event]:
            return actions.create_events(answers, secrets(), cancel=cancel, recipients=recipients)

        self._start("create", start)

    def _verify_confirmed(self, entry: ArchiveEntry, identity: Path | None) -> None:
        if identity is None or self.running is not None:
            return
        from installer.backup import actions

        self.identity = str(identity)
        archive = entry.path

        def start(cancel: CancelToken) -> Iterator[Event]:
            return actions.verify_events(archive, identity, cancel=cancel)

        self._start("verify", start)

    def _restore_confirmed(self, entry: ArchiveEntry, identity: Path | None) -> None:
        listing = self.listing
        if identity is None or self.running is not None:
            return
        if listing is None or listing.answers is None:
            return
        from installer.backup import actions

        self.identity = str(identity)
        archive = entry.path
        answers = listing.answers
        secrets = self._secrets

        def start(cancel: CancelToken) -> Iterator[Event]:
            return actions.restore_events(archive, identity, answers, secrets(), cancel=cancel)

        self._start("restore", start)

    # -- a run ----------------------------------------------------------------------------

    def _reload(self) -> None:
        self._list()


# -- the reviews --------------------------------------------------------------------------


def _exit_meaning(code: int) -> str:
    from installer.backup.actions import exit_meaning

    return exit_meaning(code)


def _identity_problem(text: str) -> str | None:
    if not text.strip():
        return "the identity file (the age private key the archive was encrypted to)"
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        return f"{path}: no such file"
    return None


class CreateReview(FormReview):
    """What ``backup create`` will write and where; asks for a recipient when none is set."""

    def __init__(self, preview: CreatePreview) -> None:
        super().__init__()
        self.preview = preview

    def compose(self) -> ComposeResult:
        preview = self.preview
        with Vertical(classes="action-review") as box:
            box.border_title = "Create a backup: review"
            with VerticalScroll(classes="review-text"):
                yield Static(create_review_text(preview), id="create-review")
            if preview.needs_recipient:
                yield Static(
                    "No backup.recipients in the answers: encrypt to this age recipient",
                    classes="field-label",
                )
                yield Input(placeholder="age1…", id="recipient", compact=True)
                yield Static("", id="recipient-problem", classes="error-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create", id="confirm", variant="success", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self._check()
        if self.preview.needs_recipient:
            self.query_one(Input).focus()
        else:
            self.query_one("#cancel", Button).focus()

    def _recipients(self) -> list[str]:
        if self.preview.recipients:
            return list(self.preview.recipients)
        value = self.query_one("#recipient", Input).value.strip()
        return [value] if value else []

    def _check(self) -> bool:
        from installer.backup.crypto import is_recipient

        ok = not self.preview.problems
        if self.preview.needs_recipient:
            value = self.query_one("#recipient", Input).value.strip()
            problem = "" if is_recipient(value) else "age1 followed by 58 characters"
            if not value:
                problem = ""
            self.query_one("#recipient-problem", Static).update(problem)
            ok = ok and is_recipient(value)
        self.query_one("#confirm", Button).disabled = not ok
        return ok

    def _result(self) -> list[str]:
        return self._recipients()


def create_review_text(preview: CreatePreview) -> str:
    lines = [
        f"One encrypted archive of the installation in {escape(preview.install_dir)} is "
        "written to:",
        f"  [b]{escape(str(preview.directory / preview.name_pattern))}[/b]",
        "",
        "[b]Contents[/b]",
    ]
    lines += [f"  • {escape(member)}: {escape(what)}" for member, what in preview.contents]
    lines += ["", "[b]Encrypted to[/b] (age; only their identity files can open it)"]
    lines += [f"  {escape(r)}" for r in preview.recipients] or ["  (a recipient is needed)"]
    lines += ["", f"[b]Pause[/b]  {escape(preview.pauses)}."]
    lines += [f"[$error]✗ {escape(problem)}[/]" for problem in preview.problems]
    return "\n".join(lines)


class VerifyReview(FormReview):
    """The full verification of one archive: asks for the identity file."""

    def __init__(self, entry: ArchiveEntry, identity: str = "") -> None:
        super().__init__()
        self.entry = entry
        self.identity = identity

    def compose(self) -> ComposeResult:
        with Vertical(classes="action-review") as box:
            box.border_title = "Verify an archive"
            with VerticalScroll(classes="review-text"):
                yield Static(verify_review_text(self.entry), id="verify-review")
            yield Static("Identity file (age private key)", classes="field-label")
            yield Input(
                self.identity, placeholder="/root/codequal-backup.key", id="identity", compact=True
            )
            yield Static("", id="identity-problem", classes="error-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Verify", id="confirm", variant="success", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self._check(show=False)
        self.query_one(Input).focus()

    def _check(self, *, show: bool = True) -> bool:
        problem = _identity_problem(self.query_one(Input).value)
        self.query_one("#identity-problem", Static).update(problem if problem and show else "")
        self.query_one("#confirm", Button).disabled = problem is not None
        return problem is None

    def _identity(self) -> Path:
        return Path(self.query_one(Input).value.strip()).expanduser()

    def _result(self) -> Path:
        return self._identity()


def verify_review_text(entry: ArchiveEntry) -> str:
    from installer.sizes import human_size

    verified = (
        f"last verified: {entry.verified.get('mode')} at {entry.verified.get('verified_at')}"
        if entry.verified is not None
        else "not verified yet"
    )
    return "\n".join(
        [
            f"[b]{escape(entry.name)}[/b]",
            f"  CodeQual {escape(entry.release)}, made {_created(entry)} UTC, "
            f"{human_size(entry.size)}; {escape(verified)}",
            "",
            "The archive is decrypted with your identity and every member checked against "
            "its manifest; then it is restored into a throwaway sandbox (a scratch Compose "
            "project on an internal network, nothing published, removed afterwards) and "
            "its row counts and checksums compared with the manifest.",
            "",
            "The installation is not touched. A pass is recorded beside the archive.",
        ]
    )


class RestoreReview(ActionReview):
    """What a restore replaces, the safety backup taken first; confirmation required."""

    class Previewed(Message):
        def __init__(self, preview: RestorePreview | None, error: str | None = None) -> None:
            super().__init__()
            self.preview = preview
            self.error = error

    def __init__(
        self,
        entry: ArchiveEntry,
        answers: AnswerFile,
        secrets: Callable[[], LoadedSecrets],
        identity: str = "",
    ) -> None:
        super().__init__()
        self.entry = entry
        self.answers = answers
        self.secrets = secrets
        self.identity = identity
        self.preview: RestorePreview | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="action-review") as box:
            box.border_title = "Restore: review"
            yield Static(
                f"Restore [b]{escape(self.entry.name)}[/b] into "
                f"{escape(self.answers.install_dir)}.",
                id="restore-archive",
            )
            yield Static("Identity file (age private key)", classes="field-label")
            with Horizontal(id="identity-row"):
                yield Input(
                    self.identity,
                    placeholder="/root/codequal-backup.key",
                    id="identity",
                    compact=True,
                )
                yield Button("Read", id="read", compact=True)
            yield Static("", id="identity-problem", classes="error-text")
            yield LoadingIndicator(id="reading")
            with VerticalScroll(classes="review-text"):
                yield Static(
                    "The archive's manifest is read with your identity first: nothing "
                    "changes until you confirm.",
                    id="restore-review",
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Restore…", id="confirm", variant="error", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#reading").display = False
        self.query_one(Input).focus()

    def _read(self) -> None:
        value = self.query_one(Input).value
        problem = _identity_problem(value)
        self.query_one("#identity-problem", Static).update(problem or "")
        if problem is not None:
            return
        self.preview = None
        self.query_one("#confirm", Button).disabled = True
        self.query_one("#reading").display = True
        self._preview(Path(value.strip()).expanduser())

    @work(thread=True, exclusive=True, group="restore-preview")
    def _preview(self, identity: Path) -> None:
        from installer.backup import actions
        from installer.errors import InstallerError

        try:
            preview = actions.restore_preview(
                self.entry.path, identity, self.answers, self.secrets()
            )
        except InstallerError as e:
            code = int(e.exit_code)
            text = f"✗ {e.message}\n  exit {code}: {actions.exit_meaning(code)}"
            if e.hint:
                text += f"\n  hint: {e.hint}"
            self.post_message(self.Previewed(None, text))
            return
        except Exception as e:  # noqa: BLE001 - shown to the operator
            self.post_message(self.Previewed(None, f"✗ {e}"))
            return
        self.post_message(self.Previewed(preview))

    def on_restore_review_previewed(self, message: Previewed) -> None:
        message.stop()
        self._show_preview(message.preview, message.error, "restore-review", restore_review_text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._read()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.preview is not None:  # another identity: read again before confirming
            self.preview = None
            self.query_one("#confirm", Button).disabled = True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "read":
            self._read()
        elif event.button.id == "confirm":
            self._confirm()
        elif event.button.id == "cancel":
            self.dismiss(None)

    def _confirm(self) -> None:
        from screens.dialogs import ConfirmDialog

        preview = self.preview
        if preview is None or not preview.allowed:
            return
        if preview.existing is not None:
            question = (
                f"Replace the installation in {preview.install_dir} with "
                f"{preview.archive.name}? A safety backup of it is written to "
                f"{preview.safety_directory} first."
            )
        else:
            question = f"Install {preview.archive.name} into {preview.install_dir}?"
        identity = Path(self.query_one(Input).value.strip()).expanduser()

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(identity)

        self.app.push_screen(ConfirmDialog(question, yes="Restore", no="Cancel"), answered)


def restore_review_text(preview: RestorePreview) -> str:
    lines = [
        f"CodeQual {escape(preview.release)} ({escape(preview.archive_target)}), made "
        f"{escape(preview.created)}; restored as CodeQual {escape(preview.target_release)}.",
    ]
    if preview.refusals:
        lines += ["", "[$error][b]Refused[/b]: nothing will be changed[/]"]
        lines += [f"[$error]  ✗ {escape(problem)}[/]" for problem in preview.refusals]
        return "\n".join(lines)
    lines += ["", "[b]Safety backup first[/b]"]
    if preview.existing is not None and preview.safety_directory is not None:
        recipients = ", ".join(f"{r[:12]}…" for r in preview.safety_recipients)
        lines.append(
            f"  The installation there now (CodeQual {escape(preview.existing.release)}, "
            f"{escape(preview.existing.target)}) is backed up first into "
            f"[b]{escape(str(preview.safety_directory))}[/b], encrypted to {escape(recipients)} "
            "(your identity opens it). Its file name is shown in the log and kept in the "
            "journal. If it fails, nothing is restored."
        )
    else:
        lines.append(
            f"  No installation in {escape(preview.install_dir)}: nothing to keep; the "
            "archive is installed there afresh."
        )
    lines += ["", "[b]Replaced[/b]"]
    lines += [f"  • {escape(item)}" for item in preview.replaces]
    return "\n".join(lines)


SCREEN = BackupsScreen
