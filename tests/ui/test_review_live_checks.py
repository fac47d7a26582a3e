"""The review runs the live checks again with the secrets typed into the form.

The live-check runner is replaced by the fixed backend's verdicts (the real checks are
tried against real services in tests/integration/test_live_checks.py); here: what the
review shows of them, and how a failure holds Install back until fixed or skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Static

from screens.app import InstallerApp
from screens.backend import CheckRow
from screens.state import WizardState
from tests.ui.conftest import wait_for_screen, wait_until
from tests.ui.fixed_backend import LIVE_PASSING, FixedBackend

IMAGES_FAIL = CheckRow(
    "images",
    "fail",
    "4 of 4 images unavailable: could not reach docker.io (DNS: registry-1.docker.io does "
    "not resolve)",
    "every image of the release",
    "give the offline bundle (--bundle) or a registry mirror (registry.mirror)",
    "images",
)
DOMAIN_WARN = CheckRow(
    "tls",
    "warn",
    "the certificate expires in 7 days",
    "valid for 14 days or more",
    "renew the certificate",
    "tls",
)


def draft() -> dict[str, Any]:
    return {
        "version": 1,
        "target": "production",
        "domain": "codequal.example.com",
        "database": {"managed": True, "host": "db.example.com"},
        "checks": {"skip": ["cpu"]},
    }


def review_app(backend: FixedBackend, tmp_path: Path) -> InstallerApp:
    state = WizardState(draft=draft(), secrets={"database_password": "typed-db-secret-01"})
    return InstallerApp(
        backend=backend, state=state, save_dir=tmp_path, clock=lambda: 0.0, first_step="review"
    )


def live_text(app: InstallerApp) -> str:
    return str(app.screen.query_one("#live-checks", Static).render())


def planned_and_checked(app: InstallerApp) -> bool:
    screen: Any = app.screen
    return screen.plan is not None and screen.live is not None


async def test_a_failing_live_check_disables_install_until_skipped_by_name(
    tmp_path: Path,
) -> None:
    backend = FixedBackend(live_rows=[IMAGES_FAIL, *LIVE_PASSING[1:]])
    app = review_app(backend, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "review")
        await wait_until(pilot, lambda: planned_and_checked(app))
        await pilot.pause()
        # The secrets typed into the form, not only the environment's.
        secret = backend.live_secrets[0].database_password
        assert secret is not None and secret.get_secret_value() == "typed-db-secret-01"
        text = live_text(app)
        assert app.screen.query_one("#live-checks").display
        assert "✗ fail images: 4 of 4 images unavailable: could not reach docker.io" in text
        assert "give the offline bundle (--bundle)" in text
        assert "Install is disabled: images failed" in text
        assert "s adds images to checks.skip" in text
        # Only what does not pass: the passing checks are not listed.
        assert "proxy" not in text
        assert "typed-db-secret-01" not in text
        assert app.screen.query_one("#install").disabled
        # Ctrl+S does not go around the disabled button.
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert getattr(app.screen, "STEP", None) == "review" and backend.runs == 0
        # Skipped by its name: recorded in checks.skip, checked again, Install enabled.
        await pilot.press("s")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog")
        await pilot.press("y")
        await wait_for_screen(pilot, "review")
        await wait_until(pilot, lambda: not app.screen.query_one("#install").disabled)
        assert app.state.get("checks.skip") == ["cpu", "images"]
        assert len(backend.live_secrets) == 2
        assert not app.screen.query_one("#live-checks").display
        await pilot.press("ctrl+s")
        await wait_for_screen(pilot, "done")
    assert backend.installs[-1].checks.skip == ["cpu", "images"]


async def test_a_warning_is_shown_and_install_stays_enabled(tmp_path: Path) -> None:
    backend = FixedBackend(live_rows=[*LIVE_PASSING[:1], DOMAIN_WARN])
    app = review_app(backend, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "review")
        await wait_until(pilot, lambda: not app.screen.query_one("#install").disabled)
        text = live_text(app)
        assert "! warn tls: the certificate expires in 7 days" in text
        assert "renew the certificate" in text
        assert "Install is disabled" not in text


async def test_install_waits_for_the_live_checks(
    tmp_path: Path,
) -> None:
    import threading

    release = threading.Event()

    class SlowBackend(FixedBackend):
        def live_checks(self, answers: Any, secrets: Any) -> Any:
            release.wait(10)
            return super().live_checks(answers, secrets)

    backend = SlowBackend()
    app = review_app(backend, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "review")
        await wait_until(pilot, lambda: getattr(app.screen, "plan", None) is not None)
        await pilot.pause()
        # The plan is there, the checks are not: not yet.
        assert app.screen.query_one("#install").disabled
        # Install pressed meanwhile starts once they pass.
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert getattr(app.screen, "STEP", None) == "review" and backend.runs == 0
        release.set()
        await wait_for_screen(pilot, "done")
        assert backend.runs == 1


async def test_install_pressed_while_checking_does_not_start_when_a_check_fails(
    tmp_path: Path,
) -> None:
    import threading

    release = threading.Event()

    class SlowBackend(FixedBackend):
        def live_checks(self, answers: Any, secrets: Any) -> Any:
            release.wait(10)
            return super().live_checks(answers, secrets)

    backend = SlowBackend(live_rows=[IMAGES_FAIL])
    app = review_app(backend, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "review")
        await wait_until(pilot, lambda: getattr(app.screen, "plan", None) is not None)
        await pilot.press("ctrl+s")
        await pilot.pause()
        release.set()
        await wait_until(pilot, lambda: getattr(app.screen, "live", None) is not None)
        await pilot.pause(0.2)
        assert getattr(app.screen, "STEP", None) == "review" and backend.runs == 0
        assert app.screen.query_one("#install").disabled
        assert "Install is disabled: images failed" in live_text(app)
