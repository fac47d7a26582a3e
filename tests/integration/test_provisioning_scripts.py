"""The scripts that provision and run the project from a clone."""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
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


def test_a_vanished_default_bridge_is_put_back_as_the_engine_made_it(docker_engine: Any) -> None:
    # In a network namespace of its own, where there is no docker0 yet, so that the host's
    # bridge (and every container on it) is left alone.
    bridge = docker_engine.networks.get("bridge").attrs
    subnet = bridge["IPAM"]["Config"][0]["Subnet"]
    script = (
        f"{sys.executable} -m tests.support.docker_bridge && "
        "ip -o -4 addr show docker0 && "
        f"{sys.executable} -m tests.support.docker_bridge"
    )
    result = subprocess.run(
        ["unshare", "--net", "sh", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "==> the Docker default bridge was missing: recreated it"
    gateway = str(next(ipaddress.ip_network(subnet).hosts()))
    assert f"inet {gateway}/{subnet.split('/')[1]}" in lines[1]
    assert len(lines) == 2, "the second call finds the bridge and says nothing"
