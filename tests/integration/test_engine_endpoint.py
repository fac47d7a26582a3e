"""Acceptance 1 (Docker): one resolver of the Docker endpoint, used by ``check``, ``apply``
and ``bundle create``. On a host where only a rootless-style daemon listens (a real second
``dockerd`` on ``$XDG_RUNTIME_DIR/docker.sock``, DOCKER_HOST unset, no system socket: the
test-only CODEQUAL_TEST_DEFAULT_DOCKER_SOCKET points the system socket's path elsewhere), the
three reach that Engine; with it stopped, the three fail the same way, naming it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from installer.engine.endpoint import DEFAULT_SOCKET_VARIABLE
from tests.integration.apply_support import Install
from tests.integration.second_dockerd import second_dockerd
from tests.support import TEST_RELEASES_DIR

pytestmark = pytest.mark.integration


@pytest.fixture
def install(unlocked_install: Install) -> Install:
    """Installs here publish their ports in the second daemon's own network namespace."""
    return unlocked_install


def test_check_apply_and_bundle_create_reach_the_rootless_engine_or_fail_alike(
    install: Install, tmp_path: Path
) -> None:
    runtime_dir = Path(tempfile.mkdtemp(prefix="cqxdg-", dir="/tmp"))
    socket = runtime_dir / "docker.sock"
    with second_dockerd(tmp_path / "dockerd", socket) as daemon:
        daemon.copy_images(["codequal-test/standin:1"])
        daemon.run_inside(install)
        config = tmp_path / "docker-config"
        config.mkdir()
        env = install.environment(
            XDG_RUNTIME_DIR=str(runtime_dir),
            DOCKER_CONFIG=str(config),
            **{DEFAULT_SOCKET_VARIABLE: str(tmp_path / "no-system-socket")},
        )
        env.pop("DOCKER_HOST", None)
        root_dir = daemon.docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()

        checked = install.run("check", "--target", "development", "--json", env=env)
        docker = next(c for c in json.loads(checked.stdout)["checks"] if c["name"] == "docker")
        assert docker["details"]["endpoint"] == f"unix://{socket}"
        assert docker["details"]["reachable"] is True
        assert docker["details"]["root_dir"] == root_dir  # the second Engine, not the main one

        answers = install.answers("development")
        applied = install.apply(answers, env=env)
        assert applied.exit_code == 0, applied.describe()
        project = daemon.docker(
            "ps", "--filter", f"label=com.docker.compose.project={install.project}"
        )
        assert "codequal-1" in project.stdout  # the install's containers are on that Engine
        assert install.containers() == []  # and none on the main Engine

        # Stopped, the daemon takes its socket away: nothing is left to find, so all three
        # name the system socket's path (the docker CLI's default) and exit 3 alike.
        daemon.stop()
        nowhere = f"unix://{tmp_path / 'no-system-socket'}"
        release = TEST_RELEASES_DIR / "1.0.0-test.yaml"
        wheelhouse = tmp_path / "wheelhouse"  # names only: the Engine is asked for first
        wheelhouse.mkdir()
        for wheel in ("codequal_installer-0-py3-none-any.whl", "pip-0-py3-none-any.whl"):
            (wheelhouse / wheel).touch()
        runs = {
            "check": install.run("check", "--target", "development", "--json", env=env),
            "apply": install.apply(answers, env=env),
            "bundle create": install.run(
                "bundle",
                "create",
                "--release",
                str(release),
                "--out",
                str(tmp_path / "b.bundle"),
                "--wheelhouse",
                str(wheelhouse),
                "--no-installer-image",
                env=env,
            ),
        }
        for name, run in runs.items():
            assert run.exit_code == 3, f"{name}: {run.describe()}"
            assert nowhere in run.stdout + run.stderr, f"{name}: {run.describe()}"
            assert "Traceback" not in run.stdout + run.stderr
