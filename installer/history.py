"""``state/history.jsonl``: one line per install, upgrade, rollback, restore and uninstall.

Each line is one JSON object (:class:`HistoryEntry`): what was done (``kind``), from which
release to which, when it started and how long it took, how it ended (the exit code and the
run's status), the backup archive it relied on (or null) and, for an upgrade that skipped
a required stop with ``--force-path``, the operator's reason.

Appending is crash-safe without a rewrite: the file is opened with ``O_APPEND``, the whole
line goes out in one ``write`` and is ``fsync``-ed before the command reports. A machine
that dies mid-write can leave at most a torn last line; :func:`read_history` skips a line
that does not parse, and the next append starts on a fresh line, so one torn line never
hides the entries around it.

::

    append_entry(state.history, HistoryEntry.finished("upgrade", "1.0.0", "2.0.0", ...))
    for entry in read_history(state.history)[-5:]: ...
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from installer.statedir import StateDir, StateWriteError, read_json

HISTORY_FILE = "history.jsonl"
HistoryKind = Literal["install", "upgrade", "reconfigure", "rollback", "restore", "uninstall"]
KINDS: tuple[str, ...] = ("install", "upgrade", "reconfigure", "rollback", "restore", "uninstall")


def history_path(state: StateDir) -> Path:
    return state.path / HISTORY_FILE


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the history (every field is written, null when unknown)."""

    kind: str
    from_release: str | None
    to_release: str | None
    started_at: str
    duration_seconds: float
    exit_code: int
    outcome: str  # finished | failed | rolled_back | interrupted | rollback_failed | kept | purged
    backup: str | None = None  # the archive this operation relied on
    forced_path: str | None = None  # the --force-path reason, when a required stop was skipped
    run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "release": {"from": self.from_release, "to": self.to_release},
            "started_at": self.started_at,
            "duration_seconds": round(self.duration_seconds, 3),
            "exit_code": self.exit_code,
            "outcome": self.outcome,
            "backup": self.backup,
            "forced_path": self.forced_path,
            "run_id": self.run_id,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        release = data.get("release") or {}
        return cls(
            kind=str(data["kind"]),
            from_release=release.get("from"),
            to_release=release.get("to"),
            started_at=str(data.get("started_at") or ""),
            duration_seconds=float(data.get("duration_seconds") or 0.0),
            exit_code=int(data.get("exit_code") or 0),
            outcome=str(data.get("outcome") or ""),
            backup=data.get("backup"),
            forced_path=data.get("forced_path"),
            run_id=data.get("run_id"),
            details=dict(data.get("details") or {}),
        )

    def describe(self) -> str:
        """One line for ``status``: when, what, which releases, how it ended."""
        if self.kind == "upgrade" or (self.from_release and self.from_release != self.to_release):
            releases = f"{self.from_release or '-'} -> {self.to_release or '-'}"
        else:
            releases = self.to_release or self.from_release or "-"
        text = f"{self.started_at}  {self.kind:<11} {releases}  {self.outcome}"
        text += f" (exit {self.exit_code}), {self.duration_seconds:.0f}s"
        if self.backup:
            text += f", backup {Path(self.backup).name}"
        if self.forced_path:
            text += f", path forced: {self.forced_path}"
        return text


def append_entry(path: Path, entry: HistoryEntry) -> None:
    """Append ``entry`` as one line: ``O_APPEND``, one ``write``, ``fsync``.

    When the file ends in a torn line (a crash mid-append), the new line starts after a
    newline so that it parses on its own.
    """
    line = json.dumps(entry.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
    data = line.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and _last_byte(path, size) != b"\n":
                data = b"\n" + data
            written = os.write(fd, data)
            if written != len(data):  # a full disk: never leave half a line behind silently
                raise OSError(28, "No space left on device")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise StateWriteError(path, e) from e


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1)


def read_history(path: Path) -> list[HistoryEntry]:
    """Every entry that parses, oldest first (a torn or foreign line is skipped)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    entries: list[HistoryEntry] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            data = json.loads(line)
            if isinstance(data, dict) and data.get("kind") in KINDS:
                entries.append(HistoryEntry.from_dict(data))
    return entries


def installed_release(state: StateDir) -> str | None:
    """The release ``result.json`` says is installed (None: nothing installed)."""
    record = read_json(state.result)
    if not isinstance(record, dict) or record.get("status") != "installed":
        return None
    version = (record.get("release") or {}).get("version")
    return str(version) if version else None


def outcome_name(status: str, exit_code: int) -> str:
    """The runner's outcome status in history's words."""
    if status == "failed" and exit_code == 1:
        return "rolled_back"
    return status


def record_run(
    state: StateDir,
    *,
    before: str | None,
    after: str,
    outcome: Any,
    started_at: str,
    duration: float,
    kind: str | None = None,
    backup: str | None = None,
    forced_path: str | None = None,
    details: dict[str, Any] | None = None,
) -> HistoryEntry | None:
    """Append the entry for a runner's run (``outcome``: its :class:`RunOutcome`).

    ``kind`` defaults to what the run was: ``install`` with nothing installed before,
    ``upgrade`` when the release changes, else ``reconfigure``. A run that was refused
    before it started (the lock was held, say), or a re-apply that changed nothing, is
    not history.
    """
    if outcome.status == "refused":
        return None
    if kind is None:
        if outcome.status == "finished" and not outcome.changed_steps and before == after:
            return None
        kind = "install" if before is None else ("upgrade" if before != after else "reconfigure")
    entry = HistoryEntry(
        kind=kind,
        from_release=before,
        to_release=after,
        started_at=started_at,
        duration_seconds=duration,
        exit_code=int(outcome.exit_code),
        outcome=outcome_name(str(outcome.status), int(outcome.exit_code)),
        backup=backup,
        forced_path=forced_path,
        run_id=outcome.run_id,
        details=details or {},
    )
    append_entry(history_path(state), entry)
    return entry


class HistoryRecorder:
    """Notes the installed release and the time before a run, and appends its entry after.

    ``apply`` (and ``upgrade``) wrap a runner with it::

        recorder = HistoryRecorder(plan.state, target.release)
        ...  # run
        recorder.finished(runner.outcome)

    A history that cannot be written is reported as a warning on standard error: the
    installation itself already succeeded or failed, and its exit code says which.
    """

    def __init__(
        self,
        state: StateDir,
        release: Any,
        *,
        kind: str | None = None,
        backup: str | None = None,
        forced_path: str | None = None,
    ) -> None:
        import time

        self.state = state
        self.target_release = str(getattr(release, "version", release) or "")
        self.before = installed_release(state)
        self.kind = kind
        self.backup = backup
        self.forced_path = forced_path
        self.started_at = utc_now()
        self._started = time.monotonic()
        self.details: dict[str, Any] = {}

    def finished(self, outcome: Any) -> HistoryEntry | None:
        import sys
        import time

        try:
            return record_run(
                self.state,
                before=self.before,
                after=self.target_release,
                outcome=outcome,
                started_at=self.started_at,
                duration=time.monotonic() - self._started,
                kind=self.kind,
                backup=self.backup,
                forced_path=self.forced_path,
                details=self.details,
            )
        except StateWriteError as e:
            sys.stderr.write(f"warning: the history was not written: {e.message}\n")
            return None


def last_backup(backup_directory: Path) -> dict[str, Any] | None:
    """The newest archive ``backup list`` shows there (None: there is none)."""
    from installer.backup.catalog import list_archives

    entries = list_archives(backup_directory)
    if not entries:
        return None
    entry = entries[0]
    return {
        "archive": str(entry.path),
        "created": entry.created,
        "release": entry.release,
        "size": entry.size,
        "verified": entry.verified is not None,
    }


def lifecycle_summary(state: StateDir, backup_directory: Path, count: int = 5) -> dict[str, Any]:
    """What ``status`` adds about the installation's life: last backup, last entries, and
    an upgrade that was interrupted (killed) and is not finished."""
    from installer.upgrade_pending import PendingUpgrade

    pending = PendingUpgrade.load(state)
    return {
        "last_backup": last_backup(backup_directory),
        "history": [e.to_dict() for e in read_history(history_path(state))[-count:]],
        "interrupted_upgrade": (
            {
                "from": pending.from_release,
                "to": pending.to_release,
                "started_at": pending.started_at,
                "phase": pending.phase,
                "backup": pending.archive,
            }
            if pending is not None
            else None
        ),
    }


def print_lifecycle(console: Any, data: dict[str, Any]) -> None:
    """The last backup and the last history entries, as ``status`` prints them."""
    backup = data.get("last_backup")
    if backup:
        verified = "verified" if backup.get("verified") else "NOT verified"
        console.print(f"last backup: {backup['archive']} ({backup['created']}, {verified})")
    else:
        console.print("last backup: none")
    interrupted = data.get("interrupted_upgrade")
    if interrupted:
        console.print(
            f"interrupted upgrade: {interrupted['from']} -> {interrupted['to']} (started "
            f"{interrupted['started_at']}): run `codequal-installer upgrade --to "
            f"{interrupted['to']}` again to finish it, or `codequal-installer rollback`",
            markup=False,
        )
    entries = data.get("history") or []
    if entries:
        console.print("history (newest last):")
        for raw in entries:
            console.print("  " + HistoryEntry.from_dict(raw).describe(), markup=False)
