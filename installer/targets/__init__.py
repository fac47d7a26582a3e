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

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from installer.errors import UsageError
from installer.targets.preview import PlannedFile, PlannedStep, PlanPreview

__all__ = ["InstallTarget", "PlanPreview", "PlannedFile", "PlannedStep", "target_for"]

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets, Redactor
    from installer.runner import InstallPlan


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
