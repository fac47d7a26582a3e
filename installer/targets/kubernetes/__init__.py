"""The kubernetes and enterprise targets: installing through the Kubernetes API.

The runner's second adapter (:mod:`installer.targets.compose` is the first).
:class:`KubernetesTarget` is what :func:`installer.targets.target_for` hands the front ends:
``plan()`` for the runner, ``preview()`` for ``apply --dry-run`` and the wizard's review.
Its parts:

* :mod:`installer.engine.kubernetes`: the connection (kubeconfig context or in-cluster),
  discovery, server-side apply, permissions, logs;
* :mod:`~installer.targets.kubernetes.session`: what one install's steps share;
* :mod:`~installer.targets.kubernetes.steps`: the steps, prerequisites to release record;
* :mod:`~installer.targets.kubernetes.record`: the release record kept in the cluster;
* :mod:`~installer.targets.kubernetes.explain`: pod problems in the operator's words;
* :mod:`~installer.targets.kubernetes.images`: is each image in its registry;
* :mod:`~installer.targets.kubernetes.plan`: the plan, the dry run and ``status``.

Nothing here imports the ``kubernetes`` package at module level.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.credentials import LoadedSecrets, Redactor

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.release import ReleaseManifest
    from installer.runner import InstallPlan
    from installer.targets.kubernetes.session import KubeInstall, KubeOptions
    from installer.targets.preview import PlanPreview


class KubernetesTarget:
    """A CodeQual installation in one namespace of one cluster."""

    def __init__(
        self,
        answers: AnswerFile,
        secrets: LoadedSecrets,
        *,
        bundle: Path | None = None,
        bundle_key: Path | None = None,
        release: ReleaseManifest | None = None,
        root: Path | None = None,
        options: KubeOptions | None = None,
    ) -> None:
        from installer.release import release_for
        from installer.targets.kubernetes.session import KubeOptions, default_root

        self.answers = answers
        self.secrets = secrets
        if bundle is None and answers.airgap.bundle:
            bundle = Path(answers.airgap.bundle)
        # Only an air-gapped install pushes a bundle's images (the images step).
        self.bundle = bundle if answers.airgap.enabled else None
        self.release = release if release is not None else release_for(answers)
        self.root = root if root is not None else default_root(answers)
        self.options = options if options is not None else KubeOptions()
        if bundle_key is not None:
            self.options = dataclasses.replace(self.options, bundle_key=bundle_key)
        self.redactor = Redactor(secrets.secrets.supplied().values())
        self._session: KubeInstall | None = None

    def session(self) -> KubeInstall:
        """The rendered install (generated secrets are made once, in the local state)."""
        if self._session is None:
            from installer.targets.kubernetes.plan import prepare_install

            self._session = prepare_install(
                self.answers,
                self.secrets,
                release=self.release,
                root=self.root,
                options=self.options,
                bundle=self.bundle,
            )
            self.redactor.include(self._session.rendered.redactor)
        return self._session

    def plan(self) -> InstallPlan:
        from installer.targets.kubernetes.plan import install_plan

        return install_plan(self.session())

    def preview(self) -> PlanPreview:
        """What ``apply`` would do, changing nothing: the manifests are rendered in a scratch
        directory (borrowing the generated secrets), and each object goes through a
        server-side dry run when the cluster answers, in apply order."""
        from installer.render.scratch import compared, scratch_root
        from installer.targets.kubernetes.plan import dry_run_objects, prepare_install, public_urls
        from installer.targets.kubernetes.steps import kubernetes_steps
        from installer.targets.preview import PlannedFile, PlannedStep, PlanPreview

        with scratch_root(self.root) as root:
            session = prepare_install(
                self.answers, self.secrets, release=self.release, root=root, options=self.options
            )
            try:
                self.redactor.include(session.rendered.redactor)
                mode, objects = dry_run_objects(session)
                steps = [
                    PlannedStep(s.name, s.title, s.description) for s in kubernetes_steps(session)
                ]
            finally:
                session.close()
        rendering = compared(session.rendered, self.root)
        changes = {c.path: c for c in rendering.changes}
        files = [
            PlannedFile(f.path, len(f.content), f.mode, changes[f.path].kind, f.holds_secrets)
            for f in session.rendered.files
        ]
        facts: dict[str, Any] = {
            "context": self.answers.kubernetes.context,
            "namespace": self.answers.kubernetes.namespace,
            "dry_run": mode,
            "objects": objects,
            "urls": public_urls(session),
        }
        return PlanPreview(
            target=self.answers.target,
            release=self.release.version,
            location=(
                f"namespace {self.answers.kubernetes.namespace} of "
                f"{self.answers.kubernetes.context or 'the current kubeconfig context'}"
            ),
            files=files,
            steps=steps,
            facts=facts,
            rendering=rendering,
        )
