"""Waiting for something outside to become ready: one polling loop and the time budgets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.5


class Sleeper(Protocol):
    """What waits between attempts: a step's context or a run's cancel token, whose
    ``sleep`` raises the run's interruption when it is cancelled."""

    def sleep(self, seconds: float) -> None: ...


def wait_until(
    ctx: Sleeper,
    attempt: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = POLL_SECONDS,
) -> T:
    """Call ``attempt`` until ``done`` holds for its result or ``timeout`` seconds passed.

    Returns the last result either way: the caller, who knows what it was waiting for,
    says what went wrong. The pause between attempts is ``ctx``'s cancellable sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if done(result) or time.monotonic() > deadline:
            return result
        ctx.sleep(interval)


def duration_seconds(value: Any, default: float) -> float:
    """Compose durations as written by the templates: ``10s``, ``1m30s``, or a number."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    text, total, number = str(value), 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    i = 0
    while i < len(text):
        char = text[i]
        if char.isdigit() or char == ".":
            number += char
            i += 1
            continue
        unit = "ms" if text[i : i + 2] == "ms" else char
        total += float(number or 0) * units.get(unit, 1.0)
        number = ""
        i += len(unit)
    return total + float(number or 0) if number else total or default
