"""The console script's entry point resolves the Docker endpoint once, exports a non-default
one for everything the process runs, and then runs the command line."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import installer.cli
from installer import entry
from installer.engine.endpoint import DEFAULT_SOCKET_VARIABLE, SOURCE_VARIABLE


def test_a_rootless_socket_becomes_docker_host_before_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docker.sock").touch()
    # Empty values (the same as unset) that monkeypatch removes again afterwards.
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", SOURCE_VARIABLE):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-config"))
    monkeypatch.setenv(DEFAULT_SOCKET_VARIABLE, str(tmp_path / "no-system.sock"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    seen: dict[str, str] = {}

    def run() -> None:
        import os

        seen.update(os.environ)

    monkeypatch.setattr(installer.cli, "main", run)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    entry.main()
    assert seen["DOCKER_HOST"] == f"unix://{tmp_path}/docker.sock"
    assert seen[SOURCE_VARIABLE] == "rootless"


def test_python_dash_m_runs_the_same_entry_point() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "installer", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("codequal-installer, version ")
