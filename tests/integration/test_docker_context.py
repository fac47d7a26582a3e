"""A Docker context made and selected with the real docker CLI: the installer reaches the
Engine through it, as the docker CLI does, and one it cannot use is reported, not
followed half-way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXE = str(Path(sys.executable).with_name("codequal-installer"))
ENGINE = "/var/run/docker.sock"


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return {**env, "DOCKER_CONFIG": str(config), "NO_COLOR": "1"}


def _docker(config: Path, *args: str) -> str:
    done = subprocess.run(
        ["docker", *args], env=_env(config), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _check(config: Path) -> tuple[dict[str, object], str]:
    done = subprocess.run(
        [EXE, "check", "--json"],
        env=_env(config), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    return checks["docker"], done.stderr


def test_the_selected_context_is_the_engine_the_installer_reaches(tmp_path: Path) -> None:
    if not os.path.exists(ENGINE):
        pytest.fail(f"the test needs the Docker Engine at {ENGINE}")
    # An Engine socket at a path no default names: a link to the real one.
    socket_path = tmp_path / "elsewhere" / "engine.sock"
    socket_path.parent.mkdir()
    socket_path.symlink_to(ENGINE)
    config = tmp_path / "docker-config"
    _docker(config, "context", "create", "cq-elsewhere", "--docker", f"host=unix://{socket_path}")
    _docker(config, "context", "use", "cq-elsewhere")
    # The docker CLI itself now reaches the Engine there.
    shown = json.loads(_docker(config, "context", "inspect"))
    assert shown[0]["Endpoints"]["docker"]["Host"] == f"unix://{socket_path}"

    docker, warnings = _check(config)
    assert docker["details"]["endpoint"] == f"unix://{socket_path}"  # type: ignore[index]
    assert docker["details"]["reachable"] is True  # type: ignore[index]
    assert warnings.count("warning:") == 0

    # Nobody listens there any more: the failure names the context, not DOCKER_HOST.
    socket_path.unlink()
    docker, _ = _check(config)
    assert docker["status"] == "fail"
    assert docker["details"]["endpoint"] == f"unix://{socket_path}"  # type: ignore[index]
    assert "'cq-elsewhere' points at" in str(docker["hint"])
    assert "unset DOCKER_HOST" not in str(docker["hint"])


def test_a_context_it_cannot_use_is_reported_and_the_default_engine_used(
    tmp_path: Path,
) -> None:
    config = tmp_path / "docker-config"
    _docker(config, "context", "create", "cq-ssh", "--docker", "host=ssh://nobody@192.0.2.1")
    _docker(config, "context", "use", "cq-ssh")

    docker, warnings = _check(config)
    assert "the Docker context 'cq-ssh' reaches the Engine over ssh" in warnings
    assert docker["details"]["endpoint"] == f"unix://{ENGINE}"  # type: ignore[index]
    assert docker["details"]["reachable"] is True  # type: ignore[index]
