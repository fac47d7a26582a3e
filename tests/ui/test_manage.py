"""The Manage screen with Pilot: offered only beside an installation; status; Upgrade,
Rollback and Uninstall each through their review, and nothing run without confirmation.

The upgrade review runs the real checks of :func:`installer.upgrade.check_upgrade` on the
test releases (the real upgrade path rules, the real free-disk check; only "which release
is installed" and "are the services healthy", which need a running installation, are
fixed), so it fails if the review says anything the command would not. The runs
themselves are fakes that record what the screen passed on (the real ones run in
``tests/integration/test_wizard_manage_tmux.py``), replaying scripted events into the log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Checkbox, DataTable, Input, OptionList, Static

from installer import manage, rollback, upgrade
from installer.events import Event
from installer.history import HistoryEntry
from installer.runner import CancelToken
from installer.uninstall import Inventory, Item
from screens.app import InstallerApp
from screens.dialogs import ConfirmDialog
from screens.manage import ManageScreen, RollbackReview, UninstallReview, UpgradeReview
from screens.state import WizardState
from tests.support import TEST_RELEASES_DIR
from tests.support.backup_archives import make_installation
from tests.ui.conftest import wait_for_screen, wait_until

INSTALLED = "1.0.0-test"
DOMAIN = "codequal.example.com"


@dataclass
class Site:
    install_dir: Path
    draft: dict[str, Any]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    monkeypatch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
    install_dir = tmp_path / "install"
    draft: dict[str, Any] = {
        "version": 1,
        "target": "production",
        "domain": DOMAIN,
        "install_dir": str(install_dir),
        "release": {"version": INSTALLED},
    }
    project = WizardState(draft=draft).validate().answers.compose_project  # type: ignore[union-attr]
    make_installation(install_dir, project, target="production")
    return Site(install_dir, draft)


def fixed_overview(install_dir: Path, *, release: str = INSTALLED) -> manage.Overview:
    return manage.Overview(
        install_dir=str(install_dir),
        installed=True,
        target="production",
        release=release,
        schema_version="1",
        healthy=True,
        services=[("codequal", "running, healthy"), ("postgres", "running, healthy")],
        docker_error=None,
        last_backup={
            "archive": str(install_dir / "backups" / "codequal-x-20261204T170000Z.cqbackup"),
            "created": "2026-12-04T17:00:00Z",
            "verified": True,
        },
        history=[
            HistoryEntry("install", None, INSTALLED, "2026-12-04T16:00:00Z", 42.0, 0, "finished")
        ],
    )


@dataclass
class Fakes:
    """The engine's runs, recorded instead of run; the rollback module's stand-in."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    overviews: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    rollback_allowed: bool = True

    def stream(self, name: str) -> Callable[..., Iterator[Event]]:
        def run(*args: Any, cancel: CancelToken, **kwargs: Any) -> Iterator[Event]:
            self.calls.append((name, {"args": args, **kwargs}))
            yield Event("run.started", f"{name} run")
            yield Event("step.started", f"{name} step", step="one")
            yield Event("step.output", f"{name}: working", step="one")
            yield Event("step.finished", f"{name} step done", step="one")
            yield Event("run.finished", f"{name} done", exit_code=0)

        return run


def inventory(install_dir: Path) -> Inventory:
    return Inventory(
        "production",
        f"{install_dir} (Compose project codequal-x)",
        [
            Item("container", "codequal-x-codequal-1", detail="running, codequal"),
            Item("network", "codequal-x_default"),
            Item("volume", "codequal-x_pgdata", 48_000_000, "pgdata", data=True),
            Item("image", "codequal-test/standin:1", detail="may be shared", removable=False),
            Item("state", str(install_dir / "state"), 12_000, "passwords, history", data=True),
        ],
        INSTALLED,
    )


@pytest.fixture
def fakes(site: Site, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    found = Fakes()

    def overview(install_dir: str | Path) -> manage.Overview:
        found.overviews += 1
        return fixed_overview(Path(install_dir))

    monkeypatch.setattr(manage, "overview", overview)
    monkeypatch.setattr(upgrade, "installed_version", lambda answers: INSTALLED)
    monkeypatch.setattr(upgrade, "check_healthy", lambda answers: "installation healthy")
    monkeypatch.setattr(manage, "upgrade_events", found.stream("upgrade"))
    monkeypatch.setattr(manage, "uninstall_events", found.stream("uninstall"))
    monkeypatch.setattr(
        manage,
        "uninstall_preview",
        lambda answers: manage.UninstallPreview(inventory(site.install_dir), DOMAIN),
    )

    def rollback_preview(answers: Any, secrets: Any) -> rollback.RollbackPreview:
        return rollback.RollbackPreview(
            install_dir=answers.install_dir,
            target="production",
            installed="2.0.0-test",
            previous=INSTALLED,
            upgraded_at="2026-12-04T18:00:00Z",
            seconds_since_upgrade=7500.0,
            archive=site.install_dir
            / "backups"
            / "codequal-x-20261204T175959Z-1.0.0-test.cqbackup",
            verified=found.rollback_allowed,
            tables=(rollback.TableLoss("items", 100, 117),),
            notes=(),
            problems=() if found.rollback_allowed else ("the pre-upgrade backup is not verified",),
            exit_code=0 if found.rollback_allowed else 4,
        )

    monkeypatch.setattr(rollback, "rollback_preview", rollback_preview)
    monkeypatch.setattr(rollback, "rollback_events", found.stream("rollback"))
    return found


async def open_manage(pilot: Any, app: InstallerApp) -> ManageScreen:
    await wait_for_screen(pilot, "welcome")
    await wait_until(pilot, lambda: bool(app.screen.query("#manage")))
    await pilot.press("m")
    await wait_for_screen(pilot, "manage")
    screen = app.screen
    assert isinstance(screen, ManageScreen)
    await wait_until(pilot, lambda: screen.loaded is not None)
    await pilot.pause()
    return screen


async def dialog(pilot: Any, kind: type) -> Any:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind))
    await pilot.pause()
    return pilot.app.screen


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def log_lines(screen: ManageScreen) -> list[str]:
    from screens.action import RunPanel

    return screen.query_one(RunPanel).lines


class TestWelcome:
    async def test_no_installation_no_manage(
        self, make_app: Callable[..., InstallerApp], tmp_path: Path
    ) -> None:
        draft = {"version": 1, "target": "development", "install_dir": str(tmp_path / "none")}
        app = make_app(state=WizardState(draft=draft))
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "welcome")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not app.screen.query("#manage")
            await pilot.press("m")
            await pilot.pause()
            assert getattr(app.screen, "STEP", None) == "welcome"

    async def test_an_installation_offers_manage(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_screen(pilot, "welcome")
            await wait_until(pilot, lambda: bool(app.screen.query("#manage")))
            assert "Manage" in text_of(app.screen, "#installation")
            await pilot.click("#manage")
            await wait_for_screen(pilot, "manage")
            await pilot.press("escape")
            await wait_for_screen(pilot, "welcome")


class TestStatus:
    async def test_release_health_last_backup_and_history(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_manage(pilot, app)
            text = text_of(screen, "#overview")
            assert f"CodeQual {INSTALLED} (production) in {site.install_dir}: healthy" in text
            assert "schema version 1" in text
            assert "codequal running, healthy" in text
            assert "Last backup: codequal-x-20261204T170000Z.cqbackup" in text
            assert "verified" in text
            assert "install" in text and "finished (exit 0)" in text
            for button in ("upgrade", "backups", "rollback", "uninstall"):
                assert not screen.query_one(f"#{button}", Button).disabled
            before = fakes.overviews
            await pilot.press("s")
            await wait_until(pilot, lambda: fakes.overviews > before)

    async def test_without_answers_only_status_and_backups(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        draft = {**site.draft, "unknown_key": 1}
        app = make_app(state=WizardState(draft=draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_manage(pilot, app)
            assert "need the installation's answer file" in text_of(screen, "#overview")
            for button in ("upgrade", "rollback", "uninstall"):
                assert screen.query_one(f"#{button}", Button).disabled
            assert not screen.query_one("#backups", Button).disabled
            await pilot.press("u")
            await pilot.pause()
            assert app.screen is screen
            await pilot.press("b")
            await wait_for_screen(pilot, "backups")


class TestUpgrade:
    async def test_choices_refused_path_then_review_then_run(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_manage(pilot, app)
            await pilot.press("u")
            review = await dialog(pilot, UpgradeReview)
            options = review.query_one(OptionList)
            shown = [
                str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
            ]
            # Every known release above the installed one, oldest first; then a bundle.
            versions = [line.split()[0] for line in shown[:-1]]
            assert versions[0] == "1.5.0-test" and versions[-1] == "3.0.0-test"
            assert {"2.0.0-test", "2.0.0-broken"} <= set(versions) and INSTALLED not in versions
            assert shown[-1] == "An offline bundle…"
            by_version = dict(zip(versions, shown, strict=False))
            assert by_version["2.0.0-test"].endswith("direct")
            assert by_version["3.0.0-test"].endswith("required stop first: 1.5.0-test")
            three, two = versions.index("3.0.0-test"), versions.index("2.0.0-test")
            confirm = review.query_one("#confirm", Button)
            # 3.0.0-test: the path is refused, naming the stop and the path to follow.
            options.highlighted = three
            await pilot.press("enter")
            text = review.query_one("#upgrade-review", Static)
            await wait_until(pilot, lambda: "Refused" in str(text.render()))
            shown_text = str(text.render())
            assert "skips the required stop 1.5.0-test" in shown_text
            assert "1.0.0-test -> 1.5.0-test -> 3.0.0-test" in shown_text
            assert "✓ installation healthy" in shown_text
            assert confirm.disabled
            await pilot.click("#confirm")
            await pilot.pause()
            assert isinstance(app.screen, UpgradeReview)
            # 2.0.0-test: allowed; the review says from, to, the backup first, the images.
            options.focus()
            options.highlighted = two
            await pilot.press("enter")
            await wait_until(pilot, lambda: review.preview is not None)
            await pilot.pause()
            shown_text = str(text.render())
            assert f"CodeQual {INSTALLED} -> 2.0.0-test" in shown_text
            assert "✓ upgrade path: 1.0.0-test -> 2.0.0-test" in shown_text
            assert "✓ free disk" in shown_text
            assert f"{site.install_dir / 'backups'}" in shown_text
            assert "rollback key" in shown_text
            assert "codequal-test/standin:1 -> codequal-test/standin:2" in shown_text
            assert "the database is migrated" in shown_text
            assert not confirm.disabled
            assert fakes.calls == []  # nothing runs before the confirmation
            # Another release highlighted: the review read for 2.0.0-test no longer counts.
            options.highlighted = 0
            await pilot.pause()
            assert confirm.disabled and review.preview is None
            options.highlighted = two
            await pilot.press("enter")
            await wait_until(pilot, lambda: review.preview is not None)
            await pilot.pause()
            assert app.focused is confirm  # Enter confirms, as an operator would
            await pilot.press("enter")
            await wait_until(pilot, lambda: screen.running is None and screen.verdict is not None)
            ((name, call),) = fakes.calls
            assert name == "upgrade"
            assert call["to"] == "2.0.0-test" and call["bundle"] is None
            assert call["args"][0].install_dir == str(site.install_dir)
            lines = log_lines(screen)
            assert "==> upgrade step" in lines and "upgrade: working" in lines
            assert "✓ upgrade done" in lines
            # The log has the focus once the review is gone, so Home, PageUp and the arrows
            # read back what scrolled by.
            from screens.action import RunPanel

            assert app.focused is screen.query_one(RunPanel).log_view

    async def test_cancel_runs_nothing(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_manage(pilot, app)
            await pilot.press("u")
            review = await dialog(pilot, UpgradeReview)
            review.query_one(OptionList).highlighted = 2
            await pilot.press("enter")
            await wait_until(pilot, lambda: review.preview is not None)
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen
            assert fakes.calls == []


class TestRollback:
    async def test_what_will_be_lost_then_two_confirmations(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_manage(pilot, app)
            await pilot.press("r")
            review = await dialog(pilot, RollbackReview)
            text = text_of(review, "#rollback-review")
            assert "CodeQual 2.0.0-test -> 1.0.0-test" in text
            assert "What will be lost" in text
            assert "table items: 17 rows written since the upgrade (100 -> 117), lost" in text
            for line in review.preview.loss_lines():  # every line the command would print
                assert line.strip() in text
            assert "codequal-x-20261204T175959Z-1.0.0-test.cqbackup (verified)" in text
            await pilot.click("#confirm")
            question = await dialog(pilot, ConfirmDialog)
            asked = str(question.query_one(".question", Static).render())
            assert "Roll CodeQual 2.0.0-test back to 1.0.0-test?" in asked
            assert "table items: 17 rows written since the upgrade" in asked
            await pilot.press("n")
            await dialog(pilot, RollbackReview)
            assert fakes.calls == []
            await pilot.click("#confirm")
            await dialog(pilot, ConfirmDialog)
            await pilot.press("y")
            await wait_until(pilot, lambda: screen.verdict is not None and screen.running is None)
            ((name, call),) = fakes.calls
            assert name == "rollback"
            assert call["args"][0].install_dir == str(site.install_dir)
            assert call["preview"] is review.preview  # the loss announced is the one recorded
            assert "✓ rollback done" in log_lines(screen)

    async def test_refused_cannot_be_confirmed(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        fakes.rollback_allowed = False
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            await open_manage(pilot, app)
            await pilot.press("r")
            review = await dialog(pilot, RollbackReview)
            text = text_of(review, "#rollback-review")
            assert "Refused" in text and "not verified" in text
            assert "What will be lost" not in text
            assert review.query_one("#confirm", Button).disabled
            await pilot.click("#confirm")
            await pilot.pause()
            assert isinstance(app.screen, RollbackReview)
            assert fakes.calls == []


class TestUninstall:
    async def test_inventory_kept_and_removed_then_uninstall(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_manage(pilot, app)
            await pilot.press("x")
            review = await dialog(pilot, UninstallReview)
            table = review.query_one(DataTable)
            rows = {
                str(r[3]): str(r[0]) for r in (table.get_row_at(i) for i in range(table.row_count))
            }
            assert "removed" in rows["codequal-x-codequal-1"]
            assert "kept" in rows["codequal-x_pgdata"]
            assert "kept" in rows["codequal-test/standin:1"]
            assert "the data stays" in text_of(review, "#uninstall-summary")
            assert not review.query_one("#phrase").display
            await pilot.click("#confirm")
            await wait_until(pilot, lambda: screen.verdict is not None and screen.running is None)
            ((name, call),) = fakes.calls
            assert name == "uninstall" and call["purge"] is False

    async def test_purge_needs_the_domain_typed(
        self, make_app: Callable[..., InstallerApp], site: Site, fakes: Fakes
    ) -> None:
        app = make_app(state=WizardState(draft=site.draft))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_manage(pilot, app)
            await pilot.press("x")
            review = await dialog(pilot, UninstallReview)
            review.query_one("#purge", Checkbox).value = True
            await pilot.pause()
            table = review.query_one(DataTable)
            rows = {
                str(r[3]): str(r[0]) for r in (table.get_row_at(i) for i in range(table.row_count))
            }
            assert "removed" in rows["codequal-x_pgdata"]
            assert "kept" in rows["codequal-test/standin:1"]  # images are never removed
            assert "Purge" in text_of(review, "#uninstall-summary")
            confirm = review.query_one("#confirm", Button)
            phrase = review.query_one("#phrase", Input)
            assert confirm.disabled and app.focused is phrase
            await pilot.press(*"codequal.example.org", "enter")
            await pilot.pause()
            assert confirm.disabled and isinstance(app.screen, UninstallReview)
            phrase.value = ""
            await pilot.press(*DOMAIN)
            await pilot.pause()
            assert not confirm.disabled
            assert fakes.calls == []
            await pilot.press("enter")
            await wait_until(pilot, lambda: screen.verdict is not None and screen.running is None)
            ((name, call),) = fakes.calls
            assert name == "uninstall" and call["purge"] is True
