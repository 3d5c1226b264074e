"""A step's output: a window on a ring buffer, rendering only the visible rows.

Each step's lines live in an ``OutputBuffer`` (``cockpit.runview``: a bounded deque;
the whole output is in the step's file), their control characters shown as text. The
pane shows one buffer; it follows the tail until the operator scrolls up, then counts
the lines that arrive ("N new lines") until End or ``f``. The cockpit screen's keys
drive it from anywhere: ``/`` searches the step's whole output file (the screen finds
the matches off the loop), ``n`` / ``N`` move between them; the pane then shows the lines
of the file around the match (``excerpt``), not the live tail, until End or ``f``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cockpit.output import Matches, find_lines, line_times, read_ahead, read_back
from cockpit.runview import OutputBuffer

AROUND = 100  # lines of the file shown before and after a match


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

    def __init__(self, *, id: str | None = None, printed_only: bool = False) -> None:
        super().__init__(id=id)
        self.buffer = OutputBuffer(1)
        self.live = self.buffer  # the step's buffer, shown again by End or f
        self.path: Path | None = None  # the step's output file
        self.matches = Matches("")
        self.current = 0  # which of the matches is shown
        self.excerpt: tuple[int, int] | None = None
        """The first and last line (from 1) of the file shown instead of the live tail."""
        self.match: int | None = None  # the row of the shown match
        self.times = False  # each line starts with the time it was read
        self.printed_only = printed_only
        """Search only the lines the step had printed by the moment shown (a replay: no
        match from its future)."""
        self._base: Style | None = None  # the widget's own style, computed once

    def show(self, buffer: OutputBuffer, path: Path | None = None) -> None:
        """Show another step's buffer (its output file: ``path``), following its tail."""
        if buffer is self.live is self.buffer and path == self.path and self.following:
            return  # its tail is shown already
        if path != self.path:
            self.matches = Matches("")
        self.buffer = self.live = buffer
        self.path = path
        self.excerpt = self.match = None
        self.unseen = 0
        self.following = True
        self._to_end(self._resize())
        self.refresh()

    def _to_end(self, relaid: bool) -> None:
        """Scroll to the newest line: now, or once laid out if a scrollbar came or went
        (``relaid``: the room for lines may change)."""
        self.scroll_end(animate=False, x_axis=False, immediate=not relaid)

    def appended(self, printed: int, shifted: int) -> None:
        """The step of the shown buffer printed ``printed`` lines; ``shifted`` lines fell
        off the buffer's front."""
        if self.excerpt is not None:
            self.unseen += printed  # the lines shown are the file's, not the buffer's
        elif not self.following:
            self.unseen += printed
            if self.match is not None:
                self.match = self.match - shifted if self.match >= shifted else None
            self._resize()
            self.scroll_to(y=max(0, self.scroll_y - shifted), animate=False, immediate=True)
        else:
            self._to_end(self._resize())
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base = None  # the theme or the CSS changed

    def _resize(self) -> bool:
        """Make the scrollable size the buffer's; True if the pane is laid out again.

        ``virtual_size`` asks for a relayout, a whole-screen redraw, which a flood did
        at each batch while the window filled or its lines grew longer. Only this pane's
        scrollbars depend on it, so it is set in place unless a scrollbar may come or go.
        """
        width = self.buffer.width + (len("HH:MM:SS ") if self.times else 0)
        size, old = Size(width, len(self.buffer.lines)), self.virtual_size
        if size == old:
            return False
        if self._bars_may_change(old, size):
            self.virtual_size = size
            return True
        self.set_reactive(OutputPane.virtual_size, size)
        if self.show_vertical_scrollbar:
            self.vertical_scrollbar.window_virtual_size = size.height
        if self.show_horizontal_scrollbar:
            self.horizontal_scrollbar.window_virtual_size = size.width
        return False

    def _bars_may_change(self, old: Size, new: Size) -> bool:
        """Whether a scrollbar may come or go between two scrollable sizes: one of them
        crossed the room for lines, with or without the other bar's share of it."""
        room = self.container_size
        bar = max(self.styles.scrollbar_size_vertical, self.styles.scrollbar_size_horizontal)
        return any(
            (before > limit) != (after > limit)
            for before, after, whole in (
                (old.width, new.width, room.width),
                (old.height, new.height, room.height),
            )
            for limit in range(whole - bar, whole + 1)
        )

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if self._base is None:
            self._base = self.rich_style
        if index >= len(self.buffer.lines):
            return Strip.blank(width, self._base)
        stream, text = self.buffer.lines[index]
        if self.times:
            at = self.buffer.times[index]
            text = (
                (time.strftime("%H:%M:%S", time.localtime(at)) if at else "--:--:--") + " " + text
            )
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
        at_end = new >= self.max_scroll_y and self.max_scroll_y
        if not self.following and self.excerpt is None and at_end:
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
        relaid = False
        if self.excerpt is not None:
            self.buffer, self.excerpt, self.match = self.live, None, None
            relaid = self._resize()
        self.following, self.unseen = True, 0
        self._to_end(relaid)
        self.refresh()

    def action_times(self) -> None:
        self.times = not self.times
        self._resize()
        self.refresh()

    def find(self, text: str) -> None:
        """Search the whole output file for ``text``, in a thread (a big file keeps the
        screen live; a newer search replaces this one), then show the newest match."""
        self.focus()
        if text and self.path is None:  # a run watched from another host
            self.notify(f"'{text}': this step's output file is not on this host to search")
        elif text and self.path is not None:
            self.run_worker(self._find(self.path, text), group="search", exclusive=True)

    async def _find(self, path: Path, text: str) -> None:
        found = await asyncio.to_thread(find_lines, path, text)
        if path != self.path:
            return  # another step is shown by now
        if self.printed_only:
            found.keep_before(self.live.printed)
        self.matches, self.current = found, len(found) - 1
        if not found:
            by_then = " by then" if self.printed_only else ""
            self.notify(f"'{text}' is not in this step's output{by_then} ({path.name})")
            return
        self._show_match()

    def excerpt_note(self) -> str:
        """What the pane shows when it is not the live tail, the words that matter
        first (the status row is narrow); "" when it is the tail."""
        if self.excerpt is None:
            return ""
        first, last = self.excerpt
        return (
            f"match {self.current + 1:,} of {len(self.matches):,} · file lines "
            f"{first:,}–{last:,}, not the tail · End/f: the tail"
        )

    def _show_match(self) -> None:
        """The lines of the file around the current match, the match selected."""
        assert self.path is not None
        part, line, offset = self.matches.where(self.current)
        before = read_back(part, AROUND, end=offset)
        ahead = AROUND + 1
        if self.printed_only:  # the lines after the match only as far as printed by then
            ahead = min(ahead, self.live.printed - line)
        after = read_ahead(part, offset, ahead)
        self.buffer = OutputBuffer(len(before) + len(after) + 1)
        self.buffer.printed = self.live.printed
        self.buffer.extend([*before, *after])
        self.buffer.times.clear()  # the file's times, not the time read back
        self.buffer.times.extend(line_times(self.path, line - len(before), len(self.buffer.lines)))
        self.excerpt = (line - len(before) + 1, line + len(after))
        self.match = len(before)
        self.following = False
        self.post_message(self.TailChanged())
        self._resize()
        self.scroll_to(y=max(0, self.match - self.size.height // 2), animate=False, immediate=True)
        self.refresh()

    def step_match(self, older: bool) -> None:
        """The match before (``older``) or after the shown one, round the file."""
        if self.matches:
            self.current = (self.current + (-1 if older else 1)) % len(self.matches)
            self._show_match()

    def action_next_match(self) -> None:
        self.step_match(older=True)

    def action_previous_match(self) -> None:
        self.step_match(older=False)
