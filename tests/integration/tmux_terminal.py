"""The real wizard in a real terminal: a tmux session driven with send-keys, read with
capture-pane.

Each :class:`TmuxTerminal` runs its own tmux server (``-L``), so tests never touch an
operator's sessions or each other's. The program's exit code is printed after it ends
(``EXIT=<code>``), and the pane stays open so the test can read it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path


class TerminalTimeout(AssertionError):
    """What the test waited for never appeared; the message holds the last screen."""


class TmuxTerminal:
    def __init__(self, width: int = 80, height: int = 24) -> None:
        self.socket = f"codequal-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "wizard"
        self.width = width
        self.height = height
        self.screens: list[str] = []

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
        )

    def start(self, argv: list[str], *, env: Mapping[str, str], cwd: Path) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = (
            f"cd {shlex.quote(str(cwd))} && env {exports} {shlex.join(argv)}; "
            "echo EXIT=$?; sleep 3600"
        )
        self._tmux(
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            command,
        )

    def send(self, *keys: str) -> None:
        """tmux key names: Enter, Tab, BTab, Escape, C-s, C-q, F1, or literal text."""
        for key in keys:
            self._tmux("send-keys", "-t", self.session, key)
            time.sleep(0.05)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.session, "-l", text)

    def capture(self) -> str:
        screen = self._tmux("capture-pane", "-p", "-t", self.session).stdout
        self.screens.append(screen)
        return screen

    def wait_for(
        self,
        what: str | Callable[[str], bool],
        timeout: float = 60,
        interval: float = 0.2,
        *,
        fail_on: str | None = None,
    ) -> str:
        """The screen once it shows ``what`` (a text, or a test of the whole screen);
        raises at once if it shows ``fail_on`` instead."""
        test = (lambda screen: what in screen) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if test(screen):
                return screen
            if fail_on is not None and fail_on in screen:
                raise TerminalTimeout(f"found {fail_on!r} waiting for {what!r}:\n{screen}")
            time.sleep(interval)
        raise TerminalTimeout(f"waited {timeout:.0f}s for {what!r}; the screen:\n{screen}")

    def read_back(self, wanted: Iterable[str], *, pages: int = 60) -> str:
        """Every screen from the top of the focused scrolling view (Home) down, a page at a
        time (PageDown), until each text in ``wanted`` has been on one of them; raises
        naming what never was. A live view can scroll lines away between two captures;
        this reads what it holds afterwards. Scrolling animates: each screen is read once
        two captures in a row agree."""
        missing = list(wanted)
        seen: list[str] = []
        self.send("Home")
        for _ in range(pages):
            screen = self._settled()
            seen.append(screen)
            missing = [text for text in missing if text not in " ".join(screen.split())]
            if not missing:
                return "\n".join(seen)
            self.send("PageDown")
        raise TerminalTimeout(
            f"never on screen after {pages} pages: {missing!r}; the last:\n{seen[-1]}"
        )

    def _settled(self, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        screen = self.capture()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            again = self.capture()
            if again == screen:
                return screen
            screen = again
        return screen

    def exit_code(self, timeout: float = 60) -> int:
        screen = self.wait_for("EXIT=", timeout)
        line = next(line for line in screen.splitlines() if line.startswith("EXIT="))
        return int(line.removeprefix("EXIT=").strip())

    def close(self) -> None:
        self._tmux("kill-server", check=False)


@contextlib.contextmanager
def tmux_terminal(width: int = 80, height: int = 24) -> Iterator[TmuxTerminal]:
    terminal = TmuxTerminal(width, height)
    try:
        yield terminal
    finally:
        terminal.close()
