"""The failure screen's "Save support info" also writes the support bundle (support-bundle)."""

from __future__ import annotations

import json
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

from screens.app import InstallerApp
from screens.failure import SUPPORT_BUNDLE_NAME
from tests.ui.conftest import wait_for_screen, wait_until
from tests.ui.fixed_backend import STEPS, FixedBackend


async def test_save_support_info_writes_the_redacted_bundle(
    make_app: Callable[..., InstallerApp], backend: FixedBackend, tmp_path: Path
) -> None:
    install_dir = tmp_path / "install"
    (install_dir / "state" / "logs").mkdir(parents=True)
    secret = "sk-ant-bundle-secret-0123456789"
    (install_dir / "state" / "logs" / "apply-x.log").write_text(f"key={secret}\n")
    backend.fail_at = "verification"
    app = make_app(first_step="install")
    app.state.draft = {"version": 1, "target": "development", "install_dir": str(install_dir)}
    app.state.plan_steps = list(STEPS)
    app.state.secrets = {"anthropic_api_key": secret}
    bundle = tmp_path / SUPPORT_BUNDLE_NAME
    async with app.run_test() as pilot:
        await wait_for_screen(pilot, "failure")
        await pilot.press("s")
        await wait_until(pilot, bundle.exists, timeout=60)
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    with tarfile.open(bundle, "r:gz") as archive:
        members = {
            m.name.split("/", 1)[1]: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive
            if m.isfile()
        }
    assert members["logs/apply-x.log"] == b"key=[REDACTED]\n"
    assert json.loads(members["answers.json"])["install_dir"] == str(install_dir)
    assert all(secret.encode() not in data for data in members.values())
