"""The rollback's decisions before anything changes, the downtime clock and the record of
an upgrade in progress (the restores themselves: tests/integration/test_upgrade_data.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from installer import rollback
from installer.answers import AnswerFile
from installer.cli import main
from installer.credentials import LoadedSecrets, Secrets
from installer.errors import UsageError
from installer.events import Event
from installer.history import HistoryEntry, append_entry, history_path
from installer.statedir import StateDir
from installer.upgrade_pending import PendingUpgrade, check_apply_over_pending


@pytest.fixture
def answers_file(tmp_path: Path, test_releases_dir: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "target": "development",
                "install_dir": str(tmp_path / "install"),
                "release": {"version": "2.0.0-test"},
            }
        )
    )
    return path


@pytest.fixture
def answers(answers_file: Path) -> AnswerFile:
    from installer.validation import load_answers

    return load_answers(str(answers_file))


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / "install" / "state")
    state.ensure()
    return state


def _installed(state: StateDir, version: str) -> None:
    state.result.write_text(json.dumps({"status": "installed", "release": {"version": version}}))


def _upgrade_entry(state: StateDir, archive: Path | None, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "kind": "upgrade",
        "from_release": "1.0.0-test",
        "to_release": "2.0.0-test",
        "started_at": "2026-12-04T20:00:00Z",
        "duration_seconds": 30.0,
        "exit_code": 0,
        "outcome": "finished",
        "backup": str(archive) if archive else None,
    }
    fields.update(overrides)
    append_entry(history_path(state), HistoryEntry(**fields))


def _archive(state: StateDir, *, verified: bool) -> Path:
    archive = state.path.parent / "backups" / "codequal-x-20261204T200000Z-1.0.0-test.cqbackup"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(b"age-encrypted bytes")
    (state.path / rollback.ROLLBACK_IDENTITY).write_text("AGE-SECRET-KEY-1TEST\n")
    if verified:
        stat = archive.stat()
        record = {"archive": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}}
        archive.with_name(archive.name + ".verified.json").write_text(json.dumps(record))
    return archive


def _preview(answers: AnswerFile) -> rollback.RollbackPreview:
    return rollback.rollback_preview(answers, LoadedSecrets(Secrets()))


def test_nothing_installed_or_no_upgrade_is_refused_with_exit_2(
    answers: AnswerFile, state: StateDir
) -> None:
    nothing = _preview(answers)
    assert (nothing.allowed, nothing.exit_code) == (False, 2)
    assert "nothing is installed" in nothing.problems[0]

    _installed(state, "2.0.0-test")
    never = _preview(answers)
    assert never.exit_code == 2 and "no upgrade to undo" in never.problems[0]

    # An upgrade that a later rollback (or restore) undid is not undone twice.
    archive = _archive(state, verified=True)
    _upgrade_entry(state, archive)
    _upgrade_entry(
        state, archive, kind="rollback", from_release="2.0.0-test", to_release="1.0.0-test"
    )
    twice = _preview(answers)
    assert twice.exit_code == 2 and "no upgrade to undo" in twice.problems[0]


def test_a_missing_archive_exits_2_and_an_unverified_one_exits_4(
    answers: AnswerFile, state: StateDir
) -> None:
    _installed(state, "2.0.0-test")
    archive = _archive(state, verified=False)
    _upgrade_entry(state, archive)
    unverified = _preview(answers)
    assert unverified.exit_code == 4 and "is not verified" in unverified.problems[0]
    assert unverified.previous == "1.0.0-test" and unverified.archive == archive

    archive.unlink()
    missing = _preview(answers)
    assert missing.exit_code == 2 and "is missing" in missing.problems[0]

    _upgrade_entry(state, None)
    none = _preview(answers)
    assert none.exit_code == 2 and "made no backup" in none.problems[0]


def test_a_changed_archive_is_no_longer_verified(answers: AnswerFile, state: StateDir) -> None:
    _installed(state, "2.0.0-test")
    archive = _archive(state, verified=True)
    _upgrade_entry(state, archive)
    archive.write_bytes(b"age-encrypted bytes, then changed")
    assert _preview(answers).exit_code == 4


def test_the_preview_says_what_is_lost_table_by_table(
    answers: AnswerFile, state: StateDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    _installed(state, "2.0.0-test")
    archive = _archive(state, verified=True)
    _upgrade_entry(state, archive)
    tables = (
        rollback.TableLoss("public.items", 2, 5, changed=True),
        rollback.TableLoss("public.item_tags", None, 3),
        rollback.TableLoss("public.schema_migrations", 1, 1),
    )
    monkeypatch.setattr(rollback, "_table_losses", lambda *args: (tables, ()))
    preview = _preview(answers)
    assert preview.allowed and preview.verified
    assert preview.seconds_since_upgrade is not None and preview.seconds_since_upgrade > 0
    lines = preview.loss_lines()
    assert lines[0].startswith("CodeQual 2.0.0-test goes back to 1.0.0-test")
    assert archive.name in lines[0]
    assert "  table public.items: 3 rows written since the upgrade (2 -> 5), lost" in lines
    assert "  table public.item_tags: new since the upgrade, 3 rows, removed" in lines
    assert not any("schema_migrations" in line for line in lines)  # unchanged: not a loss
    document = preview.to_dict()
    assert document["tables"][0]["written_since"] == 3 and document["allowed"] is True
    json.dumps(document)


def test_an_interrupted_upgrade_is_what_rollback_returns_from(
    answers: AnswerFile, state: StateDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    _installed(state, "1.0.0-test")  # the upgrade never finished
    archive = _archive(state, verified=True)
    PendingUpgrade("1.0.0-test", "2.0.0-test", str(archive), "2026-12-04T20:00:00Z").save(state)
    monkeypatch.setattr(rollback, "_table_losses", lambda *args: ((), ()))
    preview = _preview(answers)
    assert preview.allowed and preview.interrupted_upgrade
    assert (preview.installed, preview.previous) == ("2.0.0-test", "1.0.0-test")
    assert preview.loss_lines()[0].startswith(
        "the upgrade 1.0.0-test -> 2.0.0-test was interrupted"
    )


def test_the_pending_upgrade_record_is_private_and_round_trips(state: StateDir) -> None:
    pending = PendingUpgrade("1.0.0-test", "2.0.0-test", "/b/x.cqbackup", "T", path=["a", "b"])
    pending.save(state)
    assert (PendingUpgrade.file(state).stat().st_mode & 0o777) == 0o600
    assert PendingUpgrade.load(state) == pending
    PendingUpgrade.clear(state)
    assert PendingUpgrade.load(state) is None


def test_apply_over_an_interrupted_upgrade_runs_only_for_its_release(
    answers: AnswerFile, state: StateDir
) -> None:
    assert check_apply_over_pending(answers) is None
    PendingUpgrade("1.0.0-test", "2.0.0-test", None, "T").save(state)
    assert check_apply_over_pending(answers) is not None  # the answers ask for 2.0.0-test
    older = rollback.with_release(answers, "1.0.0-test")
    with pytest.raises(UsageError) as refused:
        check_apply_over_pending(older)
    assert "was interrupted" in refused.value.message
    assert "upgrade --to 2.0.0-test" in str(refused.value.hint)


def test_the_downtime_runs_from_the_services_stopping_to_the_last_verification() -> None:
    clock = rollback.DowntimeClock()
    clock.observe(Event("step.finished", step="verification"))  # before anything stopped
    assert clock.seconds == 0.0 and "did not stop" in clock.sentence()
    clock.observe(Event("step.started", step="services"))
    assert clock.seconds is None and "still down" in clock.sentence()
    clock.observe(Event("step.failed", step="verification"))
    clock.observe(Event("step.started", step="restore-volumes"))  # stopped again: still down
    down_at = clock.down_at
    clock.observe(Event("step.finished", step="verification"))
    assert clock.down_at == down_at  # measured from the first stop
    assert clock.seconds is not None and clock.seconds >= 0
    assert clock.to_dict()["down_at"] and clock.to_dict()["up_at"]
    assert "was down for" in clock.sentence()


def test_rollback_with_nothing_to_roll_back_exits_2_in_both_forms(
    answers_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rollback", "--answers", str(answers_file), "--yes"])
    assert exited.value.code == 2
    assert "nothing is installed here to roll back" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["rollback", "--answers", str(answers_file), "--yes", "--json"])
    assert exited.value.code == 2
    event = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (event["type"], event["exit_code"]) == ("run.failed", 2)


def test_durations_read_as_an_operator_says_them() -> None:
    assert rollback.duration_text(42) == "42s"
    assert rollback.duration_text(303) == "5 min 3 s"
    assert rollback.duration_text(7800) == "2 h 10 min"
    assert rollback.duration_text(3 * 86400 + 4 * 3600) == "3 days 4 h"


def test_status_names_an_interrupted_upgrade(state: StateDir) -> None:
    from installer.history import lifecycle_summary, print_lifecycle

    assert lifecycle_summary(state, state.path / "none")["interrupted_upgrade"] is None
    PendingUpgrade("1.0.0-test", "2.0.0-test", None, "2026-12-04T20:00:00Z").save(state)
    data = lifecycle_summary(state, state.path / "none")
    assert data["interrupted_upgrade"]["to"] == "2.0.0-test"
    printed: list[str] = []

    class Console:
        def print(self, text: str, **kwargs: Any) -> None:
            printed.append(text)

    print_lifecycle(Console(), data)
    assert any("interrupted upgrade: 1.0.0-test -> 2.0.0-test" in line for line in printed)
    assert any("upgrade --to 2.0.0-test` again" in line for line in printed)
