"""A backend with fixed answers, so the wizard's tests do not depend on this machine.

Machine probes (detection, prerequisites, kubeconfig contexts) return the same data
every time; ``plan`` renders with the real engine (it depends only on the answers);
``install`` replays a scripted run: a list of events, optionally failing at one step
until ``fail_at`` is cleared, and optionally flooding progress and output while
"loading images" to measure how the UI keeps up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.events import Event
from installer.runner import CancelToken
from screens.backend import CheckRow, Detection, PlanFile, PlanView, PrerequisiteView

STEPS: list[tuple[str, str]] = [
    ("prerequisites", "Prerequisite check"),
    ("configuration", "Configuration generation"),
    ("containers", "Container deployment"),
    ("database", "Database initialization"),
    ("services", "Service configuration"),
    ("verification", "Verification"),
    ("monitoring", "Monitoring setup"),
]

# Image loading arrives in bursts of this many layers, then the "runner" waits on I/O:
# up to 10 progress events and 10 log lines every 2 ms (10,000 events a second), some
# fifty times what `docker load` reports for a large image.
_BURST = 10
_READ_WAIT = 0.002

# Fixed timestamps: each step takes a whole number of seconds, so elapsed times are stable.
_T0 = 1_700_000_000


def _ts(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(_T0 + second))


def fixed_rows(skipped: list[str]) -> list[CheckRow]:
    rows = [
        CheckRow("cpu", "fail", "2 cores", "4 cores", "use a machine with 4 or more cores", "cpu"),
        CheckRow("memory", "pass", "23.4 GB", "8 GB", "", "memory"),
        CheckRow("disk", "pass", "180 GB free at /opt", "20 GB", "", "disk"),
        CheckRow("os", "pass", "Debian 12", "Linux", "", "os"),
        CheckRow("docker", "pass", "28.2.2 (overlay2)", "24.0 or newer", "", "docker"),
        CheckRow("compose", "pass", "v2.27.0", "v2", "", "compose"),
        CheckRow(
            "ports",
            "warn",
            "3000 in use (node, pid 4242)",
            "80, 443, 3000, 8002 free",
            "stop what listens on 3000, or choose another port",
            "ports",
        ),
    ]
    return [
        CheckRow(r.name, "skipped", r.measured, r.required, "skipped by checks.skip", r.skip_name)
        if r.skip_name in skipped
        else r
        for r in rows
    ]


# The live checks (installer.live) as they answer on a machine where every answer works.
LIVE_PASSING: list[CheckRow] = [
    CheckRow(
        "images", "pass", "4 of 4 images available", "every image of the release", "", "images"
    ),
    CheckRow("tls", "pass", "self-signed", "a certificate for the domain", "", "tls"),
    CheckRow("proxy", "pass", "direct", "the same proxy as the Docker Engine", "", "proxy"),
]


@dataclass
class FixedBackend:
    """Fixed machine facts; the real engine's rendering; a scripted install."""

    recommended: str = "development"
    contexts: list[str] = field(default_factory=lambda: ["kind-codequal", "prod-eu"])
    fail_at: str | None = None
    failure_lines: list[str] = field(
        default_factory=lambda: [
            "codequal: health check 1/30: connection refused",
            "codequal: health check 30/30: connection refused",
            "codequal: last log: listen EADDRINUSE 0.0.0.0:3000",
        ]
    )
    # Image loading: this many progress/output events, as fast as the thread can yield.
    image_events: int = 3
    # Set while the scripted run is inside image loading, cleared when it leaves.
    loading_images: threading.Event = field(default_factory=threading.Event)
    # The scripted run waits here (when set) after image loading began, until released.
    hold_loading: threading.Event | None = None
    runs: int = 0
    installs: list[AnswerFile] = field(default_factory=list)
    # What the review's live checks answer (all pass: the review looks as without them).
    live_rows: list[CheckRow] = field(default_factory=lambda: list(LIVE_PASSING))
    # The secrets each live_checks call was given.
    live_secrets: list[Secrets] = field(default_factory=list)

    def detect(self) -> Detection:
        return Detection(
            recommended_target=self.recommended,
            reason="Docker Engine found, no Kubernetes context",
            facts=[("container runtimes", "docker"), ("cloud", "none recognised")],
        )

    def prerequisites(self, answers: AnswerFile) -> PrerequisiteView:
        return PrerequisiteView(answers.target, fixed_rows(list(answers.checks.skip)))

    def live_checks(self, answers: AnswerFile, secrets: Secrets) -> PrerequisiteView:
        self.live_secrets.append(secrets)
        skipped = set(answers.checks.skip)
        rows = [
            CheckRow(r.name, "skipped", r.measured, r.required, "skipped by checks.skip", r.name)
            if r.name in skipped
            else r
            for r in self.live_rows
        ]
        return PrerequisiteView(answers.target, rows)

    def kube_contexts(self) -> list[str]:
        return list(self.contexts)

    def plan(self, answers: AnswerFile, secrets: Secrets) -> PlanView:
        from installer.release import release_for
        from installer.render import preview
        from installer.resources import GIB, Capacity
        from screens.engine import plan_view

        capacity = Capacity(4.0, 8 * GIB)
        return plan_view(
            answers, preview(answers, secrets, release_for(answers), None, capacity), STEPS
        )

    def install(
        self, answers: AnswerFile, secrets: Secrets, *, cancel: CancelToken
    ) -> Iterator[Event]:
        self.runs += 1
        self.installs.append(answers)
        second = 0
        steps = [{"name": name, "title": title} for name, title in STEPS]
        yield Event(
            "run.started", "Installing CodeQual 0.1.0", ts=_ts(second), data={"steps": steps}
        )
        for name, title in STEPS:
            if cancel.cancelled:
                yield Event("run.failed", "stopped between steps", exit_code=130, ts=_ts(second))
                return
            yield Event("step.started", title, step=name, ts=_ts(second), data={"title": title})
            if name == "containers":
                yield from self._load_images(name, second, cancel)
            yield Event("step.output", f"{name}: working", step=name, ts=_ts(second))
            second += 2
            if name == self.fail_at:
                for line in self.failure_lines:
                    yield Event("step.output", line, step=name, ts=_ts(second))
                yield Event(
                    "step.failed",
                    "codequal did not become healthy within 60 s",
                    step=name,
                    ts=_ts(second),
                    data={"log_tail": list(self.failure_lines), "hint": "free port 3000"},
                )
                yield Event(
                    "run.failed",
                    "the install failed; rolled back",
                    step=name,
                    exit_code=1,
                    ts=_ts(second),
                    data={"rolled_back": ["configuration", "containers"], "step": name},
                )
                return
            yield Event("step.finished", "done", step=name, ts=_ts(second))
        yield Event(
            "run.finished",
            "installed: changed configuration, containers, database",
            exit_code=0,
            ts=_ts(second),
            data=result_data(answers),
        )

    def _hold(self) -> None:
        """Wait for :attr:`hold_loading`, or until the app stops the worker this runs in
        (on exit it cancels every worker: a snapshot's app does not wait 30 s for it)."""
        from textual.worker import NoActiveWorker, get_current_worker

        assert self.hold_loading is not None
        deadline = time.monotonic() + 30
        while not self.hold_loading.wait(0.05) and time.monotonic() < deadline:
            try:
                if get_current_worker().is_cancelled:
                    return
            except NoActiveWorker:
                pass

    def _load_images(self, step: str, second: int, cancel: CancelToken) -> Iterator[Event]:
        self.loading_images.set()
        total = max(self.image_events, 1)
        try:
            for index in range(total):
                if cancel.cancelled:
                    return
                yield Event(
                    "step.progress",
                    "loading codequal-test/standin:1",
                    step=step,
                    current=index + 1,
                    total=total,
                    unit="layers",
                    ts=_ts(second),
                )
                yield Event(
                    "step.output", f"layer {index + 1}/{total} loaded", step=step, ts=_ts(second)
                )
                if self.hold_loading is not None and index == 0:
                    self._hold()
                if index % _BURST == _BURST - 1:
                    # A runner reading Docker's progress stream waits on its socket here.
                    time.sleep(_READ_WAIT)
        finally:
            self.loading_images.clear()


def result_data(answers: AnswerFile) -> dict[str, Any]:
    """What the runner's final event carries (the result file is not read: it is absent)."""
    root = answers.install_dir
    return {
        "urls": {"codequal": "http://localhost:3000/", "deepwiki": "http://localhost:8002/"},
        "credentials": {
            "service_secrets": f"{root}/.env (mode 0600)",
            "generated_secrets": f"{root}/state/generated-secrets.json (mode 0600)",
        },
        "log_file": f"{root}/state/logs/apply-20240101T000000Z-abc123.log",
        "release": {"version": "0.1.0", "name": "codequal"},
    }


__all__ = [
    "LIVE_PASSING",
    "STEPS",
    "FixedBackend",
    "PlanFile",
    "PlanView",
    "fixed_rows",
    "result_data",
]
