"""state/history.jsonl: appended whole, read back tolerantly, recorded for each kind of run."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from installer.history import (
    HistoryEntry,
    HistoryRecorder,
    append_entry,
    history_path,
    read_history,
    record_run,
)
from installer.runner import RunOutcome
from installer.statedir import StateDir, StateWriteError, atomic_write_json


def _entry(kind: str = "install", to: str = "1.0.0", **extra: object) -> HistoryEntry:
    values: dict[str, object] = {
        "kind": kind,
        "from_release": None,
        "to_release": to,
        "started_at": "2026-12-04T17:00:00Z",
        "duration_seconds": 12.5,
        "exit_code": 0,
        "outcome": "finished",
    }
    values.update(extra)
    return HistoryEntry(**values)  # type: ignore[arg-type]


def test_each_entry_is_one_json_line_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.jsonl"
    append_entry(path, _entry())
    append_entry(
        path,
        _entry(
            "upgrade",
            "3.0.0",
            from_release="1.0.0",
            backup="/b/x.cqbackup",
            forced_path="vendor said so",
        ),
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    second = json.loads(lines[1])
    assert second == {
        "kind": "upgrade",
        "release": {"from": "1.0.0", "to": "3.0.0"},
        "started_at": "2026-12-04T17:00:00Z",
        "duration_seconds": 12.5,
        "exit_code": 0,
        "outcome": "finished",
        "backup": "/b/x.cqbackup",
        "forced_path": "vendor said so",
        "run_id": None,
        "details": {},
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [e.kind for e in read_history(path)] == ["install", "upgrade"]
    assert read_history(path)[1].forced_path == "vendor said so"


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.jsonl"
    append_entry(path, _entry(to="1.0.0"))
    with open(path, "ab") as handle:  # what a crash in the middle of a write leaves
        handle.write(b'{"kind":"upgrade","release":{"from":"1.0')
    assert [e.to_release for e in read_history(path)] == ["1.0.0"]
    append_entry(path, _entry("uninstall", to="1.0.0", outcome="kept"))
    entries = read_history(path)
    assert [(e.kind, e.outcome) for e in entries] == [
        ("install", "finished"),
        ("uninstall", "kept"),
    ]
    assert path.read_bytes().endswith(b"}\n")


def test_missing_and_foreign_lines_read_as_nothing(tmp_path: Path) -> None:
    assert read_history(tmp_path / "none.jsonl") == []
    path = tmp_path / "history.jsonl"
    path.write_text('["not", "an entry"]\n{"kind": "dance"}\n\n')
    assert read_history(path) == []


def test_append_is_one_write_with_o_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "history.jsonl"
    flags: list[int] = []
    writes: list[bytes] = []
    fsyncs: list[int] = []
    real_open, real_write, real_fsync = os.open, os.write, os.fsync

    def spy_open(p: object, f: int, *a: object) -> int:
        flags.append(f)
        return real_open(p, f, *a)  # type: ignore[arg-type]

    def spy_write(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    def spy_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "write", spy_write)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    append_entry(path, _entry())
    assert flags and flags[0] & os.O_APPEND
    assert len(writes) == 1 and writes[0].endswith(b"\n") and writes[0].count(b"\n") == 1
    assert fsyncs


def test_an_unwritable_history_is_a_state_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(StateWriteError):
        append_entry(blocker / "history.jsonl", _entry())


def _installed(state: StateDir, version: str) -> None:
    atomic_write_json(state.result, {"status": "installed", "release": {"version": version}})


def test_apply_runs_are_recorded_as_install_upgrade_or_reconfigure(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    path = history_path(state)

    recorder = HistoryRecorder(state, "1.0.0")
    assert recorder.before is None
    recorder.finished(RunOutcome(0, "finished", "r1", changed_steps=["services"]))
    _installed(state, "1.0.0")

    # The same release again, nothing changed: not history.
    HistoryRecorder(state, "1.0.0").finished(RunOutcome(0, "finished", "r2"))
    # Changed answers, same release.
    HistoryRecorder(state, "1.0.0").finished(
        RunOutcome(0, "finished", "r3", changed_steps=["configuration"])
    )
    # A newer release that failed and was rolled back.
    HistoryRecorder(state, "2.0.0").finished(RunOutcome(1, "failed", "r4"))
    # Refused (lock held): not history.
    HistoryRecorder(state, "2.0.0").finished(RunOutcome(2, "refused", None))

    entries = read_history(path)
    assert [(e.kind, e.from_release, e.to_release, e.outcome, e.exit_code) for e in entries] == [
        ("install", None, "1.0.0", "finished", 0),
        ("reconfigure", "1.0.0", "1.0.0", "finished", 0),
        ("upgrade", "1.0.0", "2.0.0", "rolled_back", 1),
    ]
    assert all(e.duration_seconds >= 0 and e.started_at.endswith("Z") for e in entries)
    assert [e.run_id for e in entries] == ["r1", "r3", "r4"]


def test_an_explicit_kind_and_backup_are_kept(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    _installed(state, "1.0.0")
    entry = record_run(
        state,
        before="1.0.0",
        after="3.0.0",
        outcome=RunOutcome(0, "finished", "r9", changed_steps=["database"]),
        started_at="2026-12-04T17:00:00Z",
        duration=3.0,
        kind="upgrade",
        backup="/backups/a.cqbackup",
        forced_path="tested by the vendor",
    )
    assert entry is not None
    assert read_history(history_path(state)) == [entry]
    assert "path forced: tested by the vendor" in entry.describe()
    assert "1.0.0 -> 3.0.0" in entry.describe()


def test_status_carries_the_last_five_entries_and_the_last_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    from installer.status import installation_status

    state = StateDir.for_install_dir(tmp_path)
    for index in range(7):
        append_entry(history_path(state), _entry(to=f"1.0.{index}"))
    status = installation_status(tmp_path).to_dict()
    assert [e["release"]["to"] for e in status["history"]] == [f"1.0.{i}" for i in range(2, 7)]
    if "installer.backup" not in sys.modules:
        try:
            import installer.backup  # noqa: F401
        except ImportError:
            assert status["last_backup"] is None

    # With backup support (issue 14's catalog), the newest archive and whether it verified.
    class Entry:
        path = tmp_path / "backups" / "codequal-20261204T170000Z-1.0.6.cqbackup"
        created, release, size, verified = "2026-12-04T17:00:00Z", "1.0.6", 123, {"mode": "quick"}

    catalog = types.ModuleType("installer.backup.catalog")
    catalog.list_archives = lambda directory: [Entry()] if directory == tmp_path / "backups" else []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "installer.backup.catalog", catalog)
    status = installation_status(tmp_path).to_dict()
    assert status["last_backup"] == {
        "archive": str(Entry.path),
        "created": "2026-12-04T17:00:00Z",
        "release": "1.0.6",
        "size": 123,
        "verified": True,
    }
