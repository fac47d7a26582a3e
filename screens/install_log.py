"""The install log: a cousin of Textual's own ``Log`` widget, for the runner's output.

Lines arrive from the runner many times a second while images load. The widget keeps
them as plain strings and renders only the visible ones (a ``ScrollView`` with a
line cache), so a long log costs nothing to keep. It follows the output only while the
reader is at the bottom: scroll up to read something and new lines no longer pull the
view away; the border says how many arrived below, and End follows again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive, var
from textual.scroll_view import ScrollView
from textual.strip import Strip

# Control characters would move the terminal's cursor; they are shown as a replacement.
_CONTROL = re.compile("[\u0000-\u0008\u000b-\u001f\u007f]")
_HEADING_PREFIX = "==> "


class InstallLog(ScrollView, can_focus=True):
    """A scrolling, append-only view of log lines that follows the end while it is read there."""

    DEFAULT_CSS = """
    InstallLog {
        background: $surface;
        color: $text;
        overflow: auto scroll;
        border: round $panel;
        border-subtitle-color: $warning;
        &:focus {
            border: round $accent;
        }
        & > .install-log--heading {
            text-style: bold;
            color: $accent;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"install-log--heading"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end", "follow", "Follow", show=False),
    ]

    max_lines: var[int | None] = var[int | None](None)
    """Keep at most this many lines (the oldest go first); None keeps every line."""

    following: reactive[bool] = reactive(True)
    """True while new lines scroll the view: the reader is at the bottom."""

    unseen: reactive[int] = reactive(0)
    """Lines that arrived below the view while the reader was scrolled up."""

    def __init__(
        self,
        *,
        max_lines: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._width = 0
        self._cache: LRUCache[int, Strip] = LRUCache(1024)

    @property
    def lines(self) -> list[str]:
        """The lines held, oldest first (a copy)."""
        return list(self._lines)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    @staticmethod
    def _clean(line: str) -> str:
        return _CONTROL.sub("\ufffd", line.expandtabs())

    def write_line(self, line: str) -> None:
        """Append one line (it may not contain a newline; use write_lines for text)."""
        self.write_lines([line])

    def write_lines(self, lines: Iterable[str]) -> None:
        """Append lines; follow them only if the reader was at the bottom."""
        # ``following`` too: a line wider than the view brings the horizontal scrollbar,
        # which shortens the view without the reader scrolling; that is not "scrolled up".
        at_end = self.following or self.is_vertical_scroll_end or self.max_scroll_y == 0
        new = [self._clean(part) for line in lines for part in (line.splitlines() or [""])]
        if not new:
            return
        self._lines.extend(new)
        self._width = max(self._width, *(len(x) if x.isascii() else cell_len(x) for x in new))
        dropped = 0
        if self.max_lines is not None and len(self._lines) > self.max_lines:
            dropped = len(self._lines) - self.max_lines
            del self._lines[:dropped]
            self._cache.clear()
        self.virtual_size = Size(self._width, len(self._lines))
        if at_end and not self.is_vertical_scrollbar_grabbed:
            self.following = True
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self.following = False
            self.unseen += len(new)
            if dropped:
                self.scroll_to(y=max(0, self.scroll_offset.y - dropped), animate=False)
        self.refresh()

    def replace(self, lines: Sequence[str]) -> None:
        """Show ``lines`` instead of what is shown now (at most ``max_lines`` of them, the
        last ones), and follow the end."""
        self.clear()
        keep = lines if self.max_lines is None else lines[-self.max_lines :]
        self.write_lines(keep)

    def clear(self) -> None:
        self._lines.clear()
        self._width = 0
        self._cache.clear()
        self.unseen = 0
        self.following = True
        self.virtual_size = Size(0, 0)
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def action_follow(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.following = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.following = self.is_vertical_scroll_end
        if self.following:
            self.unseen = 0

    def watch_unseen(self, unseen: int) -> None:
        self.border_subtitle = f"↓ {unseen} new (End to follow)" if unseen else ""

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        style = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, style)
        strip = self._cache.get(index)
        if strip is None:
            line = self._lines[index]
            text = Text(line, no_wrap=True, end="")
            text.stylize(style)
            if line.startswith(_HEADING_PREFIX):
                text.stylize(self.get_component_rich_style("install-log--heading"))
            strip = Strip(text.render(self.app.console), cell_len(line))
            self._cache[index] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, index)
