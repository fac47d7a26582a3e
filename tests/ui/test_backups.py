"""The Backups screen with Pilot: offered only beside an installation, the real archive list,
and Create, Verify and Restore each through their review to a run.

The archives are real (``ArchiveWriter`` through the real ``age``, a real ``age-keygen``
identity) and the restore review decrypts the real manifest; the runs themselves use a
fake in place of the engine's event streams (the real ones are covered by the backup
integration tests), so that these tests see exactly which archive, identity and
recipients the screen passes on, and how it renders what comes back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Input, Static

from installer.backup import actions
from installer.backup.archive import read_manifest
from installer.backup.catalog import write_verification
from installer.backup.crypto import keygen
from installer.events import Event
from installer.runner import CancelToken
from installer.sizes import human_size
from screens.app import InstallerApp
from screens.backups import BackupsScreen, CreateReview, RestoreReview, VerifyReview
from screens.dialogs import ConfirmDialog
from screens.install_log import InstallLog
from screens.state import WizardState
from tests.support.backup_archives import RELEASE, make_archive, make_installation
from tests.ui.conftest import wait_for_screen, wait_until


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    root = tmp_path_factory.mktemp("keys")
    identity = root / "backup.key"
    recipient = keygen(identity)
    other = root / "other.key"
    keygen(other)
    return identity, recipient, other


@dataclass
class Site:
    """An installation directory, its answers draft, and its archives (newest first)."""

    install_dir: Path
    draft: dict[str, Any]
    archives: list[Path] = field(default_factory=list)


def _draft(install_dir: Path, recipients: list[str]) -> dict[str, Any]:
    draft: dict[str, Any] = {"version": 1, "target": "development", "install_dir": str(install_dir)}
    if recipients:
        draft["backup"] = {"recipients": recipients}
    return draft


@pytest.fixture
def site(tmp_path: Path, keys: tuple[Path, str, Path]) -> Site:
    identity, recipient, _ = keys
    install_dir = tmp_path / "install"
    draft = _draft(install_dir, [recipient])
    state = WizardState(draft=draft)
    project = state.validate().answers.compose_project  # type: ignore[union-attr]
    make_installation(install_dir, project)
    backups = install_dir / "backups"
    older = make_archive(backups, recipient, install=project, created="2026-12-03T09:00:00Z")
    write_verification(older, read_manifest(older, identity), "full")
    newer = make_archive(backups, recipient, install=project, created="2026-12-04T17:00:00Z")
    return Site(install_dir, draft, [newer, older])


class FakeRuns:
    """Stands in for the engine's streams: records each call, replays scripted events."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.release = threading.Event()
        self.hold = False
        self.finish: dict[str, Event] = {}
        for name in ("create", "verify", "restore"):
            monkeypatch.setattr(actions, f"{name}_events", self._stream(name))

    def _stream(self, name: str) -> Callable[..., Iterator[Event]]:
        def stream(*args: Any, cancel: CancelToken, **kwargs: Any) -> Iterator[Event]:
            self.calls.append((name, {"args": args, "cancel": cancel, **kwargs}))
            yield Event("run.started", f"{name} run", data={"steps": []})
            yield Event("step.started", f"{name} step one", step="one")
            yield Event("step.output", f"{name}: working", step="one")
            yield Event(
                "step.progress", "encrypting", step="one", current=512, total=2048, unit="bytes"
            )
            if self.hold:
                while not self.release.wait(0.02):
                    if cancel.cancelled:
                        yield Event("run.failed", "stopped", exit_code=130)
                        return
            yield Event("step.finished", f"{name} step one done", step="one")
            yield self.finish.get(name) or Event("run.finished", f"{name} done", exit_code=0)

        return stream


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> FakeRuns:
    return FakeRuns(monkeypatch)


def log_lines(app: InstallerApp) -> list[str]:
    return app.screen.query_one("#run-log", InstallLog).lines


def status(app: InstallerApp) -> str:
    return str(app.screen.query_one("#run-status", Static).render())


async def open_backups(pilot: Any, app: InstallerApp) -> BackupsScreen:
    await wait_for_screen(pilot, "welcome")
    await wait_until(pilot, lambda: bool(app.screen.query("#backups")))
    await pilot.press("b")
    await wait_for_screen(pilot, "backups")
    screen = app.screen
    assert isinstance(screen, BackupsScreen)
    await wait_until(pilot, lambda: screen.listing is not None)
    await pilot.pause()
    return screen


async def wait_for_dialog(pilot: Any, kind: type) -> Any:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind))
    await pilot.pause()
    return pilot.app.screen


class TestWelcome:
    async def test_no_installation_no_backups(
        self, make_app: Callable[..., InstallerApp], tmp_path: Path
    ) -> None:
        draft = _draft(tmp_path / "empty", [])
        app = make_app(state=WizardState(draft=draft))
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "welcome")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not app.screen.query("#backups")
            assert not app.screen.query("#installation")
            await pilot.press("b")
            await pilot.pause()
            assert getattr(app.screen, "STEP", None) == "welcome"
            assert not app.screen.active_bindings.get("b")

    async def test_an_installation_offers_backups_by_button_and_key(
        self, make_app: Callable[..., InstallerApp], site: Site
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "welcome")
            await wait_until(pilot, lambda: bool(app.screen.query("#backups")))
            line = str(app.screen.query_one("#installation", Static).render())
            assert f"CodeQual {RELEASE} (development) is installed in {site.install_dir}" in line
            # Enter still starts the install; the button opens the Backups screen.
            assert app.focused is not None and app.focused.id == "start"
            await pilot.click("#backups")
            await wait_for_screen(pilot, "backups")
            await pilot.press("escape")
            await wait_for_screen(pilot, "welcome")
            await pilot.press("b")
            await wait_for_screen(pilot, "backups")


class TestList:
    async def test_the_archives_of_the_directory_newest_first(
        self, make_app: Callable[..., InstallerApp], site: Site
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            table = screen.query_one(DataTable)
            rows = [table.get_row_at(i) for i in range(table.row_count)]
            newer, older = site.archives
            size = [human_size(path.stat().st_size) for path in (newer, older)]
            assert rows == [
                [newer.name, "no", size[0], RELEASE, "2026-12-04 17:00"],
                [older.name, "✓ full", size[1], RELEASE, "2026-12-03 09:00"],
            ]
            summary = str(screen.query_one("#backups-summary", Static).render())
            assert f"{site.install_dir / 'backups'}: 2 archives" in summary
            for button in ("create", "verify", "restore"):
                assert not screen.query_one(f"#{button}", Button).disabled

    async def test_without_answers_only_verify(
        self, make_app: Callable[..., InstallerApp], site: Site
    ) -> None:
        # A draft that is not valid answers (an unknown key): the directory is still known.
        draft = {**site.draft, "unknown_key": 1}
        app = make_app(state=WizardState(draft=draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            assert screen.query_one(DataTable).row_count == 2
            assert screen.query_one("#create", Button).disabled
            assert screen.query_one("#restore", Button).disabled
            assert not screen.query_one("#verify", Button).disabled
            summary = str(screen.query_one("#backups-summary", Static).render())
            assert "need the installation's answer file" in summary
            await pilot.press("r")
            await pilot.pause()
            assert app.screen is screen


class TestCreate:
    async def test_review_then_run(
        self,
        make_app: Callable[..., InstallerApp],
        site: Site,
        runs: FakeRuns,
        keys: tuple[Path, str, Path],
    ) -> None:
        _, recipient, _ = keys
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            await pilot.press("c")
            review = await wait_for_dialog(pilot, CreateReview)
            text = str(review.query_one("#create-review", Static).render())
            assert str(site.install_dir / "backups") in text
            assert f"<UTC time>-{RELEASE}.cqbackup" in text
            assert recipient in text
            assert "volumes/codequal_data.tar.zst" in text
            assert "paused" in text
            assert not review.query("#recipient")  # the answers have a recipient
            assert runs.calls == []  # nothing runs before the review is confirmed
            await pilot.click("#confirm")
            await wait_until(pilot, lambda: screen.running is None and screen.verdict is not None)
            ((name, call),) = runs.calls
            assert name == "create"
            assert call["recipients"] == [recipient]
            assert call["args"][0].install_dir == str(site.install_dir)
            lines = log_lines(app)
            assert "==> create step one" in lines and "create: working" in lines
            assert "✓ create done" in lines
            assert "✓ create done" in status(app)

    async def test_asks_for_a_recipient_when_the_answers_have_none(
        self,
        make_app: Callable[..., InstallerApp],
        site: Site,
        runs: FakeRuns,
        keys: tuple[Path, str, Path],
    ) -> None:
        _, recipient, _ = keys
        draft = _draft(site.install_dir, [])
        app = make_app(state=WizardState(draft=draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            await pilot.click("#create")
            review = await wait_for_dialog(pilot, CreateReview)
            confirm = review.query_one("#confirm", Button)
            assert confirm.disabled
            recipient_input = review.query_one("#recipient", Input)
            assert app.focused is recipient_input
            await pilot.press(*"age1nope")
            await pilot.pause()
            assert confirm.disabled
            assert "58 characters" in str(review.query_one("#recipient-problem").render())
            recipient_input.value = recipient
            await pilot.pause()
            assert not confirm.disabled
            await pilot.press("enter")
            await wait_until(pilot, lambda: screen.verdict is not None)
            assert runs.calls[0][1]["recipients"] == [recipient]

    async def test_cancel_runs_nothing(
        self, make_app: Callable[..., InstallerApp], site: Site, runs: FakeRuns
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            await pilot.press("c")
            await wait_for_dialog(pilot, CreateReview)
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen
            assert runs.calls == []


class TestVerify:
    async def test_asks_for_the_identity_and_shows_a_failure_with_its_exit_code(
        self,
        make_app: Callable[..., InstallerApp],
        site: Site,
        runs: FakeRuns,
        keys: tuple[Path, str, Path],
    ) -> None:
        identity, _, _ = keys
        runs.finish["verify"] = Event(
            "run.failed",
            "database/sqlite.db.zst differs from the manifest",
            exit_code=4,
            data={"member": "database/sqlite.db.zst", "hint": "take a new backup"},
        )
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            await pilot.press("down")  # the older archive
            await pilot.press("v")
            review = await wait_for_dialog(pilot, VerifyReview)
            text = str(review.query_one("#verify-review", Static).render())
            assert site.archives[1].name in text and "last verified: full" in text
            assert "throwaway sandbox" in text
            confirm = review.query_one("#confirm", Button)
            assert confirm.disabled
            await pilot.press(*"/no/such/key")
            await pilot.pause()
            assert confirm.disabled
            assert "no such file" in str(review.query_one("#identity-problem").render())
            review.query_one(Input).value = str(identity)
            await pilot.pause()
            assert not confirm.disabled
            await pilot.click("#confirm")
            await wait_until(pilot, lambda: screen.running is None and screen.verdict is not None)
            ((name, call),) = runs.calls
            assert name == "verify"
            assert call["args"] == (site.archives[1], identity)
            lines = log_lines(app)
            assert "✗ database/sqlite.db.zst differs from the manifest" in lines
            assert f"  exit 4: {actions.exit_meaning(4)}" in lines
            assert "  hint: take a new backup" in lines
            assert "exit 4" in status(app)
            # The identity is remembered for the next review.
            await pilot.press("v")
            review = await wait_for_dialog(pilot, VerifyReview)
            assert review.query_one(Input).value == str(identity)


class TestRestore:
    async def test_review_reads_the_real_manifest_then_confirmation_then_run(
        self,
        make_app: Callable[..., InstallerApp],
        site: Site,
        runs: FakeRuns,
        keys: tuple[Path, str, Path],
    ) -> None:
        identity, _, _ = keys
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            await pilot.press("r")
            review = await wait_for_dialog(pilot, RestoreReview)
            confirm = review.query_one("#confirm", Button)
            assert confirm.disabled
            review.query_one(Input).value = str(identity)
            await pilot.press("enter")
            await wait_until(pilot, lambda: review.preview is not None)
            await pilot.pause()
            text = str(review.query_one("#restore-review", Static).render())
            assert "Replaced" in text and "codequal_data" in text
            assert "Safety backup first" in text
            assert str(site.install_dir / "backups") in text
            assert not confirm.disabled
            assert runs.calls == []
            await pilot.click("#confirm")
            dialog = await wait_for_dialog(pilot, ConfirmDialog)
            question = str(dialog.query_one(".question", Static).render())
            assert f"Replace the installation in {site.install_dir}" in question
            assert "safety backup" in question
            await pilot.click("#yes")
            await wait_until(pilot, lambda: screen.verdict is not None)
            ((name, call),) = runs.calls
            assert name == "restore"
            assert call["args"][:2] == (site.archives[0], identity)
            assert call["args"][2].install_dir == str(site.install_dir)
            assert "✓ restore done" in log_lines(app)

    async def test_not_confirmed_runs_nothing(
        self,
        make_app: Callable[..., InstallerApp],
        site: Site,
        runs: FakeRuns,
        keys: tuple[Path, str, Path],
    ) -> None:
        identity, _, _ = keys
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            await pilot.press("r")
            review = await wait_for_dialog(pilot, RestoreReview)
            review.query_one(Input).value = str(identity)
            await pilot.click("#read")
            await wait_until(pilot, lambda: review.preview is not None)
            await pilot.click("#confirm")
            await wait_for_dialog(pilot, ConfirmDialog)
            await pilot.press("n")
            await wait_until(pilot, lambda: isinstance(app.screen, RestoreReview))
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen
            assert runs.calls == []

    async def test_a_wrong_identity_or_a_refusal_cannot_be_confirmed(
        self,
        make_app: Callable[..., InstallerApp],
        site: Site,
        runs: FakeRuns,
        keys: tuple[Path, str, Path],
    ) -> None:
        identity, recipient, other = keys
        project = WizardState(draft=site.draft).validate().answers.compose_project  # type: ignore[union-attr]
        newest = make_archive(
            site.install_dir / "backups",
            recipient,
            install=project,
            created="2026-12-05T08:00:00Z",
            engine="postgres",
        )
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            await open_backups(pilot, app)
            await pilot.press("r")
            review = await wait_for_dialog(pilot, RestoreReview)
            assert review.entry.path == newest
            review.query_one(Input).value = str(other)
            await pilot.press("enter")
            text = review.query_one("#restore-review", Static)
            await wait_until(pilot, lambda: "exit 4" in str(text.render()))
            assert review.query_one("#confirm", Button).disabled
            review.query_one(Input).value = str(identity)
            await pilot.press("enter")
            await wait_until(pilot, lambda: review.preview is not None)
            await pilot.pause()
            assert "Refused" in str(text.render())
            assert "PostgreSQL" in str(text.render())
            assert review.query_one("#confirm", Button).disabled
            await pilot.click("#confirm")
            await pilot.pause()
            assert isinstance(app.screen, RestoreReview)
            assert runs.calls == []


class TestRunning:
    async def test_actions_wait_for_the_run_and_quit_stops_it(
        self, make_app: Callable[..., InstallerApp], site: Site, runs: FakeRuns
    ) -> None:
        runs.hold = True
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_backups(pilot, app)
            await pilot.press("c")
            await wait_for_dialog(pilot, CreateReview)
            await pilot.click("#confirm")
            await wait_until(pilot, lambda: "create: working" in log_lines(app))
            await wait_until(pilot, lambda: bool(screen.query_one("#run-progress").display))
            label = str(screen.query_one("#run-progress-label", Static).render())
            assert "encrypting 512 B/2.0 KiB" in label
            for button in ("create", "verify", "restore", "back"):
                assert screen.query_one(f"#{button}", Button).disabled
            await pilot.press("escape")  # no way back while it runs
            await pilot.press("v")
            await pilot.pause()
            assert app.screen is screen
            await pilot.press("ctrl+q")
            dialog = await wait_for_dialog(pilot, ConfirmDialog)
            assert "Stop the backup" in str(dialog.query_one(".question", Static).render())
            await pilot.press("y")
            await wait_until(pilot, lambda: app.return_value is not None)
        cancel = runs.calls[0][1]["cancel"]
        assert cancel.cancelled
        assert app.return_value == "quit"
