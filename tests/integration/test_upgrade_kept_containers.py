"""An upgrade that keeps the application's containers, on the real Docker Engine.

1.5.0-test runs 1.0.0-test's images with the same service configuration (only the migration
changes), so the upgrade migrates and keeps codequal and deepwiki as they are. The
pre-upgrade backup has just paused and unpaused them for its snapshot, and the Engine reports
a container it unpaused "unhealthy" until its next probe (no probe failed). Verification
used to fail on that status (every run on a quiet machine, about every other one under load);
it waits for the probe now. The decision itself is covered without timing by
``tests/unit/test_compose_health_wait.py``.
"""

from __future__ import annotations

import json
import urllib.request

from tests.integration.apply_support import Install


def test_an_upgrade_that_keeps_the_containers_passes_verification(install: Install) -> None:
    answers = install.answers("development")
    first = install.apply(answers)
    assert first.exit_code == 0, first.describe()
    before = {s: [c.id for c in found] for s, found in install.containers_by_service().items()}

    upgrade = install.run(
        "upgrade", "--answers", str(answers), "--to", "1.5.0-test", "--yes", "--json"
    )  # fmt: skip
    assert upgrade.exit_code == 0, upgrade.describe()
    # The case at hand: the backup paused the application, the services step kept it.
    assert any("paused 2 application containers" in m for m in upgrade.step_messages("snapshot"))
    skipped = [e for e in upgrade.of_type("step.skipped") if e.get("step") == "services"]
    assert skipped and "up to date" in skipped[0]["message"], upgrade.describe()
    assert not upgrade.of_type("rollback.started")
    assert upgrade.step_messages("verification")[-1].startswith("Verification: done")

    after = {s: [c.id for c in found] for s, found in install.containers_by_service().items()}
    assert after["codequal"] == before["codequal"] and after["deepwiki"] == before["deepwiki"]
    result = install.result()
    assert (result["release"]["version"], result["schema_version"]) == ("1.5.0-test", "1.5")
    with urllib.request.urlopen("http://127.0.0.1:3000/health", timeout=10) as response:
        health = json.loads(response.read())
    assert health["database"]["schema_version"] == "1.5"
