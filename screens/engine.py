"""The wizard's backend on the real engine: the same functions the command line calls.

Everything here is a call into :mod:`installer` and a translation of its result into the
plain views of :mod:`screens.backend`; no decision about the install is made here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from screens.backend import CheckRow, Detection, PlanFile, PlanView, PrerequisiteView

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.checks import PrerequisiteReport
    from installer.checks.detect import Environment
    from installer.credentials import LoadedSecrets, Secrets
    from installer.events import Event
    from installer.render import RenderPreview
    from installer.runner import CancelToken


def report_view(report: PrerequisiteReport) -> PrerequisiteView:
    """The engine's prerequisite report, row by row."""
    from installer.answers import CHECK_NAMES

    rows = [
        CheckRow(
            name=result.name,
            status=result.status,
            measured=result.measured or "—",
            required=result.required or "—",
            hint=result.hint or result.reason or "",
            skip_name=result.name if result.name in CHECK_NAMES else None,
        )
        for result in report.results
    ]
    return PrerequisiteView(report.target, rows)


def plan_view(
    answers: AnswerFile, rendering: RenderPreview, steps: Sequence[tuple[str, str]]
) -> PlanView:
    """The review's view of a preview: each file with its contents (never a secret file's)
    and its diff against the installation, the steps, and where each secret comes from."""
    changes = {c.path: c for c in rendering.changes}
    files = []
    for item in rendering.rendered.files:
        change = changes.get(item.path)
        files.append(
            PlanFile(
                path=item.path,
                size=len(item.content),
                mode=item.mode,
                holds_secrets=item.holds_secrets,
                change=change.kind if change is not None else "new",
                preview="" if item.holds_secrets else item.content.decode("utf-8", "replace"),
                diff=change.diff if change is not None else "",
            )
        )
    for change in rendering.removed:
        files.append(PlanFile(change.path, 0, 0, True, "removed", "", change.diff))
    if answers.is_compose:
        root = answers.install_dir
    else:
        root = f"namespace {answers.kubernetes.namespace}"
    return PlanView(
        root=root,
        files=files,
        steps=list(steps),
        secrets=[(s.key, s.shown_as) for s in rendering.rendered.secrets],
    )


def recommend_target(
    environment: Environment, docker_reachable: bool, contexts: Sequence[str]
) -> tuple[str, str]:
    """The target to pre-select, and why, from what detection found.

    ``contexts`` are the kubeconfig contexts whose cluster answered. Only a pre-selection:
    the operator chooses, and the prerequisite checks judge.
    """
    if environment.kubernetes_flavour == "openshift" or (
        contexts and environment.airgapped is True
    ):
        why = "OpenShift" if environment.kubernetes_flavour == "openshift" else "no network"
        return "enterprise", f"a Kubernetes cluster and {why}"
    if contexts and not docker_reachable:
        return "kubernetes", f"the cluster of context {contexts[0]} answers; no Docker Engine here"
    if docker_reachable and environment.cloud:
        return "production", f"Docker Engine on a {environment.cloud} server"
    if docker_reachable:
        return "development", "Docker Engine found on this machine"
    if contexts:
        return "kubernetes", f"the cluster of context {contexts[0]} answers"
    return "development", "nothing to install onto was found yet: start with Docker"


def loaded_secrets(secrets: Secrets) -> LoadedSecrets:
    """The secrets typed into the wizard, over the ``CODEQUAL_<KEY>`` environment, as
    ``apply --secrets`` would load the file the wizard saves."""
    from installer.credentials import LoadedSecrets, build_secrets

    merged, origin = build_secrets(secrets.supplied(), os.environ)
    return LoadedSecrets(secrets=merged, origin=origin)


class EngineBackend:
    """The wizard's questions, answered by the engine on this machine."""

    def detect(self) -> Detection:
        from installer.checks.detect import detect_environment
        from installer.checks.probes import HostProbe

        probe = HostProbe()
        docker = probe.docker(3.0)
        contexts = self.kube_contexts()
        # The current context's cluster, asked briefly: is it there, and is it OpenShift?
        cluster = probe.kubernetes(None, 3.0) if contexts else None
        environment = detect_environment(docker=docker, kubernetes=cluster)
        answering = [cluster.context or contexts[0]] if cluster and cluster.reachable else []
        target, reason = recommend_target(environment, docker.reachable, answering)
        facts = [
            ("container runtimes", ", ".join(environment.container_runtimes) or "none"),
            ("Docker Engine", docker.version if docker.reachable else "not reachable"),
            ("Kubernetes contexts", ", ".join(contexts) or "none"),
            ("cloud", environment.cloud or "none recognised"),
        ]
        return Detection(target, reason, facts)

    def prerequisites(self, answers: AnswerFile) -> PrerequisiteView:
        from installer.checks import run_prerequisites
        from installer.live.result import LiveInput

        # The answers so far, tried against the world too (secrets: CODEQUAL_* only yet).
        return report_view(run_prerequisites(answers, live=LiveInput.for_answers(answers)))

    def live_checks(self, answers: AnswerFile, secrets: Secrets) -> PrerequisiteView:
        from installer.checks import run_prerequisites
        from installer.checks.catalog import LIVE_CHECK_NAMES, MACHINE_CHECK_NAMES
        from installer.live.result import LiveInput

        # The answers as they will be installed, with the secrets typed into the form (the
        # prerequisites step had only CODEQUAL_*); the machine's checks are not asked again.
        live = LiveInput.for_answers(answers, loaded_secrets(secrets))
        report = run_prerequisites(answers, skip=MACHINE_CHECK_NAMES, live=live)
        view = report_view(report)
        rows = [row for row in view.rows if row.name in LIVE_CHECK_NAMES]
        return PrerequisiteView(view.target, rows)

    def kube_contexts(self) -> list[str]:
        from installer.engine.kubernetes import list_contexts

        contexts = list_contexts()
        return [c.name for c in sorted(contexts, key=lambda c: not c.current)]

    def plan(self, answers: AnswerFile, secrets: Secrets) -> PlanView:
        """The target's own preview (``apply --dry-run``'s), rendered once, as a view."""
        from installer.targets import target_for

        preview = target_for(answers, loaded_secrets(secrets)).preview()
        if preview.rendering is None:  # pragma: no cover - both targets keep their rendering
            raise RuntimeError(f"the {answers.target} target gave a preview without files")
        steps = [(step.name, step.title) for step in preview.steps]
        view = plan_view(answers, preview.rendering, steps)
        return dataclasses.replace(view, root=preview.location)

    def install(
        self, answers: AnswerFile, secrets: Secrets, *, cancel: CancelToken
    ) -> Iterator[Event]:
        from installer.runner import Runner
        from installer.targets import target_for

        target = target_for(answers, loaded_secrets(secrets))
        yield from Runner(target.plan(), cancel=cancel).run()
