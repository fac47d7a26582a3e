"""``apply`` and ``status`` as the operator types them, for what needs no Docker Engine:
refusing without confirmation, the dry run, invalid input, an empty status; and the plain
and NDJSON renderings of a run."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.events import Event
from installer.run_display import JsonRunDisplay, PlainRunDisplay
from installer.runner import InstallPlan, Runner, Step, StepContext, StepUpdate
from installer.statedir import StateDir
from tests.unit.cli_helpers import run_cli


@pytest.fixture
def answers(tmp_path: Path, test_releases_dir: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(
        "version: 1\n"
        "target: production\n"
        f"install_dir: {tmp_path / 'install'}\n"
        "domain: codequal.test\n"
        "monitoring: {enabled: false}\n"
        "release: {version: 1.0.0-test}\n"
    )
    return path


def test_apply_without_yes_and_without_a_terminal_refuses(answers: Path, tmp_path: Path) -> None:
    result = run_cli("apply", "--answers", str(answers))
    assert result.exit_code == 2
    assert "refusing to change this machine without confirmation" in result.stderr
    assert "hint: pass --yes" in result.stderr
    assert not (tmp_path / "install").exists()


def test_the_dry_run_prints_files_and_steps_and_touches_nothing(
    answers: Path, tmp_path: Path
) -> None:
    result = run_cli("apply", "--answers", str(answers), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["release"] == "1.0.0-test"
    assert [s["name"] for s in plan["steps"]] == [
        "prerequisites",
        "configuration",
        "containers",
        "database",
        "services",
        "verification",
        "monitoring",
    ]
    files = {f["path"]: f for f in plan["files"]}
    assert files[".env"]["mode"] == "0600" and files[".env"]["holds_secrets"] is True
    assert files["nginx/ssl/codequal.key"]["holds_secrets"] is True
    assert plan["compose_project"].startswith("codequal-install-")
    assert plan["images"]["postgres"] == "codequal-test/postgres:1"
    assert not (tmp_path / "install").exists()

    human = run_cli("apply", "--answers", str(answers), "--dry-run")
    assert human.exit_code == 0
    assert "Database initialization" in human.stdout and "nothing was changed" in human.stdout
    assert not (tmp_path / "install").exists()


def test_key_without_a_bundle_or_a_missing_key_is_exit_2(answers: Path, tmp_path: Path) -> None:
    key = tmp_path / "codequal.pub"
    key.write_text("not checked before the bundle is\n")
    alone = run_cli("apply", "--answers", str(answers), "--yes", "--key", str(key))
    assert alone.exit_code == 2
    assert "--key is the offline bundle's public key, and no bundle is given" in alone.stderr
    assert "hint: give the bundle with --bundle" in alone.stderr

    bundle = tmp_path / "codequal.bundle"
    bundle.write_bytes(b"")
    missing = run_cli(
        "apply", "--answers", str(answers), "--yes", "--bundle", str(bundle),
        "--key", str(tmp_path / "nowhere.pub"),
    )  # fmt: skip
    assert missing.exit_code == 2
    assert "nowhere.pub: no such file" in missing.stderr
    assert not (tmp_path / "install").exists()

    # airgap.bundle is used only with airgap.enabled: a key would check nothing.
    unused = tmp_path / "unused.yaml"
    unused.write_text(answers.read_text() + f"airgap: {{enabled: false, bundle: {bundle}}}\n")
    ignored = run_cli("apply", "--answers", str(unused), "--yes", "--key", str(key))
    assert ignored.exit_code == 2, ignored.output
    assert "--key is the offline bundle's public key, and no bundle is given" in ignored.stderr
    assert not (tmp_path / "install").exists()


def test_invalid_answers_exit_2_and_json_mode_says_so_as_an_event(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntarget: production\ndatabase: {kind: sqlite}\n")
    result = run_cli("apply", "--answers", str(bad), "--yes")
    assert result.exit_code == 2
    assert f"{bad}:3:" in result.stderr and "sqlite is for development only" in result.stderr
    as_json = run_cli("apply", "--answers", str(bad), "--yes", "--json")
    assert as_json.exit_code == 2
    event = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert event["type"] == "run.failed" and event["exit_code"] == 2
    assert any("sqlite is for development only" in p for p in event["data"]["problems"])


def test_status_of_an_empty_directory(tmp_path: Path) -> None:
    result = run_cli("status", "--install-dir", str(tmp_path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["installed"] is False and report["healthy"] is False
    human = run_cli("status", "--install-dir", str(tmp_path))
    assert human.exit_code == 1 and "nothing installed" in human.stdout


class Talkative(Step):
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.title = f"Step {name}"
        self.fail = fail

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield f"{self.name} says hello"
        if self.fail:
            from installer.errors import StepFailed

            raise StepFailed("it broke", step=self.name, log_tail=["last words"], hint="fix it")

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield f"undo {self.name}"


def _events(tmp_path: Path, fail: bool) -> list[Event]:
    plan = InstallPlan(
        steps=[Talkative("a"), Talkative("b", fail=fail)],
        state=StateDir(tmp_path / "state"),
        identity="x",
        description="test run",
    )
    return list(Runner(plan).run())


def test_the_plain_display_shows_steps_output_and_the_ending(tmp_path: Path) -> None:
    out = io.StringIO()
    display = PlainRunDisplay(out)
    for event in _events(tmp_path, fail=True):
        display.show(event)
    text = out.getvalue()
    assert "==> test run" in text
    assert "--> Step a" in text and "    a says hello" in text
    assert "    ✗ b: it broke" in text
    assert "    (rollback) undo a" in text
    assert "✗ it broke; rolled back: b, a" in text
    assert "  last words" in text and "hint: fix it" in text and "exit code 1" in text


def test_the_json_display_writes_one_event_per_line(tmp_path: Path) -> None:
    out = io.StringIO()
    display = JsonRunDisplay(out)
    events = _events(tmp_path, fail=False)
    for event in events:
        display.show(event)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(events)
    assert [json.loads(line)["type"] for line in lines][-1] == "run.finished"
