"""The console script's entry point sends ``check``'s Docker request first, only for
Compose targets, and otherwise just runs the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from installer.entry import wants_docker_early


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["check"], True),  # development by default
        (["check", "--json"], True),
        (["check", "--target", "production"], True),
        (["check", "--target=development", "--skip", "cpu"], True),
        (["check", "-tproduction"], True),
        (["check", "-t", "kubernetes"], False),
        (["check", "--target", "enterprise", "--json"], False),
        (["check", "--answers", "a.yaml"], False),  # the file names the target
        (["check", "--answers=a.yaml", "--target", "production"], True),
        (["check", "--help"], False),
        (["check", "--target"], True),  # incomplete: click reports it; no harm either way
        (["plan", "--answers", "a.yaml"], False),
        (["--version"], False),
        ([], False),
    ],
)
def test_which_command_lines_ask_docker_early(args: list[str], expected: bool) -> None:
    assert wants_docker_early(args) is expected


def test_python_dash_m_runs_the_same_entry_point() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "installer", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("codequal-installer, version ")
