"""installer.manage: the upgrade and uninstall commands as event streams for a front end.

The streams must start with one ``run.started``, end with exactly one ``run.finished`` or
``run.failed`` carrying the command's exit code, turn the pre-upgrade backup's own run into
one step of the upgrade's, and report an error as events, never raise. The command's work
(:func:`installer.upgrade.perform_upgrade`, :func:`installer.uninstall.remove_compose`) is
replaced here by scripted stand-ins that talk through the same interfaces; the real runs
are in tests/integration/test_wizard_manage_tmux.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from installer import manage, upgrade
from installer.answers import AnswerFile
from installer.credentials import LoadedSecrets, Secrets
from installer.errors import PrerequisiteError
from installer.events import Event
from installer.runner import CancelToken
from installer.uninstall import Inventory, Item
from tests.support import TEST_RELEASES_DIR


@pytest.fixture
def answers(tmp_path: Path) -> AnswerFile:
    return AnswerFile.model_validate(
        {
            "version": 1,
            "target": "development",
            "install_dir": str(tmp_path / "install"),
            "release": {"version": "1.0.0-test"},
        }
    )


@pytest.fixture(autouse=True)
def _releases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))


SECRETS = LoadedSecrets(secrets=Secrets(), origin={})


def _finals(events: list[Event]) -> list[Event]:
    return [e for e in events if e.type in ("run.finished", "run.failed")]


def test_choices_are_the_known_releases_above_the_installed_one() -> None:
    choices = {c.version: c for c in manage.upgrade_choices("1.0.0-test")}
    assert "1.0.0-test" not in choices and "0.1.0" not in choices
    assert choices["2.0.0-test"].allowed and choices["2.0.0-test"].note == "direct"
    assert not choices["3.0.0-test"].allowed
    assert choices["3.0.0-test"].note == "required stop first: 1.5.0-test"
    above = [c.version for c in manage.upgrade_choices("2.0.0-test")]
    assert above[-1] == "3.0.0-test" and "1.5.0-test" not in above and "2.0.0-test" not in above


def test_preview_runs_the_commands_checks(
    answers: AnswerFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upgrade, "installed_version", lambda a: "1.0.0-test")
    monkeypatch.setattr(upgrade, "check_healthy", lambda a: "installation healthy")
    allowed = manage.upgrade_preview(answers, SECRETS, to="2.0.0-test")
    assert allowed.allowed and allowed.path == ["1.0.0-test", "2.0.0-test"]
    assert allowed.checks[:2] == ["installation healthy", "upgrade path: 1.0.0-test -> 2.0.0-test"]
    assert ("codequal", "codequal-test/standin:1", "codequal-test/standin:2") in allowed.images
    assert allowed.backup_directory == Path(answers.install_dir) / "backups"
    refused = manage.upgrade_preview(answers, SECRETS, to="3.0.0-test")
    assert not refused.allowed and refused.exit_code == 2
    assert "skips the required stop 1.5.0-test" in (refused.refusal or "")
    assert "1.0.0-test -> 1.5.0-test -> 3.0.0-test" in (refused.hint or "")

    def sick(a: AnswerFile) -> str:
        raise upgrade.UnhealthyInstallation("the installation is not healthy: codequal (exited)")

    monkeypatch.setattr(upgrade, "check_healthy", sick)
    unhealthy = manage.upgrade_preview(answers, SECRETS, to="2.0.0-test")
    assert unhealthy.exit_code == 3 and "codequal (exited)" in (unhealthy.refusal or "")
    assert manage.upgrade_preview(answers, SECRETS, to="1.0.0-test").up_to_date


def test_an_interrupted_upgrade_is_refused_until_finished(
    answers: AnswerFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upgrade, "installed_version", lambda a: "1.0.0-test")
    monkeypatch.setattr(upgrade, "check_healthy", lambda a: "installation healthy")
    state = Path(answers.install_dir) / "state"
    state.mkdir(parents=True)
    from installer.statedir import StateDir
    from installer.upgrade_pending import PendingUpgrade

    PendingUpgrade("1.0.0-test", "2.0.0-test", None, "2026-12-04T18:00:00Z").save(
        StateDir.for_install_dir(answers.install_dir)
    )
    preview = manage.upgrade_preview(answers, SECRETS, to="2.0.0-test")
    assert not preview.allowed and preview.exit_code == 2
    assert "was interrupted" in (preview.refusal or "")
    assert "upgrade --to 2.0.0-test" in (preview.hint or "")


def _scripted_upgrade(
    monkeypatch: pytest.MonkeyPatch, perform: Any, check: Any = "real"
) -> list[Any]:
    seen: list[Any] = []
    if check != "real":
        monkeypatch.setattr(upgrade, "check_upgrade", check)
    else:
        monkeypatch.setattr(upgrade, "installed_version", lambda a: "1.0.0-test")
        monkeypatch.setattr(upgrade, "check_healthy", lambda a: "installation healthy")

    def recorded(check: Any, loaded: Any, **kwargs: Any) -> int:
        seen.append((check, kwargs))
        return int(perform(kwargs["frontend"]))

    monkeypatch.setattr(upgrade, "perform_upgrade", recorded)
    return seen


def test_upgrade_stream_one_run_the_backup_as_a_step(
    answers: AnswerFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    def perform(frontend: upgrade.Frontend) -> int:
        backup = frontend.display("backup")
        backup.show(Event("run.started", "backup create"))
        backup.show(Event("step.started", "Copy the volumes", step="volumes"))
        backup.show(Event("step.progress", "copying", step="volumes", current=5, total=10))
        backup.show(Event("run.finished", "archive written", exit_code=0))
        backup.close()
        frontend.say("pre-upgrade backup /x.cqbackup (verified)")
        plan = frontend.display("upgrade")
        plan.show(Event("run.started", "apply 2.0.0-test", data={"steps": []}))
        plan.show(Event("step.started", "Migrate", step="database"))
        plan.show(Event("run.finished", "CodeQual 2.0.0-test is running", exit_code=0))
        plan.close()
        return 0

    seen = _scripted_upgrade(monkeypatch, perform)
    cancel = CancelToken()
    events = list(manage.upgrade_events(answers, SECRETS, to="2.0.0-test", cancel=cancel))
    assert [e.type for e in events].count("run.started") == 1 and events[0].type == "run.started"
    assert _finals(events) == [events[-1]] and events[-1].exit_code == 0
    backup = [e for e in events if e.step == manage.BACKUP_STEP]
    assert [e.type for e in backup] == [
        "step.started", "step.output", "step.progress", "step.finished", "step.output",
    ]  # fmt: skip
    assert backup[1].message == "volumes: Copy the volumes"
    assert any(e.message == "==> apply 2.0.0-test" for e in events)
    checks = [e.message for e in events if e.step == manage.CHECK_STEP]
    assert "upgrade path: 1.0.0-test -> 2.0.0-test" in checks
    ((check, kwargs),) = seen
    assert check.new_answers.release.version == "2.0.0-test"
    assert kwargs["frontend"].cancel is cancel and kwargs["bundle"] is None


def test_upgrade_stream_an_error_is_the_last_event(
    answers: AnswerFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    def perform(frontend: upgrade.Frontend) -> int:
        frontend.display("backup").show(Event("run.started", "backup create"))
        raise PrerequisiteError("the age program is not installed", hint="apt-get install age")

    _scripted_upgrade(monkeypatch, perform)
    events = list(manage.upgrade_events(answers, SECRETS, to="2.0.0-test", cancel=CancelToken()))
    assert _finals(events) == [events[-1]]
    assert events[-1].type == "run.failed" and events[-1].exit_code == 3
    assert events[-1].data["hint"] == "apt-get install age"
    assert events[-2].type == "step.failed" and events[-2].step == manage.BACKUP_STEP


def test_upgrade_stream_a_refused_check_changes_nothing(
    answers: AnswerFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _scripted_upgrade(monkeypatch, lambda frontend: 0)
    events = list(manage.upgrade_events(answers, SECRETS, to="3.0.0-test", cancel=CancelToken()))
    assert events[-1].type == "run.failed" and events[-1].exit_code == 2
    assert "skips the required stop 1.5.0-test" in events[-1].message
    assert seen == []


def test_uninstall_stream(
    answers: AnswerFile, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    inventory = Inventory(
        "development",
        answers.install_dir,
        [Item("container", "c1"), Item("volume", "v1", 10, data=True)],
        "1.0.0-test",
    )
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(manage, "_compose_inventory", lambda a: (inventory, {"f": 1}, "client"))

    def remove(answers: Any, inv: Any, found: Any, **kwargs: Any) -> list[str]:
        calls.append({"inventory": inv, "found": found, **kwargs})
        return ["container c1 removed", "volumes, backups, state and configuration kept"]

    import installer.uninstall

    monkeypatch.setattr(installer.uninstall, "remove_compose", remove)
    events = list(manage.uninstall_events(answers, purge=False, cancel=CancelToken()))
    assert events[0].type == "run.started" and _finals(events) == [events[-1]]
    assert events[-1].exit_code == 0
    assert "container c1 removed" in [e.message for e in events]
    assert "2 things found, 1 to remove" in [e.message for e in events]
    assert calls[0]["purge"] is False and calls[0]["client"] == "client"
    # Cancelled after the inventory: nothing is removed.
    cancel = CancelToken()
    cancel.cancel("stop")
    events = list(manage.uninstall_events(answers, purge=True, cancel=cancel))
    assert events[-1].type == "run.failed" and events[-1].exit_code == 130
    assert len(calls) == 1
    json.dumps([e.to_dict() for e in events])  # every event serialises
