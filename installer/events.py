"""Typed events: what the runner tells its front ends while it works.

The runner yields :class:`Event` objects; the command line renders them with rich or
writes them as NDJSON (``--json``), the wizard streams them into its log view. An event's
``message`` passes through the run's :class:`~installer.credentials.Redactor` before it
is emitted, so no front end ever sees a secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

EventType = Literal[
    "run.started",
    "step.started",
    "step.output",
    "step.progress",
    "step.finished",
    "step.skipped",
    "step.failed",
    "run.finished",
    "run.failed",
    # Added with the runner's rollback; front ends that do not know them may ignore them.
    "rollback.started",
    "step.rolled_back",
]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One thing that happened during a run.

    ``current``/``total``/``unit`` are set on ``step.progress``; ``exit_code`` on the final
    ``run.*`` event; ``data`` carries structured extras (a failed step's last log lines,
    the result file's path) that front ends may show.
    """

    type: EventType
    message: str = ""
    step: str | None = None
    current: float | None = None
    total: float | None = None
    unit: str | None = None
    exit_code: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ts": self.ts, "type": self.type, "step": self.step}
        out["message"] = self.message
        for key in ("current", "total", "unit", "exit_code"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.data:
            out["data"] = self.data
        return out

    def to_json(self) -> str:
        """One NDJSON line (without the newline)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)
