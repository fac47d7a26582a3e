"""Acceptance 3: the real wizard, in a real terminal (tmux), installs on the real Docker Engine.

The program runs exactly as an operator starts it (``codequal-installer --answers FILE``)
in an 80x24 tmux pane; the test presses keys with ``send-keys`` and reads the screen
with ``capture-pane``. The answer file carries what a test machine needs (the test release,
the hardware checks skipped by name); the wizard finds it valid and asks nothing more.

The second test makes a step fail for real: a process holds port 3000, which the codequal
service publishes (the ports check is skipped, as the operator of a busy machine might).
The failure screen must name the step and show its last log lines; after the port is
freed, Retry must reach the done screen.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.validation import load_answers
from tests.integration.apply_support import SKIPPED_CHECKS, Install
from tests.integration.tmux_terminal import TmuxTerminal, tmux_terminal
from tests.support import TEST_RELEASES_DIR

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 600
FAILED = "The install failed at step"


def start_wizard(terminal: TmuxTerminal, install: Install, answers: Path) -> None:
    terminal.start(
        [sys.executable, "-m", "installer", "--answers", str(answers)],
        env={
            "CODEQUAL_RELEASES_DIR": str(TEST_RELEASES_DIR),
            "PYTHONPATH": str(REPO),
            "LANG": "C.UTF-8",
        },
        cwd=install.root,
    )


def walk_to_install(terminal: TmuxTerminal) -> None:
    """Welcome, prerequisites, review (the valid answer file settles target and form)."""
    terminal.wait_for("step 1 of 6: Welcome", 30)
    terminal.wait_for("every answer is valid")
    terminal.send("Enter")
    terminal.wait_for(lambda s: "step 2 of 6: Prerequisites" in s and "Checked against" in s, 60)
    terminal.send("C-s")
    terminal.wait_for(lambda s: "step 5 of 6: Review" in s and "files under" in s, 60)
    terminal.send("C-s")
    terminal.wait_for("step 6 of 6: Install", 30)


def http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a fixed local URL
        return int(response.status)


@contextlib.contextmanager
def port_held(port: int) -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))  # noqa: S104 - docker-proxy binds every address
    listener.listen()
    try:
        yield listener
    finally:
        listener.close()


def test_development_install_in_the_wizard_reaches_done_with_the_url(install: Install) -> None:
    answers = install.answers("development")
    entered = load_answers(str(answers))
    with tmux_terminal() as terminal:
        try:
            start_wizard(terminal, install, answers)
            walk_to_install(terminal)
            done = terminal.wait_for(
                "CodeQual is installed and running", INSTALL_TIMEOUT, fail_on=FAILED
            )
            assert "http://localhost:3000/" in done
            assert http_status("http://localhost:3000/health") == 200
            # On the way, the install screen showed the steps and a step's live log.
            installing = [s for s in terminal.screens if "step 6 of 6: Install" in s]
            assert any("✓ done" in s and "╭─ log: " in s for s in installing), installing[-1:]
            terminal.send("q")
            assert terminal.exit_code() == 0
        finally:
            install.transcripts += terminal.screens
    # The wizard saved the (complete) answer file over the one it opened, unchanged in meaning.
    assert load_answers(str(answers)) == entered
    assert "Saved by the CodeQual installer wizard" in answers.read_text()


def test_a_failed_step_shows_its_log_and_retry_reaches_done(install: Install) -> None:
    answers = install.answers("development", checks={"skip": [*SKIPPED_CHECKS, "ports"]})
    with tmux_terminal() as terminal:
        try:
            start_wizard(terminal, install, answers)
            with port_held(3000):
                walk_to_install(terminal)
                terminal.wait_for(FAILED, INSTALL_TIMEOUT)
                # The step's last log lines (the end in view) say which port.
                failure = terminal.wait_for(
                    lambda screen: "3000" in screen.split("last log lines", 1)[-1], 10
                )
                step = failure.split("The install failed at step", 1)[1].split(".", 1)[0].strip()
                assert step == "services", failure
                assert "Retry step" in failure
            # The cause is gone: retry.
            terminal.send("r")
            terminal.wait_for("step 6 of 6: Install", 30)
            done = terminal.wait_for(
                "CodeQual is installed and running", INSTALL_TIMEOUT, fail_on=FAILED
            )
            assert "http://localhost:3000/" in done
            assert http_status("http://localhost:3000/health") == 200
            terminal.send("q")
            assert terminal.exit_code() == 0
        finally:
            install.transcripts += terminal.screens
