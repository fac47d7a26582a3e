"""The wizard's backend on the real engine: the same functions the command line calls.

Everything here is a call into :mod:`installer` and a translation of its result into the
plain views of :mod:`screens.backend`; no decision about the install is made here.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from screens.backend import CheckRow, Detection, PlanFile, PlanView, PrerequisiteView

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.checks import PrerequisiteReport
    from installer.credentials import Secrets
    from installer.events import Event
    from installer.resources import Capacity

# Files of an existing installation's state that rendering reuses (generated passwords,
# the self-signed certificate), so the review's diff is against what Install would write.
_REUSED_STATE = ("generated-secrets.json", "tls")


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


def _review_root(answers: AnswerFile) -> Path | None:
    """Where an existing installation's files are, for the diff (Compose targets)."""
    return Path(answers.install_dir) if answers.is_compose else None


def plan_view(
    answers: AnswerFile,
    secrets: Secrets,
    steps: Sequence[tuple[str, str]],
    *,
    capacity: Capacity | None = None,
    existing: Path | None = None,
) -> PlanView:
    """Render the plan without touching the installation, and compare it with what is there.

    Rendering keeps generated passwords and the certificate in ``<root>/state``; the review
    must change nothing, so it renders into a scratch root seeded with a copy of the
    existing state, then compares the result with the installation in ``existing``.
    """
    from installer.release import release_for
    from installer.render import compare_plan, render_plan

    release = release_for(answers)
    with tempfile.TemporaryDirectory(prefix="codequal-review-") as scratch:
        scratch_root = Path(scratch)
        if existing is not None:
            for name in _REUSED_STATE:
                source = existing / "state" / name
                target = scratch_root / "state" / name
                if source.is_dir():
                    shutil.copytree(source, target)
                elif source.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
        plan = render_plan(answers, secrets, release, scratch_root, capacity)
    changes = {c.path: c for c in compare_plan(plan, existing)} if existing is not None else {}
    files = []
    for item in plan.files:
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
    for change in changes.values():
        if change.kind == "removed":
            files.append(PlanFile(change.path, 0, 0, True, "removed", "", change.diff))
    if answers.is_compose:
        root = answers.install_dir
    else:
        root = f"namespace {answers.kubernetes.namespace}"
    return PlanView(
        root=root,
        files=files,
        steps=list(steps),
        secrets=[(s.key, s.shown_as) for s in plan.secrets],
    )


class EngineBackend:
    """The wizard's questions, answered by the engine on this machine."""

    def detect(self) -> Detection:
        raise NotImplementedError

    def prerequisites(self, answers: AnswerFile) -> PrerequisiteView:
        from installer.checks import run_prerequisites

        return report_view(run_prerequisites(answers))

    def kube_contexts(self) -> list[str]:
        raise NotImplementedError

    def plan(self, answers: AnswerFile, secrets: Secrets) -> PlanView:
        from installer.render.cli import machine_capacity

        capacity = machine_capacity() if answers.resources.profile == "auto" else None
        return plan_view(answers, secrets, [], capacity=capacity, existing=_review_root(answers))

    def install(
        self, answers: AnswerFile, secrets: Secrets, *, cancelled: Callable[[], bool]
    ) -> Iterator[Event]:
        raise NotImplementedError
