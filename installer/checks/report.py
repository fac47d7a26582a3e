"""The verdicts: one :class:`CheckResult` per check, gathered in a :class:`PrerequisiteReport`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from installer.errors import PrerequisiteError

if TYPE_CHECKING:
    from installer.checks.measurements import Environment
    from installer.resources import Capacity

Status = Literal["pass", "warn", "fail", "skipped"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skipped")


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict.

    ``measured`` and ``required`` are short human-readable values; ``hint`` is a one-line
    fix for anything that did not pass; ``reason`` says why a check was skipped (by the
    operator, or because the target does not use it); ``details`` holds the raw numbers
    for machines (bytes, counts, versions).
    """

    name: str
    status: Status
    measured: str | None
    required: str | None
    hint: str | None = None
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "measured": self.measured,
            "required": self.required,
            "hint": self.hint,
            "reason": self.reason,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class PrerequisiteReport:
    """Every check's result for one target, plus what was learned about the machine.

    ``capacity`` is the measured machine (for the Kubernetes targets: the smallest node),
    which ``profile: auto`` hands to :func:`installer.resources.allocate`.
    """

    target: str
    profile: str
    results: tuple[CheckResult, ...]
    environment: Environment | None = None
    capacity: Capacity | None = None

    @property
    def failed(self) -> bool:
        """True when any check failed (``check`` then exits 3)."""
        return any(r.status == "fail" for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == "warn")

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for item in self.results:
            if item.name == name:
                return item
        raise KeyError(name)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "profile": self.profile,
            "failed": self.failed,
            "summary": self.counts(),
            "checks": [r.to_dict() for r in self.results],
            "environment": self.environment.to_dict() if self.environment else None,
            "capacity": (
                {"cpus": self.capacity.cpus, "memory_bytes": self.capacity.memory_bytes}
                if self.capacity
                else None
            ),
        }

    def to_json(self) -> str:
        """The report as one JSON document (what ``check --json`` prints)."""
        return json.dumps(self.to_dict(), indent=2)

    def raise_for_failures(self) -> None:
        """Raise :class:`PrerequisiteError` (exit code 3) naming every failed check."""
        failures = self.failures
        if not failures:
            return
        names = ", ".join(r.name for r in failures)
        noun = "check" if len(failures) == 1 else "checks"
        raise PrerequisiteError(
            f"{len(failures)} prerequisite {noun} failed: {names}",
            hint=(
                "fix what each check's hint says, or skip a check by name "
                "(--skip NAME, or checks.skip in the answer file)"
            ),
        )
