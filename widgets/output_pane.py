"""A step's output: a window on a ring buffer, rendering only the visible rows.

Each step's lines live in an ``OutputBuffer`` (``cockpit.runview``: a bounded deque;
the whole output is in the step's file), their control characters shown as text. The
pane shows one buffer; it follows the tail until the operator scrolls up, then counts
the lines that arrive ("N new lines") until End or ``f``. The cockpit screen's keys
drive it from anywhere: ``/`` searches the buffer, ``n`` / ``N`` move between matches.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cockpit.runview import OutputBuffer


class OutputPane(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    OutputPane {
        background: $surface;
        scrollbar-gutter: stable;
    }
    OutputPane:focus { background-tint: $foreground 3%; }
    """

    following: reactive[bool] = reactive(True)
    unseen: reactive[int] = reactive(0)

    class TailChanged(Message):
        """Following the tail started or stopped, or unseen lines arrived."""

    STYLES = {
        "out": Style(),
        "err": Style(color="red"),
        "info": Style(dim=True, italic=True),
    }
    MATCH = Style(reverse=True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buffer = OutputBuffer(1)
        self.pattern = ""
        self.match: int | None = None
        self._base: Style | None = None  # the widget's own style, computed once

    def show(self, buffer: OutputBuffer) -> None:
        """Show another step's buffer, following its tail."""
        self.buffer = buffer
        self.match = None
        self.unseen = 0
        self.following = True
        self._resize()
        self._to_end()
        self.refresh()

    def _to_end(self) -> None:
        """Scroll to the newest line once the new size is laid out."""
        self.scroll_end(animate=False, x_axis=False)

    def appended(self, added: int, shifted: int) -> None:
        """The shown buffer got ``added`` lines, ``shifted`` fell off its front."""
        if not self.following:
            self.unseen += added
            if self.match is not None:
                self.match = self.match - shifted if self.match >= shifted else None
            self._resize()
            self.scroll_to(y=max(0, self.scroll_y - shifted), animate=False, immediate=True)
        else:
            self._resize()
            self._to_end()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base = None  # the theme or the CSS changed

    def _resize(self) -> None:
        self.virtual_size = Size(self.buffer.width, len(self.buffer.lines))

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if self._base is None:
            self._base = self.rich_style
        if index >= len(self.buffer.lines):
            return Strip.blank(width, self._base)
        stream, text = self.buffer.lines[index]
        style = self._base + self.STYLES[stream]
        if index == self.match:
            style += self.MATCH
        strip = Strip([Segment(text.expandtabs(4), style)])
        return strip.crop_extend(scroll_x, scroll_x + width, self._base)

    def watch_following(self) -> None:
        self.post_message(self.TailChanged())

    def watch_unseen(self) -> None:
        self.post_message(self.TailChanged())

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if not self.following and new >= self.max_scroll_y and self.max_scroll_y:
            self.following, self.unseen = True, 0  # the operator scrolled back down

    # The operator moving up pauses the tail; nothing else does.
    def on_mouse_scroll_up(self) -> None:
        self.following = False

    def action_scroll_up(self) -> None:
        self.following = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.following = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.following = False
        super().action_scroll_home()

    def action_follow(self) -> None:
        self.following, self.unseen = True, 0
        self._to_end()

    def search(self, pattern: str, backwards: bool = True) -> bool:
        """Select the next line holding ``pattern`` (case-insensitive); False if none."""
        self.pattern = pattern.lower()
        lines = self.buffer.lines
        if not self.pattern or not lines:
            return False
        count = len(lines)
        start = self.match if self.match is not None else count
        for step in range(1, count + 1):
            index = (start - step if backwards else start + step) % count
            if self.pattern in lines[index][1].lower():
                self.match = index
                self.following = False
                self.scroll_to(
                    y=max(0, index - self.size.height // 2), animate=False, immediate=True
                )
                self.refresh()
                return True
        return False

    def action_next_match(self) -> None:
        self.search(self.pattern, backwards=True)

    def action_previous_match(self) -> None:
        self.search(self.pattern, backwards=False)
