"""Streaming commands, atomic state writes, and the hints for Compose failures."""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from installer.engine.compose import ComposeProject, explain_failure
from installer.engine.process import CommandFailed, command_to_file, stream_command
from installer.errors import Interrupted
from installer.runner import CancelToken
from installer.statedir import StateError, atomic_write, atomic_write_json
from installer.targets.compose.polling import duration_seconds as _seconds


def test_output_is_streamed_line_by_line_as_it_comes() -> None:
    script = (
        "import time\nfor i in range(3):\n    print(f'line {i}', flush=True)\n    time.sleep(0.2)\n"
    )
    started = time.monotonic()
    seen: list[tuple[str, float]] = []
    for line in stream_command([sys.executable, "-c", script]):
        seen.append((line, time.monotonic() - started))
    assert [line for line, _ in seen] == ["line 0", "line 1", "line 2"]
    assert seen[0][1] < seen[-1][1] - 0.3  # the first line arrived before the command ended


def test_a_failing_command_carries_its_exit_code_and_last_lines() -> None:
    script = "import sys\nfor i in range(50): print(i)\nprint('boom', file=sys.stderr); sys.exit(3)"
    with pytest.raises(CommandFailed) as failure:
        list(stream_command([sys.executable, "-c", script]))
    assert failure.value.returncode == 3
    assert failure.value.tail[-1] == "boom" and len(failure.value.tail) == 30
    assert "failed (exit 3)" in failure.value.message


def test_a_missing_program_is_a_clear_failure() -> None:
    with pytest.raises(CommandFailed, match="cannot run no-such-program-here"):
        list(stream_command(["no-such-program-here"]))


def test_cancel_stops_the_command_and_raises_interrupted() -> None:
    cancel = CancelToken()
    marker = "import time; print('ready', flush=True); time.sleep(60)"
    stream = stream_command([sys.executable, "-c", marker], cancel=cancel)
    assert next(stream) == "ready"
    children = [
        p
        for p in psutil.Process().children(recursive=True)
        if "time.sleep(60)" in " ".join(p.cmdline())
    ]
    assert children
    threading.Timer(0.2, cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        next(stream)
    assert time.monotonic() - started < 5
    assert not any(
        child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children
    )


def test_a_timeout_stops_the_command() -> None:
    with pytest.raises(CommandFailed, match="did not finish within 1s"):
        list(stream_command([sys.executable, "-c", "import time; time.sleep(30)"], timeout=1))


def test_secrets_go_in_on_standard_input() -> None:
    script = "import sys; print(sys.stdin.read().upper())"
    assert list(stream_command([sys.executable, "-c", script], stdin=b"abc")) == ["ABC"]


def test_command_output_to_a_file_is_atomic_and_private(tmp_path: Path) -> None:
    target = tmp_path / "dumps" / "db.sql"
    size = command_to_file([sys.executable, "-c", "print('x' * 99)"], target)
    assert size == 100 and target.read_text() == "x" * 99 + "\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(CommandFailed):
        command_to_file([sys.executable, "-c", "import sys; print('half'); sys.exit(1)"], target)
    assert target.read_text() == "x" * 99 + "\n"  # the old dump is untouched
    assert [p.name for p in target.parent.iterdir()] == ["db.sql"]


def test_atomic_write_sets_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "secret.env"
    atomic_write(path, b"KEY=value\n", 0o600)
    assert path.read_bytes() == b"KEY=value\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    atomic_write_json(path, {"a": 1}, 0o600)
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["secret.env"]


def test_a_failed_atomic_write_keeps_the_old_file_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.json"
    path.write_text("old")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StateError) as failure:
        atomic_write(path, b"new", 0o600)
    assert failure.value.message == f"cannot write {path}: No space left on device"
    assert failure.value.hint is not None and "free some space" in failure.value.hint
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]


@pytest.mark.parametrize(
    ("output", "port"),
    [
        (
            "Error response from daemon: driver failed programming external connectivity on "
            "endpoint x: Bind for 0.0.0.0:443 failed: port is already allocated",
            "443",
        ),
        (
            "Error starting userland proxy: listen tcp4 0.0.0.0:80: bind: address already in use",
            "80",
        ),
    ],
)
def test_a_taken_port_is_named_in_the_hint(output: str, port: str) -> None:
    hint = explain_failure([" Container x  Starting", output])
    assert hint is not None and hint.startswith(f"port {port} is already in use")


def test_other_compose_failures_get_hints_or_none() -> None:
    assert "disk" in (explain_failure(["write /var/lib/docker: no space left on device"]) or "")
    assert explain_failure(["something else entirely"]) is None


def test_the_compose_command_names_directory_file_and_project() -> None:
    project = ComposeProject(Path("/opt/codequal"), "codequal")
    argv = project.argv("ps")
    assert argv[:2] == ["docker", "compose"]
    assert argv[argv.index("--project-name") + 1] == "codequal"
    assert argv[argv.index("--file") + 1] == "/opt/codequal/docker-compose.yml"
    assert argv[-1] == "ps"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), (7, 7.0), (None, 3.0), ("2", 2.0)],
)
def test_compose_durations(text: object, seconds: float) -> None:
    assert _seconds(text, 3.0) == seconds
