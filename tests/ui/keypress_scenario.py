"""Keys pressed on the install screen while image loading floods it with events.

Shared by ``tests/ui/test_responsiveness.py`` (the keys are handled while the flood goes
on: behaviour) and ``benchmarks/bench_wizard_keys.py`` (how long each key took: the
100 ms goal is measured there, never asserted in a test).

The scripted run floods the install screen with image-loading events (a progress event
and a log line per layer, 10,000 events a second: some fifty times what a real
``docker load`` of a large image reports). While that goes on, ``f`` is pressed
``presses`` times; for each press the time from sending the key to the end of its
handler is recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from screens.app import InstallerApp
from screens.install_log import InstallLog
from tests.ui.conftest import wait_for_screen, wait_until
from tests.ui.fixed_backend import STEPS, FixedBackend


@dataclass(frozen=True)
class KeypressRun:
    latencies: list[float]  # seconds from sending each key to the end of its handler
    lines_during: int  # log lines that arrived while the keys were pressed
    loading_throughout: bool  # image loading was still going on after every press
    full_log_at_end: bool  # the view the last press left (the key toggles it)
    log_lines_shown: int


async def press_during_image_loading(
    app: InstallerApp, backend: FixedBackend, presses: int = 10
) -> KeypressRun:
    backend.image_events = 1_000_000
    app.state.draft = {"version": 1, "target": "development"}
    app.state.plan_steps = list(STEPS)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_screen(pilot, "install")
        await wait_until(pilot, backend.loading_images.is_set)
        screen: Any = app.screen
        handled: list[float] = []
        toggle = screen.action_toggle_log

        def timed_toggle() -> None:
            toggle()
            handled.append(time.perf_counter())

        screen.action_toggle_log = timed_toggle
        latencies: list[float] = []
        loading_throughout = True
        lines_before = len(app.state.run_log)
        for press in range(presses):
            sent = time.perf_counter()
            await pilot.press("f")
            await wait_until(pilot, lambda n=press: len(handled) > n)
            latencies.append(handled[press] - sent)
            loading_throughout = loading_throughout and backend.loading_images.is_set()
        run = KeypressRun(
            latencies=latencies,
            lines_during=len(app.state.run_log) - lines_before,
            loading_throughout=loading_throughout,
            full_log_at_end=bool(screen.full_log),
            log_lines_shown=screen.query_one(InstallLog).line_count,
        )
        screen.cancel.cancel("test over")
    return run
