"""Progress of long byte transfers (save, verify, extract, load, push): bytes and rate.

Every long bundle operation takes an optional ``progress`` callback and calls it with a
:class:`TransferProgress` at most a few times a second, and once more at the end. The
runner turns these into ``step.progress`` events (``current``/``total``/``unit="bytes"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TransferProgress:
    """Where a transfer is: ``done`` of ``total`` bytes (``None`` when unknown)."""

    operation: str  # "save", "verify", "extract", "load", "push"
    done: int
    total: int | None
    bytes_per_second: float
    finished: bool = False

    def describe(self) -> str:
        from installer.sizes import human_size

        total = f" of {human_size(self.total)}" if self.total else ""
        return (
            f"{self.operation}: {human_size(self.done)}{total} "
            f"({human_size(self.bytes_per_second)}/s)"
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
