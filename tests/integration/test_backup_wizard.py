"""The wizard's Backups screen on the real engine: Create, Verify and Restore, end to end.

A development install (SQLite) on the real Docker Engine; the wizard, opened with its
answer file, offers Backups on the welcome step; Create writes a real archive (listed
afterwards), Verify restores it into a sandbox (listed as verified, nothing left behind),
and Restore over the running installation takes the safety backup first and names it.
Every action is reached through its review, with keys, exactly as an operator would; the
runs go through :mod:`installer.backup.actions` in the screen's worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from installer.backup.crypto import keygen
from screens.app import InstallerApp, load_prefill
from screens.backups import BackupsScreen, CreateReview, RestoreReview, VerifyReview
from screens.dialogs import ConfirmDialog
from tests.integration.apply_support import Install
from tests.ui.conftest import wait_for_screen, wait_until
from tests.ui.fixed_backend import FixedBackend

pytestmark = pytest.mark.integration

RUN_SECONDS = 600.0


async def _verdict(pilot: Any, screen: BackupsScreen) -> Any:
    await wait_until(pilot, lambda: screen.running is None, timeout=RUN_SECONDS)
    await wait_until(pilot, lambda: screen.listing is not None)
    await pilot.pause(0.2)
    assert screen.verdict is not None
    return screen.verdict


async def _dialog(pilot: Any, kind: type) -> Any:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind))
    await pilot.pause()
    return pilot.app.screen


def _log(screen: BackupsScreen) -> str:
    return "\n".join(screen.query_one("#run-log").lines)  # type: ignore[attr-defined]


async def test_create_verify_and_restore_from_the_wizard(
    install: Install, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_backup_restore import Leftovers
    from tests.support import TEST_RELEASES_DIR

    left = Leftovers(install.docker)
    identity = tmp_path / "backup.key"
    recipient = keygen(identity)
    answers = install.answers("development", backup={"recipients": [recipient]})
    run = install.apply(answers)
    assert run.exit_code == 0, run.describe()
    # The wizard runs in this process: the engine reads the test releases from here.
    monkeypatch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
    backups = install.install_dir / "backups"

    app = InstallerApp(
        answers_path=str(answers),
        state=load_prefill(str(answers)),
        backend=FixedBackend(),
        save_dir=tmp_path,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "welcome")
        await wait_until(pilot, lambda: bool(app.screen.query("#backups")))
        await pilot.press("b")
        await wait_for_screen(pilot, "backups")
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        await wait_until(pilot, lambda: screen.listing is not None)
        assert screen.query_one(DataTable).row_count == 0

        # Create: the review names the directory; the run writes one archive there.
        await pilot.press("c")
        await _dialog(pilot, CreateReview)
        await pilot.click("#confirm")
        verdict = await _verdict(pilot, screen)
        assert verdict.type == "run.finished" and verdict.exit_code == 0, _log(screen)
        (archive,) = backups.glob("*.cqbackup")
        assert screen.listing is not None
        assert [e.path for e in screen.listing.entries] == [archive]
        assert "==> Consistent snapshot" in _log(screen)

        # Verify: the full verification in a sandbox; recorded, listed, nothing left.
        await pilot.press("v")
        review = await _dialog(pilot, VerifyReview)
        review.query_one(Input).value = str(identity)
        await pilot.press("enter")
        verdict = await _verdict(pilot, screen)
        assert verdict.type == "run.finished" and verdict.exit_code == 0, _log(screen)
        assert screen.query_one(DataTable).get_row_at(0)[1] == "✓ full"
        assert left.new() == []

        # Restore over the running installation: review, confirmation, safety backup first.
        await pilot.press("r")
        review = await _dialog(pilot, RestoreReview)
        assert review.query_one(Input).value == str(identity)  # remembered from Verify
        await pilot.press("enter")
        await wait_until(pilot, lambda: review.preview is not None, timeout=60)
        assert review.preview.safety_directory == backups
        await pilot.click("#confirm")
        await _dialog(pilot, ConfirmDialog)
        await pilot.press("y")
        verdict = await _verdict(pilot, screen)
        assert verdict.type == "run.finished" and verdict.exit_code == 0, _log(screen)
        safety = sorted(set(backups.glob("*.cqbackup")) - {archive})
        assert len(safety) == 1, _log(screen)
        assert f"safety backup: {safety[0]}" in _log(screen)
        assert len(screen.listing.entries) == 2
    assert install.result()["restored_from"]["archive"] == str(archive)
    assert install.result()["status"] == "installed"
