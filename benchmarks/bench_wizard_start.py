"""Cold start of the wizard to its first painted frame, against a minimal Textual app.

Both programs run side by side, alternating, each in a fresh process on its own
pseudo-terminal (80x24, as an operator's terminal): the clock starts before the process
is spawned and stops when the terminal has received the first frame (a text that only the
painted screen contains). The wizard is started exactly as an operator starts it, through
the ``codequal-installer`` console script; the minimal app is a Textual App with one
Static and a Footer, the floor any Textual program pays.

    python benchmarks/bench_wizard_start.py [--runs 15]

Prints, for each, the median wall time (and its spread) and the median CPU time to the
first frame, and the ratios: of the medians, and the median of the ratios of paired runs
(each wizard run against the minimal run just before it, under the same load); the goal
is a ratio of at most 1.3. On a busy machine the paired CPU ratio is the steadiest.
Exit status 0 whatever the ratio: this measures, it does not judge.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MINIMAL_APP = """\
from textual.app import App
from textual.widgets import Footer, Static


class Minimal(App[None]):
    def compose(self):
        yield Static("minimal app painted")
        yield Footer()


Minimal().run()
"""
_ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[A-Za-z~]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\x1b[=>]")


def first_frame_seconds(argv: list[str], marker: bytes, timeout: float = 30.0) -> float:
    """Seconds from spawning ``argv`` on a new 80x24 pty until ``marker`` is on screen."""
    return first_frame(argv, marker, timeout)[0]


def first_frame(argv: list[str], marker: bytes, timeout: float = 30.0) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from spawning ``argv`` on a new 80x24 pty until
    ``marker`` is on screen. The CPU time (user and system, read when the process is
    stopped right after) is what start-up costs, whatever else the machine is doing."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="80", LINES="24")
    env.pop("NO_COLOR", None)
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=tempfile.gettempdir(),
        start_new_session=True,
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    try:
        while True:
            remaining = started + timeout - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"{argv[0]}: no first frame in {timeout:.0f}s")
            ready, _, _ = select.select([leader], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                raise RuntimeError(f"{argv[0]} ended before its first frame") from None
            seen += chunk
            if marker in _ANSI.sub(b"", seen):
                wall = time.perf_counter() - started
                os.killpg(process.pid, signal.SIGKILL)
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                return wall, usage.ru_utime + usage.ru_stime
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(leader)


def wizard_command() -> list[str]:
    script = Path(sys.executable).with_name("codequal-installer")
    if script.exists():
        return [str(script)]
    found = shutil.which("codequal-installer")
    return [found] if found else [sys.executable, "-m", "installer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each program")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        minimal = Path(scratch) / "minimal_app.py"
        minimal.write_text(MINIMAL_APP)
        programs = {
            "minimal Textual app": ([sys.executable, str(minimal)], b"minimal app painted"),
            "codequal-installer wizard": (wizard_command(), b"What happens"),
        }
        # One unmeasured run each, so that both start from warm file caches and bytecode.
        for argv, marker in programs.values():
            first_frame_seconds(argv, marker)
        times: dict[str, list[float]] = {name: [] for name in programs}
        cpu: dict[str, list[float]] = {name: [] for name in programs}
        for _ in range(args.runs):
            for name, (argv, marker) in programs.items():
                wall, used = first_frame(argv, marker)
                times[name].append(wall)
                cpu[name].append(used)

    for name, values in times.items():
        print(
            f"{name:28} wall median {statistics.median(values) * 1000:7.1f} ms"
            f" (min {min(values) * 1000:6.1f}, max {max(values) * 1000:6.1f});"
            f" CPU median {statistics.median(cpu[name]) * 1000:6.1f} ms   ({len(values)} runs)"
        )
    minimal, wizard = "minimal Textual app", "codequal-installer wizard"
    for label, table in (("wall", times), ("CPU", cpu)):
        ratio = statistics.median(table[wizard]) / statistics.median(table[minimal])
        # Each wizard run against the minimal run just before it: both saw the same load.
        pairs = zip(table[wizard], table[minimal], strict=True)
        paired = statistics.median(w / m for w, m in pairs)
        print(
            f"{label:4} ratio: {ratio:.2f} of the medians, {paired:.2f} the median of paired runs"
            "  (goal: at most 1.30)"
        )


if __name__ == "__main__":
    main()
