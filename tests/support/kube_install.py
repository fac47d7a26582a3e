"""Running the Kubernetes adapter, through the real runner, against the fake API server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.events import Event
from installer.release import ReleaseManifest, load_release
from installer.runner import CancelToken, Runner
from installer.targets.kubernetes.plan import install_plan, prepare_install
from installer.targets.kubernetes.session import KubeInstall, KubeOptions

REPO = Path(__file__).resolve().parents[2]
RELEASE_1 = REPO / "tests/releases/1.0.0-test.yaml"
RELEASE_2 = REPO / "tests/releases/2.0.0-test.yaml"
RELEASE_BROKEN = REPO / "tests/releases/2.0.0-broken.yaml"

# A domain that never resolves (RFC 6761), and the DNS check skipped by name, as an operator
# would on a test cluster without its DNS record yet.
BASE_ANSWERS: dict[str, Any] = {
    "version": 1,
    "target": "kubernetes",
    "domain": "codequal.test.invalid",
    "database": {"kind": "postgres"},
    "resources": {"profile": "minimal"},
    "checks": {"skip": ["dns"]},
}


def answers(**sections: Any) -> AnswerFile:
    data = {**BASE_ANSWERS, **sections}
    return AnswerFile.model_validate(data)


def options(kubeconfig: Path, **overrides: Any) -> KubeOptions:
    values: dict[str, Any] = {
        "rollout_timeout": 3.0,
        "poll_interval": 0.05,
        "job_timeout": 10.0,
        "https_timeout": 3.0,
        "environ": {"KUBECONFIG": str(kubeconfig)},
    }
    values.update(overrides)
    return KubeOptions(**values)


@dataclass
class InstallRun:
    exit_code: int
    events: list[Event]
    session: KubeInstall
    outcome: Any = None
    messages: list[str] = field(default_factory=list)

    def of(self, step: str) -> list[Event]:
        return [e for e in self.events if e.step == step]

    def final(self) -> Event:
        return self.events[-1]

    def text(self) -> str:
        """Every event as NDJSON (what ``apply --json`` prints)."""
        return "\n".join(e.to_json() for e in self.events)


def release(path: Path = RELEASE_1) -> ReleaseManifest:
    return load_release(str(path))


def install(
    answer_file: AnswerFile,
    kubeconfig: Path,
    root: Path,
    *,
    release_manifest: ReleaseManifest | None = None,
    secrets: Secrets | None = None,
    skip_steps: tuple[str, ...] = (),
    cancel: CancelToken | None = None,
    **option_overrides: Any,
) -> InstallRun:
    """One ``apply`` of ``answer_file``: render, plan, run (cancelled through ``cancel``);
    every event kept."""
    session = prepare_install(
        answer_file,
        secrets or Secrets(),
        release=release_manifest or release(),
        root=root,
        options=options(kubeconfig, **option_overrides),
    )
    plan = install_plan(session)
    if skip_steps:
        plan.steps = [s for s in plan.steps if s.name not in skip_steps]
    runner = Runner(plan, cancel=cancel)
    try:
        events = list(runner.run())
    finally:
        session.close()
    assert runner.outcome is not None
    return InstallRun(runner.outcome.exit_code, events, session, runner.outcome)
