"""``bundle`` progress: rich bars (bytes, rate, time left) on a terminal, plain lines in a
log or a pipe (one per tenth of the way, every few seconds when the size is unknown)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from installer.bundle.progress import TransferDisplay, TransferProgress
from tests.bundle_helpers import file_member, write_bundle
from tests.unit.cli_helpers import run_cli

MIB = 1 << 20


def _updates(operation: str, total: int | None, steps: int) -> list[TransferProgress]:
    size = total or 100 * MIB
    return [
        TransferProgress(operation, size * i // steps, total, 25.0 * MIB, finished=i == steps)
        for i in range(1, steps + 1)
    ]


def test_a_terminal_gets_bars_with_bytes_rate_and_time_left() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=110, color_system=None)
    now = [0.0]
    with TransferDisplay(console, clock=lambda: now[0]) as show:
        for update in _updates("verify", 40 * MIB, 4)[:2]:
            now[0] += 1.0  # 10 MiB a second
            show(update)
        show(TransferProgress("push", 3 * MIB, 12 * MIB, 1.0 * MIB))
    text = out.getvalue()
    assert re.search(r"verify\s+━+\s+20\.0/40\.0 MiB", text), text
    assert re.search(r"push\s+━+.*3\.0/12\.0 MiB", text), text
    assert "verify" in text and "push" in text
    # Rate and time left columns are there (values depend on rich's own sampling).
    # Rate and time left: 10 MiB/s with 20 MiB to go is two seconds.
    assert re.search(r"20\.0/40\.0 MiB +10\.0 MiB/s +0:00:02", text), text
    assert "\x1b[2K" in text  # drawn in place, not line after line


def test_a_log_gets_a_plain_line_per_tenth_and_at_the_end() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with TransferDisplay(console, clock=lambda: 0.0) as show:
        for update in _updates("push", 200 * MIB, 100):
            show(update)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10, lines  # 10 %, 20 %, ... 100 % (the last one is the end)
    assert lines[0] == "push: 20.0 MiB of 200.0 MiB (25.0 MiB/s, 10%)"
    assert lines[-1] == "push: 200.0 MiB of 200.0 MiB (25.0 MiB/s, 100%)"
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_a_transfer_of_unknown_size_gets_a_line_every_few_seconds() -> None:
    out = io.StringIO()
    now = [0.0]
    console = Console(file=out, force_terminal=False, width=200)
    with TransferDisplay(console, line_interval=5.0, clock=lambda: now[0]) as show:
        for update in _updates("save", None, 20):
            now[0] += 1.0  # an update a second
            show(update)
    lines = out.getvalue().splitlines()
    # First update at 1 s starts the clock: lines at 6, 11, 16 s, and the end at 20 s.
    assert len(lines) == 4, lines
    assert all(line.startswith("save: ") and "MiB/s)" in line for line in lines)
    assert lines[-1] == "save: 100.0 MiB (25.0 MiB/s)"


def test_bundle_verify_prints_plain_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    bundle = write_bundle(
        tmp_path / "b.bundle",
        [file_member("images/a/layer.tar", bytes(range(256)) * 8192), file_member("x", b"x")],
        body_hash=True,
    )
    result = run_cli("bundle", "verify", str(bundle))  # stderr is a StringIO: no terminal
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines and re.fullmatch(
        r"verify: [\d.]+ (B|KiB|MiB) of [\d.]+ (B|KiB|MiB) \(.*/s, 100%\)", lines[-1]
    ), lines
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
