"""Driving the wizard with Pilot: an app on fixed machine facts, and form helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Select, SelectionList

from screens.app import InstallerApp
from tests.ui.fixed_backend import FixedBackend


@pytest.fixture
def backend() -> FixedBackend:
    return FixedBackend()


@pytest.fixture
def make_app(backend: FixedBackend, tmp_path: Path) -> Callable[..., InstallerApp]:
    """An app on the fixed backend that saves its answer file under ``tmp_path``."""

    def make(**kwargs: Any) -> InstallerApp:
        kwargs.setdefault("backend", backend)
        kwargs.setdefault("save_dir", tmp_path)
        kwargs.setdefault("clock", lambda: 0.0)
        return InstallerApp(**kwargs)

    return make


def field_id(path: str) -> str:
    return "#field-" + path.replace(".", "--")


async def wait_for_screen(pilot: Pilot[Any], name: str, timeout: float = 30.0) -> None:
    """Pause until the current screen is the step ``name`` (its workers may be running)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while getattr(pilot.app.screen, "STEP", None) != name:
        if loop.time() > deadline:
            raise AssertionError(
                f"expected the {name} screen, still on {getattr(pilot.app.screen, 'STEP', '?')}"
            )
        await pilot.pause(0.02)
    await pilot.pause()


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 30.0
) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


async def type_into(pilot: Pilot[Any], path: str, text: str) -> None:
    """Focus a text field, erase it with Backspace and type ``text`` key by key."""
    widget = pilot.app.screen.query_one(field_id(path), Input)
    widget.focus()
    await pilot.pause()
    if widget.value:
        await pilot.press("end", *["backspace"] * len(widget.value))
    if text:
        await pilot.press(*text)
    await pilot.pause()
    assert widget.value == text


async def toggle(pilot: Pilot[Any], path: str) -> None:
    widget = pilot.app.screen.query_one(field_id(path), Checkbox)
    widget.focus()
    await pilot.pause()
    await pilot.press("space")
    await pilot.pause()


async def choose(pilot: Pilot[Any], path: str, option: str) -> None:
    """Open a choice with Enter and move to ``option`` with the arrow keys."""
    select: Select[str] = pilot.app.screen.query_one(field_id(path), Select)
    select.focus()
    await pilot.pause()
    options = [value for _, value in select._options]  # the order shown
    current = options.index(select.value) if select.value in options else -1
    await pilot.press("enter")
    await pilot.pause()
    target = options.index(option)
    steps = target - current
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps))
    await pilot.press("enter")
    await pilot.pause()
    assert select.value == option


async def pick(pilot: Pilot[Any], path: str, wanted: list[str]) -> None:
    """Make a multiple choice hold exactly ``wanted``, toggling entries with Space."""
    selection: SelectionList[str] = pilot.app.screen.query_one(field_id(path), SelectionList)
    selection.focus()
    await pilot.pause()
    for index in range(selection.option_count):
        value = selection.get_option_at_index(index).value
        selection.highlighted = index
        if (value in selection.selected) != (value in wanted):
            await pilot.press("space")
    await pilot.pause()
    assert sorted(selection.selected) == sorted(wanted)
