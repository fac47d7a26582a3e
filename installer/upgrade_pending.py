"""An upgrade between its pre-upgrade backup and its end: ``state/upgrade-pending.json``.

:mod:`installer.upgrade` writes it when the upgrade's run starts and removes it when the
upgrade (or its data rollback) is over. Found later, it means the process was killed: a
rerun of ``upgrade`` finishes what was under way, ``rollback`` returns to the release
before it with the pre-upgrade backup, and ``apply`` runs only for the release the upgrade
was going to (anything else would leave a half-migrated database as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.errors import UsageError
from installer.statedir import StateDir, atomic_write_json, read_json

if TYPE_CHECKING:
    from installer.answers import AnswerFile

PENDING_UPGRADE = "upgrade-pending.json"


@dataclass
class PendingUpgrade:
    """``state/upgrade-pending.json``: written when an upgrade's run starts, removed when
    the upgrade (or its rollback) is over. Found by a later ``upgrade`` or ``rollback``, it
    means the process was killed: ``phase`` says whether it was upgrading or already
    restoring the pre-upgrade backup."""

    from_release: str
    to_release: str
    archive: str | None
    started_at: str
    phase: str = "upgrading"  # upgrading | restoring
    forced_path: str | None = None
    path: list[str] | None = None

    @staticmethod
    def file(state: StateDir) -> Path:
        return state.path / PENDING_UPGRADE

    @classmethod
    def load(cls, state: StateDir) -> PendingUpgrade | None:
        data = read_json(cls.file(state))
        if not isinstance(data, dict) or not data.get("from") or not data.get("to"):
            return None
        path = data.get("path")
        return cls(
            from_release=str(data["from"]),
            to_release=str(data["to"]),
            archive=str(data["archive"]) if data.get("archive") else None,
            started_at=str(data.get("started_at") or ""),
            phase=str(data.get("phase") or "upgrading"),
            forced_path=data.get("forced_path"),
            path=[str(p) for p in path] if isinstance(path, list) else None,
        )

    def save(self, state: StateDir) -> None:
        state.ensure()
        atomic_write_json(
            self.file(state),
            {
                "from": self.from_release,
                "to": self.to_release,
                "archive": self.archive,
                "started_at": self.started_at,
                "phase": self.phase,
                "forced_path": self.forced_path,
                "path": self.path,
            },
            0o600,
        )

    @classmethod
    def clear(cls, state: StateDir) -> None:
        cls.file(state).unlink(missing_ok=True)


def check_apply_over_pending(answers: AnswerFile) -> PendingUpgrade | None:
    """``apply`` over an upgrade that was killed: allowed only for the release it was
    upgrading to (the run then resumes and finishes it); any other release is refused
    (exit 2), since it would leave the half-migrated database as it is."""
    if not answers.is_compose:
        return None
    pending = PendingUpgrade.load(StateDir.for_install_dir(answers.install_dir))
    if pending is None or answers.release.version == pending.to_release:
        return pending
    raise UsageError(
        f"the upgrade {pending.from_release} -> {pending.to_release} (started "
        f"{pending.started_at}) was interrupted; applying {answers.release.version} now would "
        "leave its half-migrated database as it is",
        hint=f"finish it with `codequal-installer upgrade --to {pending.to_release}`, or return "
        f"to {pending.from_release} with its data with `codequal-installer rollback`",
    )


def settle_apply_over_pending(pending: PendingUpgrade | None, outcome: Any, state: Any) -> None:
    """The ``apply`` that finished an interrupted upgrade closes it."""
    if pending is not None and getattr(outcome, "status", None) == "finished":
        PendingUpgrade.clear(state)
