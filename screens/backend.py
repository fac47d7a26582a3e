"""What the wizard asks of the engine, and the plain views it shows.

The wizard never calls Docker or Kubernetes: every question about the machine, the plan
or the install goes through a :class:`WizardBackend`. :class:`EngineBackend` answers with
the engine in :mod:`installer` (the same functions the headless command line calls);
tests give the app a backend with fixed answers so that screenshots do not depend on the
machine they are taken on.

The views are deliberately dull dataclasses: the screens only lay them out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import Secrets
    from installer.events import Event
    from installer.runner import CancelToken

CheckStatus = Literal["pass", "warn", "fail", "skipped"]
FileChangeKind = Literal["new", "changed", "unchanged", "removed"]


@dataclass(frozen=True)
class CheckRow:
    """One prerequisite verdict, as the engine gave it."""

    name: str
    status: CheckStatus
    measured: str
    required: str
    hint: str = ""
    # The name ``checks.skip`` takes to skip this check (several rows may share one).
    skip_name: str | None = None


@dataclass(frozen=True)
class PrerequisiteView:
    """The prerequisite report for one target."""

    target: str
    rows: list[CheckRow]

    @property
    def failed(self) -> list[CheckRow]:
        return [row for row in self.rows if row.status == "fail"]

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "warn": 0, "fail": 0, "skipped": 0}
        for row in self.rows:
            out[row.status] += 1
        return out


@dataclass(frozen=True)
class Detection:
    """What the engine found out about where it runs, and the target it recommends."""

    recommended_target: str
    reason: str
    facts: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PlanFile:
    """One file the install will write; ``preview`` never holds a secret value."""

    path: str
    size: int
    mode: int
    holds_secrets: bool
    change: FileChangeKind
    preview: str
    diff: str = ""


@dataclass(frozen=True)
class PlanView:
    """Everything the review screen shows: files, how secrets are supplied, the steps."""

    root: str
    files: list[PlanFile]
    steps: list[tuple[str, str]]  # (step name, what it does)
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (key, "<generated>"...)


class WizardBackend(Protocol):
    """The engine, as the wizard sees it. Every method may block: call it from a worker."""

    def detect(self) -> Detection:
        """Probe the environment and recommend a target."""
        ...

    def prerequisites(self, answers: AnswerFile) -> PrerequisiteView:
        """Run every prerequisite check for ``answers`` (its target, its ``checks.skip``)."""
        ...

    def live_checks(self, answers: AnswerFile, secrets: Secrets) -> PrerequisiteView:
        """The live checks alone (``check --answers``'s), with the secrets typed so far."""
        ...

    def kube_contexts(self) -> list[str]:
        """The kubeconfig contexts, current one first; empty when there is no kubeconfig."""
        ...

    def plan(self, answers: AnswerFile, secrets: Secrets) -> PlanView:
        """Render every file (writing nothing) and list the steps of the install."""
        ...

    def install(
        self, answers: AnswerFile, secrets: Secrets, *, cancel: CancelToken
    ) -> Iterator[Event]:
        """Run (or resume, after a failure or a quit) the install, yielding its events.

        Once ``cancel`` is set the runner stops at its next checkpoint and ends with a
        ``run.failed`` event of exit code 130, leaving its journal for a later run.
        """
        ...


def shown_value(value: object) -> str:
    """A measured or required value as the table shows it."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def step_titles(names: Sequence[str], titles: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, titles.get(name, name.replace("_", " "))) for name in names]
