"""The scripts that provision and run the project from a clone."""

from __future__ import annotations

import subprocess

import pytest

from installer import __version__
from tests.support import TESTS_DIR

pytestmark = pytest.mark.integration

REPO = TESTS_DIR.parent
SHELL_SCRIPTS = [
    REPO / "scripts" / "test",
    REPO / "scripts" / "codequal-installer",
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
