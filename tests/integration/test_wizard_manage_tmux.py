"""Issue 15, acceptance 7: the real wizard in a real terminal (tmux, 80x24) upgrades a
development installation 1.0.0-test -> 2.0.0-test on the real Docker Engine from Manage.

The installation is made by ``apply`` (as an operator's earlier install would be) and holds
a row; the operator opens the wizard with the answer file, presses ``m`` on the welcome
step, reads the status, presses ``u``, moves to 2.0.0-test with the arrow keys, reads the
review (the checks the upgrade command runs, the path, the pre-upgrade backup) and
confirms with Enter. The run streams into the live log; Manage then shows 2.0.0-test. The
installation afterwards is checked as the command line's upgrade test checks it: the
release, the history entry with its verified pre-upgrade backup, the old row served.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.apply_support import Install
from tests.integration.tmux_terminal import tmux_terminal
from tests.support import TEST_RELEASES_DIR

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
UPGRADE_TIMEOUT = 900
FAILED = "exit 1: "


def _items(method: str = "GET", body: str | None = None) -> Any:
    request = urllib.request.Request(
        "http://127.0.0.1:3000/items",
        data=body.encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http literal
        return json.loads(response.read())


def _history(install: Install) -> list[dict[str, Any]]:
    path = install.state / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_upgrade_from_manage_in_a_terminal(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = install.answers("development")
    first = install.apply(answers)
    assert first.exit_code == 0, first.describe()
    _items("POST", "written before the upgrade")

    # Where 2.0.0-test is in the review's list: the releases this installer knows.
    monkeypatch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
    from installer.manage import upgrade_choices

    versions = [choice.version for choice in upgrade_choices("1.0.0-test")]
    downs = versions.index("2.0.0-test")

    with tmux_terminal() as terminal:
        try:
            terminal.start(
                [sys.executable, "-m", "installer", "--answers", str(answers)],
                env={
                    "CODEQUAL_RELEASES_DIR": str(TEST_RELEASES_DIR),
                    "PYTHONPATH": str(REPO),
                    "LANG": "C.UTF-8",
                },
                cwd=install.root,
            )
            terminal.wait_for("step 1 of 6: Welcome", 30)
            terminal.wait_for(lambda s: "its status, upgrade" in s and "Manage" in s, 30)
            terminal.send("m")
            status = terminal.wait_for(
                lambda s: "CodeQual 1.0.0-test (development)" in s and "healthy;" in s, 60
            )
            assert "install     1.0.0-test  finished (exit 0)" in status

            terminal.send("u")
            terminal.wait_for("Upgrade to (Enter reads what it would change)", 60)
            terminal.send(*["Down"] * downs, "Enter")
            review = terminal.wait_for(
                lambda s: "✓ upgrade path: 1.0.0-test -> 2.0.0-test" in s, 120, fail_on="Refused"
            )
            assert "CodeQual 1.0.0-test -> 2.0.0-test" in review
            assert "✓ installation healthy" in review
            assert "✓ free disk" in review
            assert "First, a backup" in review
            assert install.result()["release"]["version"] == "1.0.0-test"  # nothing yet

            terminal.send("Enter")  # the review's Upgrade button has the focus
            # The run is over when Manage has read the status again: 2.0.0-test, schema 2.
            done = terminal.wait_for(
                lambda s: "healthy; schema version 2" in " ".join(s.split()),
                UPGRADE_TIMEOUT,
                fail_on=FAILED,
            )
            assert "✗" not in done, done
            # The live log showed the checks, the backup, the plan's steps and, at the end,
            # how long the service was down.
            # The log keeps every line; it is read from its top, a page at a time, since
            # the first lines can scroll by between two captures of a live screen.
            terminal.read_back(
                [
                    "==> Check the installation and the path",
                    "==> Pre-upgrade backup",
                    "the service was down for",
                ]
            )

            terminal.send("C-q")
            terminal.wait_for("Quit the installer?", 10)
            terminal.send("y")
            assert terminal.exit_code() == 0
        finally:
            install.transcripts += terminal.screens

    result = install.result()
    assert (result["release"]["version"], result["schema_version"]) == ("2.0.0-test", "2")
    last = _history(install)[-1]
    assert last["kind"] == "upgrade" and last["exit_code"] == 0
    assert last["release"] == {"from": "1.0.0-test", "to": "2.0.0-test"}
    archive = Path(last["backup"])
    verified = json.loads(archive.with_name(archive.name + ".verified.json").read_text())
    assert verified["purpose"] == "pre-upgrade" and verified["release"] == "1.0.0-test"
    # 2.0.0-test serves the row written under 1.0.0-test.
    assert "written before the upgrade" in [item["body"] for item in _items()["items"]]
