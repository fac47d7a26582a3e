"""Install targets: each turns validated answers into a runnable plan.

A target adapter implements :class:`InstallTarget`: ``plan()`` gives the runner an
:class:`~installer.runner.InstallPlan` (the seven steps, wired to an engine), and
``preview()`` says what a run would do without touching anything (``apply --dry-run``, the
wizard's review screen). :func:`target_for` picks the adapter for ``answers.target``:

* ``development`` and ``production``: :class:`installer.targets.compose.ComposeTarget`
  (Docker Compose on this host);
* ``kubernetes`` and ``enterprise``: ``installer.targets.kubernetes.KubernetesTarget``,
  constructed with the same arguments, when that adapter is present.

Front ends use only this module and :mod:`installer.runner`::

    target = target_for(answers, loaded_secrets, bundle=None)
    preview = target.preview()                       # files, changes, steps
    runner = Runner(target.plan(), cancel=cancel)
    for event in runner.run(): ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from installer.errors import UsageError

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets, Redactor
    from installer.render import RenderPreview
    from installer.runner import InstallPlan


@dataclass(frozen=True)
class PlannedFile:
    """One file a run would write: where, how big, and how it differs from what is there."""

    path: str
    size: int
    mode: int
    change: str  # new | changed | unchanged | removed
    holds_secrets: bool = False


@dataclass(frozen=True)
class PlannedStep:
    name: str
    title: str
    description: str


@dataclass
class PlanPreview:
    """What a run would do, computed without changing anything."""

    target: str
    release: str
    location: str  # install_dir, or the cluster context and namespace
    files: list[PlannedFile]
    steps: list[PlannedStep]
    facts: dict[str, Any] = field(default_factory=dict)  # project name, images, URLs...
    rendering: RenderPreview | None = field(default=None, repr=False, compare=False)
    """The scratch rendering behind ``files`` (contents, diffs), for a front end to show
    without rendering again; not part of :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "release": self.release,
            "location": self.location,
            "files": [
                {
                    "path": f.path,
                    "size": f.size,
                    "mode": f"{f.mode:04o}",
                    "change": f.change,
                    "holds_secrets": f.holds_secrets,
                }
                for f in self.files
            ],
            "steps": [
                {"name": s.name, "title": s.title, "description": s.description} for s in self.steps
            ],
            **self.facts,
        }


class InstallTarget(Protocol):
    """What a front end needs from a target adapter."""

    redactor: Redactor
    bundle: Path | None  # the offline bundle this install uses (None: it uses none)

    def plan(self) -> InstallPlan: ...

    def preview(self) -> PlanPreview: ...


def target_for(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    bundle: Path | None = None,
    bundle_key: Path | None = None,
) -> InstallTarget:
    """The adapter that installs ``answers.target``; ``bundle_key``: the public key the
    offline bundle's signature must verify with (``apply --key``)."""
    if answers.is_compose:
        from installer.targets.compose import ComposeTarget

        return ComposeTarget(answers, secrets, bundle=bundle, bundle_key=bundle_key)
    try:
        from installer.targets import kubernetes  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        raise UsageError(
            f"this installer cannot install the {answers.target} target yet",
            hint="use the development or production target",
        ) from None
    target: InstallTarget = kubernetes.KubernetesTarget(
        answers, secrets, bundle=bundle, bundle_key=bundle_key
    )
    return target
