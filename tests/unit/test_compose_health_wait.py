"""The Compose target's health wait reads "unhealthy" as the Engine means it.

The Engine reports a container "unhealthy" when its probes failed ``retries`` times in a row,
and ALSO, with no probe failed (``FailingStreak`` 0), from the moment it stops the health
monitor (a pause: the pre-upgrade backup pauses the application for its snapshot) until the
next probe after the unpause. An upgrade that keeps those containers (1.0.0-test -> 1.5.0-test:
same images, same service configuration) reached verification inside that window and failed
at once. The Engine's documents here are the shapes it returns (list summary, inspect).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.credentials import LoadedSecrets, Secrets
from installer.engine.docker import _info
from installer.errors import StepFailed
from installer.release import load_release
from installer.targets.compose.installation import ComposeInstallation


def _labels(project: str = "proj") -> dict[str, str]:
    return {"com.docker.compose.project": project, "com.docker.compose.service": "codequal"}


def _inspected(status: str, streak: int, last_exit: int, project: str = "proj") -> dict[str, Any]:
    """``inspect_container`` of a running container with a health check."""
    return {
        "Id": "c0ffee",
        "Name": "/proj-codequal-1",
        "Config": {"Labels": _labels(project), "Image": "codequal-test/standin:1"},
        "Image": "sha256:1",
        "State": {
            "Status": "running",
            "ExitCode": 0,
            "Health": {
                "Status": status,
                "FailingStreak": streak,
                "Log": [{"ExitCode": last_exit, "Output": "probe output"}],
            },
        },
        "HostConfig": {},
    }


class Api:
    """docker-py's low-level API: the list endpoint and inspect, one answer per poll.

    A poll is (the health the list's ``Status`` shows, then inspect's health: status,
    failing streak, last probe's exit code)."""

    def __init__(self, project: str, polls: list[tuple[str, str, int, int]]) -> None:
        self.project = project
        self.polls = iter(polls)
        self.current: dict[str, Any] = {}
        self.inspected = 0

    def containers(self, all: bool, filters: dict[str, Any]) -> list[dict[str, Any]]:
        summary_health, *health = next(self.polls)
        self.current = _inspected(*health, project=self.project)
        return [
            {
                "Id": "c0ffee",
                "Names": ["/proj-codequal-1"],
                "State": "running",
                "Status": f"Up 9 seconds ({summary_health})",
                "Labels": _labels(self.project),
                "Image": "codequal-test/standin:1",
                "ImageID": "sha256:1",
            }
        ]

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        self.inspected += 1
        return self.current

    def logs(self, container_id: str, **_: Any) -> bytes:
        return b"standin codequal version 1.0.0-test listening on :3000\n"


class Client:
    def __init__(self, api: Api) -> None:
        self.api = api


class Context:
    """What the wait needs of a StepContext: its step's name and a sleep."""

    step = SimpleNamespace(name="verification")

    def sleep(self, seconds: float) -> None:
        pass


@pytest.fixture
def installation(tmp_path: Path, test_releases_dir: Path) -> ComposeInstallation:
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "development",
            "install_dir": str(tmp_path / "install"),
            "monitoring": {"enabled": False},
            "release": {"version": "1.5.0-test"},
        }
    )
    return ComposeInstallation(
        answers, LoadedSecrets(Secrets()), release=load_release("1.5.0-test")
    )


def _wait(installation: ComposeInstallation, polls: list[tuple[str, str, int, int]]) -> Api:
    api = Api(installation.project.name, polls)
    installation.engine._client = Client(api)
    updates: Iterator[Any] = installation.wait_healthy(Context(), ["codequal"])  # type: ignore[arg-type]
    list(updates)
    return api


def test_an_unhealthy_status_no_probe_made_is_waited_out(
    installation: ComposeInstallation,
) -> None:
    """Just unpaused: "unhealthy", streak 0, last probe passed; then the next probe passes."""
    api = _wait(
        installation,
        [
            ("unhealthy", "unhealthy", 0, 0),
            ("unhealthy", "unhealthy", 0, 0),
            ("healthy", "healthy", 0, 0),
        ],
    )
    assert api.inspected == 2  # the summary's "unhealthy" was looked into, twice


def test_probes_that_failed_still_fail_the_wait_at_once(
    installation: ComposeInstallation,
) -> None:
    with pytest.raises(StepFailed, match="service codequal is unhealthy: its health check"):
        _wait(
            installation,
            [
                ("unhealthy", "unhealthy", 15, 1),
                ("healthy", "healthy", 0, 0),
            ],
        )


def test_inspect_tells_a_failed_health_from_a_stopped_monitor() -> None:
    assert not _info(_inspected("unhealthy", 0, 0)).failed_health  # paused, then unpaused
    assert _info(_inspected("unhealthy", 3, 1)).failed_health
    assert not _info(_inspected("healthy", 0, 0)).failed_health
