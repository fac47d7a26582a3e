"""Acceptance 2: a snapshot of every screen at 80x24 and at 120x40.

Stable by construction: machine probes come from the fixed backend, the clock is fixed,
file locations are fixed paths that are never written, cursors do not blink, and nothing
shows the host name or the time. Update after a deliberate change with
``pytest tests/ui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from installer.answers import AnswerFile
from screens.app import InstallerApp
from screens.state import FailureInfo, WizardState
from tests.ui.conftest import wait_for_screen, wait_until
from tests.ui.fixed_backend import STEPS, FixedBackend, fixed_rows, result_data

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
SAVE_DIR = "/srv/codequal-wizard"  # shown on the review screen; never written here
RunBefore = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture(autouse=True)
def _colour(monkeypatch: pytest.MonkeyPatch) -> None:
    # The snapshots are in colour whatever the environment of the test run says.
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture(autouse=True)
def _no_installation(monkeypatch: pytest.MonkeyPatch) -> None:
    # The welcome step offers Backups when install_dir holds an installation: whatever this
    # machine has installed, the snapshots see none unless a test says otherwise.
    from installer.backup import actions

    monkeypatch.setattr(actions, "installed_at", lambda install_dir: None)


def no_cursor_blink(pilot: Pilot[Any]) -> None:
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False


def production_draft() -> dict[str, Any]:
    return {
        "version": 1,
        "target": "production",
        "domain": "codequal.example.com",
        "checks": {"skip": ["cpu"]},
    }


def app_at(step: str, state: WizardState, backend: FixedBackend | None = None) -> InstallerApp:
    return InstallerApp(
        backend=backend or FixedBackend(),
        state=state,
        save_dir=SAVE_DIR,
        clock=lambda: 0.0,
        first_step=step,
    )


def settle(step: str, condition: Callable[[InstallerApp], bool] | None = None) -> RunBefore:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for_screen(pilot, step)
        if condition is not None:
            app = pilot.app
            assert isinstance(app, InstallerApp)
            await wait_until(pilot, lambda: condition(app))
        await pilot.pause()
        no_cursor_blink(pilot)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
class TestWelcome:
    def test_fresh(self, snap_compare: Any, size: tuple[int, int]) -> None:
        app = app_at("welcome", WizardState())
        assert snap_compare(app, terminal_size=size, run_before=settle("welcome"))

    def test_prefilled(self, snap_compare: Any, size: tuple[int, int]) -> None:
        state = WizardState(
            draft={"version": 1, "target": "production"},
            prefilled_from="answers.yaml",
            prefill_problems={"domain": ["a public host name is required"]},
        )
        app = app_at("welcome", state)
        assert snap_compare(app, terminal_size=size, run_before=settle("welcome"))


@pytest.mark.parametrize("size", SIZES)
class TestPrerequisites:
    def test_report(self, snap_compare: Any, size: tuple[int, int]) -> None:
        app = app_at("prerequisites", WizardState())
        ready = settle("prerequisites", lambda a: a.state.prerequisites is not None)
        assert snap_compare(app, terminal_size=size, run_before=ready)

    def test_skip_confirmation(self, snap_compare: Any, size: tuple[int, int]) -> None:
        app = app_at("prerequisites", WizardState())

        async def run_before(pilot: Pilot[Any]) -> None:
            await settle("prerequisites", lambda a: a.state.prerequisites is not None)(pilot)
            await pilot.press("s")
            await pilot.pause()

        assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
class TestTarget:
    def test_recommended_preselected(self, snap_compare: Any, size: tuple[int, int]) -> None:
        state = WizardState()
        state.detection = FixedBackend().detect()
        app = app_at("target", state)
        assert snap_compare(app, terminal_size=size, run_before=settle("target"))


@pytest.mark.parametrize("size", SIZES)
class TestConfiguration:
    def test_development_form(self, snap_compare: Any, size: tuple[int, int]) -> None:
        app = app_at("configuration", WizardState(draft={"version": 1, "target": "development"}))
        assert snap_compare(app, terminal_size=size, run_before=settle("configuration"))

    def test_inline_problems(self, snap_compare: Any, size: tuple[int, int]) -> None:
        draft = {"version": 1, "target": "production", "domain": "not a host!"}
        app = app_at("configuration", WizardState(draft=draft))
        assert snap_compare(app, terminal_size=size, run_before=settle("configuration"))

    def test_prefilled_asks_only_what_is_missing(
        self, snap_compare: Any, size: tuple[int, int]
    ) -> None:
        state = WizardState(
            draft={"version": 1, "target": "production", "databse": {"kind": "postgres"}},
            prefilled_from="answers.yaml",
        )
        app = app_at("configuration", state)
        assert snap_compare(app, terminal_size=size, run_before=settle("configuration"))


def at_section(section: str, path: str) -> RunBefore:
    """Settle on the configuration step scrolled to ``section``, its field ``path`` focused."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle("configuration")(pilot)
        screen = pilot.app.screen
        screen.query_one("#field-" + path.replace(".", "--")).focus(scroll_visible=False)
        screen.query_one(f"#section-{section}").scroll_visible(animate=False, top=True)
        await pilot.pause()
        no_cursor_blink(pilot)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
class TestConfigurationSections:
    """The sign-in, telemetry, audit and alerting sections, each with an inline problem."""

    def test_sign_in(self, snap_compare: Any, size: tuple[int, int]) -> None:
        draft = {
            **production_draft(),
            "identity": {"enabled": True, "issuer": "http://login.example.com"},
            "audit": {"destination": "volume", "retention_days": 0},
        }
        app = app_at("configuration", WizardState(draft=draft))
        assert snap_compare(
            app, terminal_size=size, run_before=at_section("identity", "identity.issuer")
        )

    def test_alerting(self, snap_compare: Any, size: tuple[int, int]) -> None:
        draft = {
            **production_draft(),
            "alerting": {
                "enabled": True,
                "email": {"smtp_host": "smtp example", "from_address": "alerts@example.com"},
            },
        }
        app = app_at("configuration", WizardState(draft=draft))
        assert snap_compare(
            app, terminal_size=size, run_before=at_section("alerting", "alerting.email.smtp_host")
        )


@pytest.mark.parametrize("size", SIZES)
class TestReview:
    def test_files(self, snap_compare: Any, size: tuple[int, int]) -> None:
        app = app_at("review", WizardState(draft=production_draft()))
        ready = settle("review", lambda a: not a.screen.query_one("#install").disabled)
        assert snap_compare(app, terminal_size=size, run_before=ready)

    def test_steps(self, snap_compare: Any, size: tuple[int, int]) -> None:
        app = app_at("review", WizardState(draft=production_draft()))

        async def run_before(pilot: Pilot[Any]) -> None:
            ready = settle("review", lambda a: not a.screen.query_one("#install").disabled)
            await ready(pilot)
            await pilot.click("#review-tabs Tab#--content-tab-tab-steps")
            await pilot.pause()

        assert snap_compare(app, terminal_size=size, run_before=run_before)


def installing_state() -> WizardState:
    state = WizardState(draft={"version": 1, "target": "development"})
    state.plan_steps = list(STEPS)
    return state


@pytest.mark.parametrize("size", SIZES)
class TestInstall:
    def test_loading_images(self, snap_compare: Any, size: tuple[int, int]) -> None:
        backend = FixedBackend(hold_loading=threading.Event())
        app = app_at("install", installing_state(), backend)

        async def run_before(pilot: Pilot[Any]) -> None:
            await wait_for_screen(pilot, "install")
            await wait_until(pilot, backend.loading_images.is_set)
            log = pilot.app.screen.query_one("#install-log")
            await wait_until(pilot, lambda: any("layer 1/3" in line for line in log.lines))  # type: ignore[attr-defined]
            await pilot.pause()

        try:
            assert snap_compare(app, terminal_size=size, run_before=run_before)
        finally:
            assert backend.hold_loading is not None
            backend.hold_loading.set()


@pytest.mark.parametrize("size", SIZES)
class TestEnd:
    def test_done(self, snap_compare: Any, size: tuple[int, int]) -> None:
        state = installing_state()
        answers = AnswerFile.model_validate(state.draft)
        state.result = {**result_data(answers), "message": "installed: changed configuration"}
        state.saved_answers = f"{SAVE_DIR}/codequal-answers.yaml"
        app = app_at("done", state)
        assert snap_compare(app, terminal_size=size, run_before=settle("done"))

    def test_failure(self, snap_compare: Any, size: tuple[int, int]) -> None:
        state = installing_state()
        state.failure = FailureInfo(
            step="verification",
            message="codequal did not become healthy within 60 s; rolled back: services",
            hint="free port 3000",
            log_tail=FixedBackend().failure_lines,
            rolled_back=True,
        )
        app = app_at("failure", state)
        assert snap_compare(app, terminal_size=size, run_before=settle("failure"))

    def test_help(self, snap_compare: Any, size: tuple[int, int]) -> None:
        state = installing_state()
        state.prerequisites = None
        app = app_at("welcome", state)

        async def run_before(pilot: Pilot[Any]) -> None:
            await settle("welcome")(pilot)
            await pilot.press("f1")
            await pilot.pause()

        assert snap_compare(app, terminal_size=size, run_before=run_before)


INSTALL_DIR = f"{SAVE_DIR}/install"
RECIPIENT = "age1a9v6cf0z9xwxvp5utczw704l3t6mej9t9cqrh2jg698amxllralq5nh6pw"  # public only


def backups_draft() -> dict[str, Any]:
    return {**production_draft(), "install_dir": INSTALL_DIR, "backup": {"recipients": [RECIPIENT]}}


@pytest.fixture
def fixed_backups(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation and its archives, as fixed data (paths never written)."""
    from installer.backup import actions
    from installer.backup.catalog import ArchiveEntry

    installation = actions.Installation(
        install_dir=INSTALL_DIR,
        target="production",
        release="0.1.0",
        project="codequal-install-2a0f4c",
        database="postgres",
    )
    backups = Path(INSTALL_DIR) / "backups"

    def entry(stamp: str, size: int, verified: str | None) -> ArchiveEntry:
        created = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:00Z"
        record = None
        if verified is not None:
            record = {"mode": verified, "verified_at": created.replace("T1", "T2")}
        return ArchiveEntry(
            path=backups / f"{installation.project}-{stamp}-0.1.0.cqbackup",
            size=size,
            install=installation.project,
            created=created,
            release="0.1.0",
            verified=record,
        )

    entries = [
        entry("20261204T170000Z", 512_345_678, None),
        entry("20261203T170000Z", 498_765_432, "full"),
        entry("20261202T170000Z", 497_000_000, "quick"),
    ]
    monkeypatch.setattr(
        actions, "installed_at", lambda d: installation if str(d) == INSTALL_DIR else None
    )
    monkeypatch.setattr(actions, "list_backups", lambda directory: list(entries))
    monkeypatch.setattr(
        actions,
        "create_preview",
        lambda answers, **_: actions.CreatePreview(
            install_dir=INSTALL_DIR,
            directory=backups,
            name_pattern=f"{installation.project}-<UTC time>-0.1.0.cqbackup",
            recipients=[RECIPIENT],
            contents=[
                ("manifest.json", "versions, answers (no secrets), hashes"),
                ("database/postgres.pgdump", "pg_dump -Fc of codequal"),
                ("volumes/codequal_data.tar.zst", "named volume codequal_data"),
                ("volumes/deepwiki_cache.tar.zst", "named volume deepwiki_cache"),
                ("config.tar.zst", f"the rendered configuration in {INSTALL_DIR}"),
                ("state.tar.zst", "generated secrets, TLS material, journal, result, history"),
            ],
            pauses=(
                "codequal, deepwiki, nginx are paused while the volumes are copied (the "
                "database is not; it is dumped from a snapshot taken during the pause); the "
                "pause is measured"
            ),
        ),
    )
    monkeypatch.setattr(
        actions,
        "restore_preview",
        lambda archive, identity, answers, secrets: actions.RestorePreview(
            archive=archive,
            release="0.1.0",
            target_release="0.1.0",
            created="2026-12-03T17:00:00Z",
            archive_target="production",
            install_dir=INSTALL_DIR,
            existing=installation,
            replaces=[
                f"the files in {INSTALL_DIR}: rendered again from these answers, with the "
                "archive's generated secrets and TLS material",
                "named volumes codequal_data, deepwiki_cache: emptied, then filled from the "
                "archive",
                "the PostgreSQL database codequal: dropped and created afresh from the dump "
                "(4 tables, 120345 rows)",
                "the application services: stopped during the restore, then started again",
            ],
            safety_directory=backups,
            safety_recipients=[RECIPIENT],
            refusals=[],
        ),
    )
    # The identity file the reviews ask for is "there" (its path is shown, never read).
    monkeypatch.setattr("screens.backups._identity_problem", lambda text: None)


def backups_app() -> InstallerApp:
    return app_at("welcome", WizardState(draft=backups_draft()))


async def open_backups(pilot: Pilot[Any]) -> None:
    await wait_for_screen(pilot, "welcome")
    await wait_until(pilot, lambda: bool(pilot.app.screen.query("#backups")))
    await pilot.press("b")
    await settle("backups", lambda a: getattr(a.screen, "listing", None) is not None)(pilot)


async def open_review(pilot: Pilot[Any], key: str, kind: str) -> None:
    await open_backups(pilot)
    await pilot.press(key)
    await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == kind)
    await pilot.pause()
    no_cursor_blink(pilot)
    await pilot.pause()


IDENTITY = "/root/codequal-backup.key"


async def read_restore_preview(pilot: Pilot[Any]) -> None:
    await open_review(pilot, "r", "RestoreReview")
    pilot.app.screen.query_one(Input).value = IDENTITY
    await pilot.press("enter")
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "preview", None) is not None)
    await pilot.pause()


@pytest.mark.usefixtures("fixed_backups")
@pytest.mark.parametrize("size", SIZES)
class TestBackups:
    def test_welcome_offers_backups(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await settle("welcome")(pilot)
            await wait_until(pilot, lambda: bool(pilot.app.screen.query("#backups")))
            await pilot.pause()

        assert snap_compare(backups_app(), terminal_size=size, run_before=run_before)

    def test_list(self, snap_compare: Any, size: tuple[int, int]) -> None:
        assert snap_compare(backups_app(), terminal_size=size, run_before=open_backups)

    def test_create_review(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await open_review(pilot, "c", "CreateReview")

        assert snap_compare(backups_app(), terminal_size=size, run_before=run_before)

    def test_verify_review(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await open_review(pilot, "v", "VerifyReview")

        assert snap_compare(backups_app(), terminal_size=size, run_before=run_before)

    def test_restore_review(self, snap_compare: Any, size: tuple[int, int]) -> None:
        assert snap_compare(backups_app(), terminal_size=size, run_before=read_restore_preview)

    def test_restore_confirmation(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await read_restore_preview(pilot)
            await pilot.click("#confirm")
            await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "ConfirmDialog")
            await pilot.pause()

        assert snap_compare(backups_app(), terminal_size=size, run_before=run_before)

    def test_failed_verify(
        self, snap_compare: Any, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from installer.backup import actions
        from installer.events import Event

        def verify(archive: Path, identity: Path, *, cancel: Any) -> Any:
            yield Event("run.started", f"verify {archive.name} (restore into a sandbox)")
            yield Event("step.started", "Decrypt and check every member", step="hashes")
            yield Event("step.output", "decrypting with the identity", step="hashes")
            yield Event(
                "step.failed",
                "volumes/codequal_data.tar.zst: 1 byte differs from the manifest's SHA-256",
                step="hashes",
            )
            yield Event(
                "run.failed",
                "volumes/codequal_data.tar.zst: 1 byte differs from the manifest's SHA-256",
                exit_code=4,
                data={"member": "volumes/codequal_data.tar.zst", "hint": "take a new backup"},
            )

        monkeypatch.setattr(actions, "verify_events", verify)

        async def run_before(pilot: Pilot[Any]) -> None:
            await open_backups(pilot)
            await pilot.press("v")
            await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "VerifyReview")
            pilot.app.screen.query_one(Input).value = IDENTITY
            await pilot.press("enter")
            await wait_until(pilot, lambda: getattr(pilot.app.screen, "verdict", None) is not None)
            await wait_until(pilot, lambda: not pilot.app.screen.running)  # type: ignore[attr-defined]
            await pilot.pause()

        assert snap_compare(backups_app(), terminal_size=size, run_before=run_before)


def test_fixed_rows_cover_every_status() -> None:
    # The prerequisite snapshot shows a fail, a warn and passes; a skip after confirmation.
    statuses = {row.status for row in fixed_rows([])}
    assert {"pass", "warn", "fail"} <= statuses
    assert {row.status for row in fixed_rows(["cpu"])} >= {"skipped"}


# -- Manage ------------------------------------------------------------------------------


MANAGE_BACKUPS = f"{INSTALL_DIR}/backups"
PRE_UPGRADE = f"{MANAGE_BACKUPS}/codequal-install-2a0f4c-20261204T175959Z-1.0.0-test.cqbackup"


@pytest.fixture
def fixed_manage(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation of 1.0.0-test, its status, and what each review would read."""
    from installer import manage, rollback
    from installer.backup import actions
    from installer.history import HistoryEntry
    from installer.uninstall import Inventory, Item

    installation = actions.Installation(
        install_dir=INSTALL_DIR,
        target="production",
        release="1.0.0-test",
        project="codequal-install-2a0f4c",
        database="postgres",
    )
    monkeypatch.setattr(
        actions, "installed_at", lambda d: installation if str(d) == INSTALL_DIR else None
    )
    overview = manage.Overview(
        install_dir=INSTALL_DIR,
        installed=True,
        target="production",
        release="1.0.0-test",
        schema_version="1",
        healthy=True,
        services=[
            ("codequal", "running, healthy"),
            ("deepwiki", "running, healthy"),
            ("nginx", "running, healthy"),
            ("postgres", "running, healthy"),
        ],
        docker_error=None,
        last_backup={
            "archive": PRE_UPGRADE.replace("175959", "170000"),
            "created": "2026-12-04T17:00:00Z",
            "verified": True,
        },
        history=[
            HistoryEntry(
                "install", None, "1.0.0-test", "2026-12-04T16:00:00Z", 41.0, 0, "finished"
            ),
            HistoryEntry(
                "reconfigure", "1.0.0-test", "1.0.0-test", "2026-12-04T16:30:00Z", 12.0, 0,
                "finished",
            ),
        ],
    )  # fmt: skip
    monkeypatch.setattr(manage, "overview", lambda install_dir: overview)
    monkeypatch.setattr(
        manage,
        "upgrade_choices",
        lambda installed: [
            manage.ReleaseChoice("1.5.0-test", True, "direct"),
            manage.ReleaseChoice("2.0.0-test", True, "direct"),
            manage.ReleaseChoice("3.0.0-test", False, "required stop first: 1.5.0-test"),
        ],
    )

    def upgrade_preview(answers: Any, secrets: Any, *, to: str, bundle: Any = None) -> Any:
        checks = ["installation healthy"]
        if to == "3.0.0-test":
            return manage.UpgradePreview(
                install_dir=INSTALL_DIR, installed="1.0.0-test", target=to, bundle=None,
                checks=checks, path=None, images=[], backup_directory=Path(MANAGE_BACKUPS),
                backup_recipients=[RECIPIENT], migration="",
                refusal="the upgrade from 1.0.0-test to 3.0.0-test skips the required stop "
                "1.5.0-test",
                hint="follow the path 1.0.0-test -> 1.5.0-test -> 3.0.0-test: upgrade to "
                "1.5.0-test first; or, knowing the risk, pass --force-path REASON (the reason "
                "is recorded in the history)",
                exit_code=2,
            )  # fmt: skip
        return manage.UpgradePreview(
            install_dir=INSTALL_DIR,
            installed="1.0.0-test",
            target=to,
            bundle=None,
            checks=[
                *checks,
                f"upgrade path: 1.0.0-test -> {to}",
                "free disk: 41.2 GiB (needs 1.9 GiB)",
            ],
            path=["1.0.0-test", to],
            images=[
                ("codequal", "codequal-test/standin:1", "codequal-test/standin:2"),
                ("deepwiki", "codequal-test/standin:1", "codequal-test/standin:2"),
            ],
            backup_directory=Path(MANAGE_BACKUPS),
            backup_recipients=[RECIPIENT],
            migration="standin migrate --to 2",
        )

    monkeypatch.setattr(manage, "upgrade_preview", upgrade_preview)
    monkeypatch.setattr(
        rollback,
        "rollback_preview",
        lambda answers, secrets: rollback.RollbackPreview(
            install_dir=INSTALL_DIR,
            target="production",
            installed="2.0.0-test",
            previous="1.0.0-test",
            upgraded_at="2026-12-04T18:00:00Z",
            seconds_since_upgrade=7_500.0,
            archive=Path(PRE_UPGRADE),
            verified=True,
            tables=(
                rollback.TableLoss("items", 1_200, 1_217),
                rollback.TableLoss("reviews", 80, 80),
            ),
        ),
    )
    project = installation.project
    inventory = Inventory(
        "production",
        f"{INSTALL_DIR} (Compose project {project})",
        [
            Item("container", f"{project}-codequal-1", detail="running, codequal"),
            Item("container", f"{project}-postgres-1", detail="running, postgres"),
            Item("network", f"{project}_default"),
            Item("volume", f"{project}_pgdata", 48_234_567, "pgdata", data=True),
            Item("volume", f"{project}_codequal_data", 1_234_567, "codequal_data", data=True),
            Item("image", "codequal-test/standin:1", detail="may be shared", removable=False),
            Item("state", f"{INSTALL_DIR}/state", 23_456, "passwords, history, logs", data=True),
            Item("backup", PRE_UPGRADE, 498_765_432, data=True),
        ],
        "1.0.0-test",
    )
    monkeypatch.setattr(
        manage,
        "uninstall_preview",
        lambda answers: manage.UninstallPreview(inventory, "codequal.example.com"),
    )


def manage_app() -> InstallerApp:
    return app_at("welcome", WizardState(draft=backups_draft()))


async def open_manage(pilot: Pilot[Any]) -> None:
    await wait_for_screen(pilot, "welcome")
    await wait_until(pilot, lambda: bool(pilot.app.screen.query("#manage")))
    await pilot.press("m")
    await settle("manage", lambda a: getattr(a.screen, "loaded", None) is not None)(pilot)


async def open_manage_review(pilot: Pilot[Any], key: str, kind: str) -> None:
    await open_manage(pilot)
    await pilot.press(key)
    await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == kind)
    await pilot.pause()
    no_cursor_blink(pilot)
    await pilot.pause()


async def read_upgrade(pilot: Pilot[Any], version: str) -> None:
    from textual.widgets import OptionList

    await open_manage_review(pilot, "u", "UpgradeReview")
    options = pilot.app.screen.query_one(OptionList)
    options.highlighted = options.get_option_index(version)
    await pilot.press("enter")
    await wait_until(pilot, lambda: not pilot.app.screen.query_one("#reading").display)
    await pilot.pause()


@pytest.mark.usefixtures("fixed_manage")
@pytest.mark.parametrize("size", SIZES)
class TestManage:
    def test_welcome_offers_manage(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await settle("welcome")(pilot)
            await wait_until(pilot, lambda: bool(pilot.app.screen.query("#manage")))
            await pilot.pause()

        assert snap_compare(manage_app(), terminal_size=size, run_before=run_before)

    def test_status(self, snap_compare: Any, size: tuple[int, int]) -> None:
        assert snap_compare(manage_app(), terminal_size=size, run_before=open_manage)

    def test_upgrade_review(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await read_upgrade(pilot, "2.0.0-test")

        assert snap_compare(manage_app(), terminal_size=size, run_before=run_before)

    def test_upgrade_path_refused(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await read_upgrade(pilot, "3.0.0-test")

        assert snap_compare(manage_app(), terminal_size=size, run_before=run_before)

    def test_rollback_review(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await open_manage_review(pilot, "r", "RollbackReview")

        assert snap_compare(manage_app(), terminal_size=size, run_before=run_before)

    def test_uninstall_review(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await open_manage_review(pilot, "x", "UninstallReview")

        assert snap_compare(manage_app(), terminal_size=size, run_before=run_before)

    def test_uninstall_purge(self, snap_compare: Any, size: tuple[int, int]) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            from textual.widgets import Checkbox

            await open_manage_review(pilot, "x", "UninstallReview")
            pilot.app.screen.query_one("#purge", Checkbox).value = True
            await pilot.pause()
            await pilot.press(*"codequal.exa")
            no_cursor_blink(pilot)
            await pilot.pause()

        assert snap_compare(manage_app(), terminal_size=size, run_before=run_before)

    def test_upgrade_log(
        self, snap_compare: Any, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from installer import manage
        from installer.events import Event

        def upgrade(answers: Any, secrets: Any, *, to: str, cancel: Any, **_: Any) -> Any:
            yield Event("run.started", f"upgrade {INSTALL_DIR} to CodeQual {to}")
            yield Event("step.started", "Check the installation and the path", step="checks")
            yield Event("step.output", "installation healthy", step="checks")
            yield Event("step.output", f"upgrade path: 1.0.0-test -> {to}", step="checks")
            yield Event("step.finished", "checks passed: nothing changed yet", step="checks")
            yield Event("step.started", "Pre-upgrade backup", step="backup")
            yield Event("step.output", f"pre-upgrade backup {PRE_UPGRADE} (verified)")
            yield Event("step.finished", "backup written", step="backup")
            yield Event("step.started", "Migrate the database", step="database")
            yield Event("step.output", "schema 1 -> 2: 1217 rows migrated", step="database")
            yield Event("step.finished", "database migrated", step="database")
            yield Event(
                "run.finished",
                f"CodeQual {to} is installed and running; the service was down for 6 s",
                exit_code=0,
            )

        monkeypatch.setattr(manage, "upgrade_events", upgrade)

        async def run_before(pilot: Pilot[Any]) -> None:
            await read_upgrade(pilot, "2.0.0-test")
            await pilot.click("#confirm")
            await wait_until(pilot, lambda: getattr(pilot.app.screen, "verdict", None) is not None)
            await wait_until(pilot, lambda: not pilot.app.screen.running)  # type: ignore[attr-defined]
            await pilot.pause()

        assert snap_compare(manage_app(), terminal_size=size, run_before=run_before)
