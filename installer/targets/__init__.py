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
    from installer.release import ReleaseManifest
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
    offline bundle's signature must verify with (``apply --key``).

    An install from an offline bundle installs the release the bundle carries (checked
    against ``release.version`` when that is set), never one looked up among the
    installer's own manifests: see :func:`installer.release.bundle_release`.
    """
    release = _bundle_release(answers, bundle, bundle_key)
    if answers.is_compose:
        from installer.targets.compose import ComposeTarget

        return ComposeTarget(
            answers, secrets, bundle=bundle, bundle_key=bundle_key, release=release
        )
    try:
        from installer.targets import kubernetes  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        raise UsageError(
            f"this installer cannot install the {answers.target} target yet",
            hint="use the development or production target",
        ) from None
    target: InstallTarget = kubernetes.KubernetesTarget(
        answers, secrets, bundle=bundle, bundle_key=bundle_key, release=release
    )
    return target


def _bundle_release(
    answers: AnswerFile, bundle: Path | None, bundle_key: Path | None
) -> ReleaseManifest | None:
    """The release of the bundle the install will use (``--bundle``, else ``airgap.bundle``
    when ``airgap.enabled``; the Kubernetes targets use one only when air-gapped)."""
    if bundle is None and answers.airgap.enabled and answers.airgap.bundle:
        bundle = Path(answers.airgap.bundle)
    if bundle is None or not (answers.is_compose or answers.airgap.enabled):
        return None
    from installer.release import bundle_release

    return bundle_release(bundle, version=answers.release.version, key=bundle_key)
