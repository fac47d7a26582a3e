"""Acceptance 2: a snapshot of every screen at 80x24 and at 120x40.

Stable by construction: machine probes come from the fixed backend, the clock is fixed,
file locations are fixed paths that are never written, cursors do not blink, and nothing
shows the host name or the time. Update after a deliberate change with
``pytest tests/ui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
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


def test_fixed_rows_cover_every_status() -> None:
    # The prerequisite snapshot shows a fail, a warn and passes; a skip after confirmation.
    statuses = {row.status for row in fixed_rows([])}
    assert {"pass", "warn", "fail"} <= statuses
    assert {row.status for row in fixed_rows(["cpu"])} >= {"skipped"}
