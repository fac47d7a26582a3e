"""The run panel's log keeps following the end when a line wider than the view arrives.

A wide line brings the horizontal scrollbar, which makes the view one row shorter without
the reader scrolling; the log must not take that for "scrolled up" (it did: the Manage
screen's upgrade log stopped following after the first long line).
"""

from __future__ import annotations

from textual.app import App, ComposeResult

from installer.events import Event
from screens.action import RunPanel
from screens.install_log import InstallLog


class PanelApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunPanel(idle="idle", exit_meaning=lambda code: f"meaning {code}")


async def test_a_wide_line_does_not_stop_the_follow() -> None:
    app = PanelApp()
    async with app.run_test(size=(40, 12)) as pilot:
        panel = app.query_one(RunPanel)
        log = app.query_one(InstallLog)
        for n in range(20):
            panel.show(Event("step.output", f"line {n}"))
        await pilot.pause()
        assert log.following and log.is_vertical_scroll_end
        panel.show(
            Event("step.output", "a line much wider than the forty columns of this view " * 2)
        )
        await pilot.pause()
        for n in range(10):
            panel.show(Event("step.output", f"after {n}"))
            await pilot.pause()
        assert log.following and log.unseen == 0
        assert log.is_vertical_scroll_end
        # Scrolling up still stops the follow, and new lines are counted.
        log.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        panel.show(Event("step.output", "below"))
        await pilot.pause()
        assert not log.following and log.unseen == 1
