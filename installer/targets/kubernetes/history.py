"""A Kubernetes installation's history and last pre-upgrade dump, as ``status`` shows them.

The history (``history.jsonl``) of a Kubernetes install lives in its local state directory
(:func:`~installer.targets.kubernetes.session.default_root`), beside the journal and the
logs; the dumps themselves are in the cluster, in the claim the history names
(:mod:`~installer.targets.kubernetes.lifecycle`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from installer.statedir import StateDir
from installer.targets.kubernetes.session import default_root

if TYPE_CHECKING:
    from installer.answers import AnswerFile


def local_state(answers: AnswerFile) -> StateDir:
    """The install's local state directory (the runner's, for every Kubernetes run)."""
    return StateDir(default_root(answers) / "state")


def kubernetes_lifecycle(answers: AnswerFile, count: int = 5) -> dict[str, Any]:
    """What ``status`` adds about the installation's life (the Compose status's keys): the
    last backup (the newest pre-upgrade dump the history records) and the last entries."""
    from installer.history import history_path, read_history

    entries = read_history(history_path(local_state(answers)))
    last: dict[str, Any] | None = None
    for entry in reversed(entries):
        dump = (entry.details or {}).get("dump")
        if entry.backup and isinstance(dump, dict):
            last = {
                "archive": entry.backup,
                "created": entry.started_at,
                "release": entry.from_release,
                "size": dump.get("size"),
                "verified": bool(dump.get("sha256")),
            }
            break
    return {"last_backup": last, "history": [e.to_dict() for e in entries[-count:]]}
