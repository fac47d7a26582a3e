"""Progress of long byte transfers (save, verify, extract, load, push): bytes and rate.

Every long bundle operation takes an optional ``progress`` callback and calls it with a
:class:`TransferProgress` at most a few times a second, and once more at the end. The
runner turns these into ``step.progress`` events (``current``/``total``/``unit="bytes"``);
the ``bundle`` commands show them with :class:`TransferDisplay`: rich's progress bars
(bytes, rate, time left) on a terminal, a plain line per tenth of the way (or every few
seconds when the size is not known) in a log or a pipe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from installer.sizes import human_size


@dataclass(frozen=True)
class TransferProgress:
    """Where a transfer is: ``done`` of ``total`` bytes (``None`` when unknown)."""

    operation: str  # "save", "verify", "extract", "load", "push"
    done: int
    total: int | None
    bytes_per_second: float
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        return min(self.done / self.total, 1.0) if self.total else None

    def describe(self) -> str:
        total = f" of {human_size(self.total)}" if self.total else ""
        share = f", {self.fraction:.0%}" if self.fraction is not None else ""
        return (
            f"{self.operation}: {human_size(self.done)}{total} "
            f"({human_size(self.bytes_per_second)}/s{share})"
        )


ProgressCallback = Callable[[TransferProgress], None]


class ProgressMeter:
    """Counts bytes and calls the callback at most every ``interval`` seconds."""

    def __init__(
        self,
        operation: str,
        callback: ProgressCallback | None,
        total: int | None = None,
        interval: float = 0.25,
    ) -> None:
        self.operation = operation
        self.callback = callback
        self.total = total
        self.interval = interval
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0

    def advance(self, count: int) -> None:
        self.done += count
        if self.callback is None:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.callback(self._snapshot(now, finished=False))

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(self._snapshot(time.monotonic(), finished=True))

    def _snapshot(self, now: float, *, finished: bool) -> TransferProgress:
        elapsed = max(now - self._start, 1e-6)
        return TransferProgress(
            self.operation, self.done, self.total, self.done / elapsed, finished
        )


class TransferDisplay:
    """Shows :class:`TransferProgress` updates on a console (standard error by default).

    On a terminal, one rich progress bar per operation with bytes done and total, rate and
    time left. Otherwise (a log file, CI, a pipe) plain lines: one each time another tenth
    is done, at least every ``line_interval`` seconds while the size is unknown, and one
    at the end. Use it as a context manager and pass it as the ``progress`` callback; the
    bundle's readers call it from their own threads.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        line_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.line_interval = line_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._lines: dict[str, tuple[float, int]] = {}  # operation -> (time, tenths) shown

    def __enter__(self) -> TransferDisplay:
        if self.console.is_terminal:
            self._bars = Progress(
                TextColumn("{task.description:<8}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                _RateColumn(),
                TimeRemainingColumn(),
                console=self.console,
                get_time=self._clock,
            )
            self._bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def __call__(self, update: TransferProgress) -> None:
        with self._lock:
            if self._bars is not None:
                self._bar(self._bars, update)
            else:
                self._line(update)

    def _bar(self, bars: Progress, update: TransferProgress) -> None:
        task = self._tasks.get(update.operation)
        if task is None:
            task = bars.add_task(update.operation, total=update.total)
            self._tasks[update.operation] = task
        bars.update(task, completed=update.done, total=update.total)

    def _line(self, update: TransferProgress) -> None:
        now = self._clock()
        shown_at, tenths_shown = self._lines.get(update.operation, (now, 0))
        fraction = update.fraction
        tenths = int(fraction * 10) if fraction is not None else tenths_shown
        if update.finished or tenths > tenths_shown or now - shown_at >= self.line_interval:
            self.console.print(update.describe(), markup=False, highlight=False, soft_wrap=True)
            self._lines[update.operation] = (now, tenths)
        elif update.operation not in self._lines:
            self._lines[update.operation] = (now, tenths_shown)


class _RateColumn(ProgressColumn):
    """rich's transfer speed in the units the rest of the installer prints (KiB/s, MiB/s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{human_size(speed)}/s" if speed else "?", style="progress.data.speed")
