"""Upgrades and rollbacks with the data, on the real Docker Engine with the test releases.

- A failed upgrade whose migration changed the schema and every row (2.0.0-broken-schema)
  comes back to 1.0.0-test with the database equal to the pre-upgrade one, schema and rows
  (compared as whole dumps: ``pg_dump``, SQLite's ``iterdump``), exit 1, the downtime said.
- 1.0.0-test -> 2.0.0-test on production with data: a verified pre-upgrade backup in the
  history, 2.0.0 serving the old rows migrated; then writes, and ``rollback``, which names
  the rows written since before it asks, and brings 1.0.0 back with the pre-upgrade data.
- An upgrade killed (SIGKILL) in the middle of its migration: the rerun of ``upgrade``
  finishes it, or ``rollback`` returns to 1.0.0; either way the data is intact and the
  output says which.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.apply_support import ApplyRun, Install, parse_events

pytestmark = pytest.mark.integration


def _history(install: Install) -> list[dict[str, Any]]:
    path = install.state / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _local(method: str, path: str, body: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:3000{path}",
        data=body.encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http literal
        return int(response.status), json.loads(response.read())


def _get(install: Install, target: str, path: str) -> tuple[int, Any]:
    return _local("GET", path) if target == "development" else install.https_get(path)


def _write(install: Install, target: str, body: str) -> None:
    if target == "development":
        status, _ = _local("POST", "/items", body)
    else:
        status, _ = install.https_post("/items", body)
    assert status == 201


def _bodies(install: Install, target: str) -> list[str]:
    status, data = _get(install, target, "/items")
    assert status == 200, data
    return [item["body"] for item in data["items"]]


def _serving(install: Install, target: str) -> str:
    status, health = _get(install, target, "/health")
    assert status == 200, health
    return str(health["version"])


def _database_dump(install: Install, target: str) -> list[str]:
    """The whole database, schema and rows, as sorted lines of a real dump."""
    if target == "development":
        container = install.containers_by_service()["codequal"][0]
        code, output = container.exec_run(
            [
                "python3",
                "-c",
                "import sqlite3; c = sqlite3.connect('/app/data/codequal.db'); "
                "print('\\n'.join(c.iterdump()))",
            ]
        )
    else:
        container = install.containers_by_service()["postgres"][0]
        code, output = container.exec_run(
            ["pg_dump", "-U", "codequal", "-d", "codequal", "--no-owner", "--no-privileges"]
        )
    assert code == 0, output
    lines = output.decode().splitlines()
    assert any("items" in line for line in lines)
    # pg_dump's \restrict / \unrestrict lines carry a fresh random key in every dump.
    noise = ("--", "\\restrict ", "\\unrestrict ")
    return sorted(line for line in lines if line.strip() and not line.startswith(noise))


def _files_match_rows(install: Install, target: str) -> None:
    status, check = _get(install, target, "/items/check")
    assert status == 200 and check["ok"], check


def _upgrade(install: Install, answers: Path, to: str, *extra: str) -> ApplyRun:
    return install.run("upgrade", "--answers", str(answers), "--to", to, "--yes", "--json", *extra)


def _run_until(install: Install, args: list[str], stop_at: Any, timeout: float = 600) -> ApplyRun:
    """Run the installer with ``args`` and SIGKILL it at the first event ``stop_at`` likes."""
    process = subprocess.Popen(
        install.command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=install.environment(),
        cwd=install.root,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    killed = False
    for line in process.stdout:
        lines.append(line)
        with contextlib.suppress(ValueError):
            if stop_at(json.loads(line)):
                process.send_signal(signal.SIGKILL)
                killed = True
                break
        if time.monotonic() > deadline:
            process.kill()
            break
    rest, errors = process.communicate(timeout=120)
    stdout = "".join(lines) + (rest or "")
    install.transcripts += [stdout, errors]
    assert killed, f"the run ended before the chosen event:\n{stdout}\n{errors}"
    return ApplyRun(process.returncode, stdout, errors, parse_events(stdout))


def _on_terminal(install: Install, args: list[str], answer: str) -> tuple[int, str]:
    """Run the installer with standard input and error on a terminal; answer its question.
    Returns the exit code and everything it wrote to the terminal before and after."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        install.command(*args),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=install.environment(),
        cwd=install.root,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 300
    try:
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert b"[y/N]" in seen, seen.decode(errors="replace")
        os.write(master, answer.encode() + b"\n")
        stdout, _ = process.communicate(timeout=600)
        with contextlib.suppress(OSError):
            while select.select([master], [], [], 0.2)[0]:
                chunk = os.read(master, 4096)
                if not chunk:
                    break
                seen += chunk
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    text = seen.decode(errors="replace") + stdout.decode(errors="replace")
    install.transcripts.append(text)
    return process.returncode, text


# -- acceptance 2: a failed upgrade brings the database back ------------------------------


@pytest.mark.parametrize("target", ["development", "production"])
def test_a_failed_upgrade_restores_the_pre_upgrade_database_and_says_the_downtime(
    install: Install, target: str
) -> None:
    answers = install.answers(target)
    first = install.apply(answers)
    assert first.exit_code == 0, first.describe()
    for body in ("first row", "second row"):
        _write(install, target, body)
    before = _database_dump(install, target)

    failed = _upgrade(install, answers, "2.0.0-broken-schema")
    assert failed.exit_code == 1, failed.describe()
    # The migration ran and changed the schema before the service failed.
    assert any("schema changed" in m for m in failed.step_messages("database")), failed.describe()
    assert failed.of_type("step.failed")[0]["step"] == "verification"
    assert failed.of_type("rollback.started"), "the data rollback is announced"
    final = failed.last
    assert final["type"] == "run.failed" and final["exit_code"] == 1
    assert final["data"]["data_restored"] is True
    downtime = final["data"]["downtime_seconds"]
    assert isinstance(downtime, float) and downtime > 0
    assert f"the service was down for {downtime:.1f}s" in final["message"]
    assert "CodeQual 1.0.0-test is back" in final["message"]
    restore_steps = {e["step"] for e in failed.events if e.get("type") == "step.finished"}
    assert {"restore-volumes", "restore-database", "restore-check"} <= restore_steps

    # 1.0.0 is back and healthy, with exactly the database it had before the upgrade.
    assert _serving(install, target) == "1.0.0-test"
    assert _database_dump(install, target) == before
    assert _bodies(install, target) == ["first row", "second row"]
    _files_match_rows(install, target)
    result = install.result()
    assert (result["release"]["version"], result["schema_version"]) == ("1.0.0-test", "1")

    last = _history(install)[-1]
    assert (last["kind"], last["outcome"], last["exit_code"]) == ("upgrade", "rolled_back", 1)
    assert last["release"] == {"from": "1.0.0-test", "to": "2.0.0-broken-schema"}
    assert last["backup"] == final["data"]["restored_from"]
    assert last["details"]["data_restored"] is True
    assert last["details"]["downtime"]["seconds"] == downtime
    assert not (install.state / "upgrade-pending.json").exists()


# -- acceptance 1 and 3: an upgrade with data, then a deliberate rollback -------------------


def test_an_upgrade_keeps_the_rows_and_rollback_returns_to_them_after_saying_what_is_lost(
    install: Install,
) -> None:
    target = "production"
    answers = install.answers(target)
    first = install.apply(answers)
    assert first.exit_code == 0, first.describe()
    for body in ("written on 1.0.0", "also on 1.0.0"):
        _write(install, target, body)
    before = _database_dump(install, target)

    upgraded = _upgrade(install, answers, "2.0.0-test")
    assert upgraded.exit_code == 0, upgraded.describe()
    assert upgraded.last["type"] == "run.finished"
    assert upgraded.last["data"]["downtime_seconds"] > 0
    last = _history(install)[-1]
    assert (last["kind"], last["outcome"]) == ("upgrade", "finished")
    assert last["release"] == {"from": "1.0.0-test", "to": "2.0.0-test"}
    archive = Path(last["backup"])
    verified = json.loads(archive.with_name(archive.name + ".verified.json").read_text())
    assert verified["purpose"] == "pre-upgrade" and verified["release"] == "1.0.0-test"
    # 2.0.0 serves the old rows, migrated to its schema.
    assert _serving(install, target) == "2.0.0-test"
    assert _bodies(install, target) == ["written on 1.0.0", "also on 1.0.0"]
    assert (
        install.psql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")
        == "1,2"
    )
    _files_match_rows(install, target)

    for body in ("written on 2.0.0", "lost by the rollback"):
        _write(install, target, body)
    rollback = ["rollback", "--answers", str(answers)]

    # Before the question: what will be lost. Answering no changes nothing.
    code, said = _on_terminal(install, rollback, "n")
    assert code == 130, said
    question = said.index("[y/N]")
    assert said.index("CodeQual 2.0.0-test goes back to 1.0.0-test") < question
    assert (
        said.index("table public.items: 2 rows written since the upgrade (2 -> 4), lost") < question
    )
    assert "not confirmed: nothing was changed" in said
    assert _serving(install, target) == "2.0.0-test"
    assert len(_bodies(install, target)) == 4

    done = install.run(*rollback, "--yes", "--json")
    assert done.exit_code == 0, done.describe()
    preview = done.events[0]["data"]["preview"]
    assert preview["previous"] == "1.0.0-test" and preview["archive"] == str(archive)
    items = next(t for t in preview["tables"] if t["table"] == "public.items")
    assert (items["rows_then"], items["rows_now"], items["written_since"]) == (2, 4, 2)
    assert preview["seconds_since_upgrade"] >= 0
    assert done.last["type"] == "run.finished" and done.last["exit_code"] == 0
    assert done.last["data"]["downtime_seconds"] > 0
    safety = next(
        e
        for e in done.events
        if e.get("step") == "rollback-safety-backup" and e.get("type") == "step.finished"
    )
    assert Path(safety["data"]["archive"]).is_file()

    assert _serving(install, target) == "1.0.0-test"
    assert _bodies(install, target) == ["written on 1.0.0", "also on 1.0.0"]
    assert _database_dump(install, target) == before
    _files_match_rows(install, target)
    entry = _history(install)[-1]
    assert (entry["kind"], entry["outcome"], entry["exit_code"]) == ("rollback", "finished", 0)
    assert entry["release"] == {"from": "2.0.0-test", "to": "1.0.0-test"}
    assert entry["backup"] == str(archive)
    lost = {t["table"]: t["written_since"] for t in entry["details"]["lost"]["tables"]}
    assert lost["public.items"] == 2

    again = install.run(*rollback, "--yes", "--json")
    assert again.exit_code == 2, again.describe()
    assert "no upgrade to undo" in again.last["message"]


def test_rollback_refuses_an_unverified_or_missing_backup(install: Install) -> None:
    target = "development"
    answers = install.answers(target)
    assert install.apply(answers).exit_code == 0
    nothing = install.run("rollback", "--answers", str(answers), "--yes", "--json")
    assert nothing.exit_code == 2 and "no upgrade to undo" in nothing.last["message"]

    assert _upgrade(install, answers, "2.0.0-test").exit_code == 0
    archive = Path(_history(install)[-1]["backup"])
    record = archive.with_name(archive.name + ".verified.json")
    kept = record.read_bytes()
    record.unlink()
    unverified = install.run("rollback", "--answers", str(answers), "--yes", "--json")
    assert unverified.exit_code == 4, unverified.describe()
    assert "is not verified" in unverified.last["message"]
    record.write_bytes(kept)
    moved = archive.with_name(archive.name + ".away")
    archive.rename(moved)
    missing = install.run("rollback", "--answers", str(answers), "--yes", "--json")
    assert missing.exit_code == 2, missing.describe()
    assert "is missing" in missing.last["message"]
    assert _serving(install, target) == "2.0.0-test", "a refused rollback changes nothing"
    assert _history(install)[-1]["kind"] == "upgrade"


# -- acceptance 6: SIGKILL in the middle of the migration -----------------------------------


@pytest.mark.parametrize("rerun", ["upgrade", "rollback"])
def test_an_upgrade_killed_in_its_migration_is_finished_or_rolled_back_by_the_rerun(
    install: Install, rerun: str
) -> None:
    target = "development"
    answers = install.answers(target)
    assert install.apply(answers).exit_code == 0
    for body in ("before the kill", "also before"):
        _write(install, target, body)
    before = _database_dump(install, target)

    args = ["upgrade", "--answers", str(answers), "--to", "2.0.0-slow-migration", "--yes", "--json"]
    killed = _run_until(
        install,
        args,
        lambda e: e.get("step") == "database" and "pausing before" in str(e.get("message")),
    )
    assert killed.exit_code == -signal.SIGKILL
    pending = json.loads((install.state / "upgrade-pending.json").read_text())
    assert (pending["from"], pending["to"], pending["phase"]) == (
        "1.0.0-test",
        "2.0.0-slow-migration",
        "upgrading",
    )
    assert install.journal()["status"] == "running"  # the kill left it unfinished
    status = install.run("status", "--install-dir", str(install.install_dir), "--json")
    shown = json.loads(status.stdout)["interrupted_upgrade"]
    assert (shown["from"], shown["to"]) == ("1.0.0-test", "2.0.0-slow-migration")

    if rerun == "upgrade":
        again = _upgrade(install, answers, "2.0.0-slow-migration")
        assert again.exit_code == 0, again.describe()
        said = " ".join(str(e.get("message")) for e in again.events)
        assert "resuming the upgrade 1.0.0-test -> 2.0.0-slow-migration" in said
        assert "resuming the interrupted run at database" in said
        assert again.last["type"] == "run.finished"
        assert _serving(install, target) == "2.0.0-test"  # the stand-in's build of release 2
        assert _bodies(install, target) == ["before the kill", "also before"]
        result = install.result()
        assert (result["release"]["version"], result["schema_version"]) == (
            "2.0.0-slow-migration",
            "2",
        )
        entry = _history(install)[-1]
        assert (entry["kind"], entry["outcome"]) == ("upgrade", "finished")
        assert entry["details"]["resumed"] is True and entry["backup"] == pending["archive"]
    else:
        back = install.run("rollback", "--answers", str(answers), "--yes", "--json")
        assert back.exit_code == 0, back.describe()
        preview = back.events[0]["data"]["preview"]
        assert preview["interrupted_upgrade"] is True
        assert "was interrupted; the rollback returns to 1.0.0-test" in back.events[0]["message"]
        assert back.last["type"] == "run.finished" and "rolled back" in back.last["message"]
        assert _serving(install, target) == "1.0.0-test"
        assert _database_dump(install, target) == before
        killed_entry, entry = _history(install)[-2:]
        assert (killed_entry["kind"], killed_entry["outcome"]) == ("upgrade", "interrupted")
        assert killed_entry["backup"] == pending["archive"]
        assert (entry["kind"], entry["outcome"]) == ("rollback", "finished")
        assert entry["release"]["to"] == "1.0.0-test"
    _files_match_rows(install, target)
    assert not (install.state / "upgrade-pending.json").exists()


def test_a_failed_upgrade_killed_while_its_data_came_back_is_finished_by_the_rerun(
    install: Install,
) -> None:
    target = "development"
    answers = install.answers(target)
    assert install.apply(answers).exit_code == 0
    _write(install, target, "kept through it all")
    before = _database_dump(install, target)

    args = ["upgrade", "--answers", str(answers), "--to", "2.0.0-broken-schema", "--yes", "--json"]
    killed = _run_until(
        install,
        args,
        lambda e: e.get("type") == "step.started" and e.get("step") == "restore-volumes",
    )
    assert killed.of_type("rollback.started")
    pending = json.loads((install.state / "upgrade-pending.json").read_text())
    assert pending["phase"] == "restoring"

    again = _upgrade(install, answers, "2.0.0-broken-schema")
    assert again.exit_code == 1, again.describe()
    said = " ".join(str(e.get("message")) for e in again.events)
    assert "had failed and was being rolled back when it stopped" in said
    assert again.last["data"]["data_restored"] is True
    assert "CodeQual 1.0.0-test is back" in again.last["message"]
    assert _serving(install, target) == "1.0.0-test"
    assert _database_dump(install, target) == before
    _files_match_rows(install, target)
    entry = _history(install)[-1]
    assert (entry["kind"], entry["outcome"], entry["exit_code"]) == ("upgrade", "rolled_back", 1)
    assert entry["details"]["resumed"] is True
    assert not (install.state / "upgrade-pending.json").exists()
