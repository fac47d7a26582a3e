"""Acceptance 2: killing the installer (SIGKILL) during container deployment and during
database initialization, then running ``apply`` again, completes the install without
duplicate containers and without losing rows written before the kill."""

from __future__ import annotations

import signal
import time
from typing import Any

import psutil
import pytest

from tests.integration.apply_support import Install, one_container_per_service

pytestmark = pytest.mark.integration

SERVICES = {"codequal": 1, "deepwiki": 1, "nginx": 1, "postgres": 1}


def _output_of(step: str, text: str) -> Any:
    def matches(event: dict[str, Any]) -> bool:
        return (
            event.get("type") == "step.output"
            and event.get("step") == step
            and text in str(event.get("message"))
        )

    return matches


def _no_orphaned_children(install: Install, timeout: float = 20) -> list[str]:
    """Processes still working on this install after the installer died (should be none)."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(install.install_dir) in cmdline and "pytest" not in cmdline:
                left.append(cmdline)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _assert_resumed(run: Any, killed_step: str) -> None:
    started = run.of_type("run.started")[0]
    assert started["data"]["resumed"] is True
    assert started["data"]["resume_at"] == killed_step
    assert started["data"].get("stale_lock_pid"), "the dead run's lock was not noticed"
    done_before = {e["step"] for e in run.of_type("step.skipped") if e["data"].get("resumed")}
    assert "configuration" in done_before


def test_sigkill_during_container_deployment_then_apply_completes(install: Install) -> None:
    answers = install.answers("production")
    killed = install.apply_until(answers, _output_of("containers", "postgres-1  Creat"))
    assert killed.exit_code == -signal.SIGKILL
    # the journal says where the run died; no compose command keeps running unseen
    journal = install.journal()
    assert journal["status"] == "running"
    assert journal["steps"]["containers"]["status"] == "running"
    assert _no_orphaned_children(install) == []

    resumed = install.apply(answers)
    assert resumed.exit_code == 0, resumed.describe()
    _assert_resumed(resumed, "containers")
    assert one_container_per_service(install) == SERVICES
    status, body = install.https_get("/health")
    assert status == 200 and body["database"]["migrated"] is True
    assert install.journal()["status"] == "finished"


def test_sigkill_during_database_initialization_keeps_the_rows(install: Install) -> None:
    first = install.apply(install.answers("production"))
    assert first.exit_code == 0, first.describe()
    status, stored = install.https_post("/items", "written before the upgrade")
    assert status == 201, stored

    upgrade = install.answers("production", release={"version": "2.0.0-test"})
    killed = install.apply_until(upgrade, _output_of("database", "migrating to schema version 2"))
    assert killed.exit_code == -signal.SIGKILL
    assert install.journal()["steps"]["database"]["status"] == "running"
    assert _no_orphaned_children(install) == []

    resumed = install.apply(upgrade)
    assert resumed.exit_code == 0, resumed.describe()
    _assert_resumed(resumed, "database")
    # no duplicates: one container per service, and no one-off migration container left
    assert one_container_per_service(install) == SERVICES
    status, body = install.https_get("/items")
    assert status == 200
    assert [item["body"] for item in body["items"]] == ["written before the upgrade"]
    assert (
        install.psql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")
        == "1,2"
    )
    status, health = install.https_get("/health")
    assert health["version"] == "2.0.0-test" and health["database"]["schema_version"] == "2"
    assert install.result()["release"]["version"] == "2.0.0-test"
    assert install.result()["schema_version"] == "2"


def test_sigkill_during_a_first_database_initialization_then_apply_completes(
    install: Install,
) -> None:
    answers = install.answers("production")
    killed = install.apply_until(answers, _output_of("database", "PostgreSQL is ready"))
    assert killed.exit_code == -signal.SIGKILL
    resumed = install.apply(answers)
    assert resumed.exit_code == 0, resumed.describe()
    _assert_resumed(resumed, "database")
    assert one_container_per_service(install) == SERVICES
    assert install.psql("SELECT count(*) FROM schema_migrations") == "1"
