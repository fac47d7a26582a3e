"""The scripts that provision and run the project from a clone."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from installer import __version__
from tests.support import TESTS_DIR
from tests.support.images import BUSYBOX, BuildReport

pytestmark = pytest.mark.integration

REPO = TESTS_DIR.parent
SHELL_SCRIPTS = [
    REPO / "scripts" / "test",
    REPO / "scripts" / "codequal-installer",
    REPO / "scripts" / "remove-test-leftovers",
    REPO / ".ci" / "run",
    TESTS_DIR / "images" / "postgres" / "docker-entrypoint.sh",
]


def test_the_shell_scripts_are_shellcheck_clean() -> None:
    result = subprocess.run(
        ["shellcheck", "--severity=style", *map(str, SHELL_SCRIPTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_run_script_runs_the_installer_from_the_clone_venv() -> None:
    result = subprocess.run(
        [str(REPO / "scripts" / "codequal-installer"), "--version"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout


def _dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_leftovers_of_dead_test_runs_are_removed_and_live_runs_left_alone(
    docker_engine: Any, test_images: BuildReport, tmp_path: Path
) -> None:
    import docker

    tag = secrets.token_hex(4)
    dead, live = str(_dead_pid()), str(os.getpid())
    # Two pytest temporary directories as pytest lays them out: one whose pytest is gone
    # (no .lock), one whose pytest runs (its pid in .lock).
    dead_base = tmp_path / "pytest-of-root" / "pytest-1"
    live_base = tmp_path / "pytest-of-root" / "pytest-2"
    for base in (dead_base, live_base):
        (base / "t0" / "install").mkdir(parents=True)
    (live_base / ".lock").write_text(live)

    def compose_labels(project: str, base: Path) -> dict[str, str]:
        return {
            "com.docker.compose.project": project,
            "com.docker.compose.project.working_dir": str(base / "t0" / "install"),
        }

    created = {
        "dead project": docker_engine.containers.create(
            BUSYBOX, name=f"cqleft-{tag}-a", labels=compose_labels(f"cqleft-{tag}-dead", dead_base)
        ),
        "live project": docker_engine.containers.create(
            BUSYBOX, name=f"cqleft-{tag}-b", labels=compose_labels(f"cqleft-{tag}-live", live_base)
        ),
        "dead pid": docker_engine.containers.create(
            BUSYBOX, name=f"cqleft-{tag}-c", labels={"org.codequal.test.pid": dead}
        ),
        "live pid": docker_engine.containers.create(
            BUSYBOX, name=f"cqleft-{tag}-d", labels={"org.codequal.test.pid": live}
        ),
    }
    dead_volume = docker_engine.volumes.create(
        f"cqleft-{tag}-dead_data", labels={"com.docker.compose.project": f"cqleft-{tag}-dead"}
    )
    dead_network = docker_engine.networks.create(
        f"cqleft-{tag}-net", labels={"org.codequal.test.pid": dead}
    )
    try:
        result = subprocess.run(
            ["bash", str(REPO / "scripts" / "remove-test-leftovers")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr

        def exists(collection: Any, key: str) -> bool:
            try:
                collection.get(key)
                return True
            except docker.errors.NotFound:
                return False

        remaining = {what for what, c in created.items() if exists(docker_engine.containers, c.id)}
        assert remaining == {"live project", "live pid"}
        assert not exists(docker_engine.volumes, dead_volume.name)
        assert not exists(docker_engine.networks, dead_network.id)
    finally:
        for container in created.values():
            subprocess.run(["docker", "rm", "-f", container.id], capture_output=True, check=False)
        subprocess.run(
            ["docker", "volume", "rm", "-f", dead_volume.name], capture_output=True, check=False
        )
        subprocess.run(
            ["docker", "network", "rm", dead_network.id], capture_output=True, check=False
        )
