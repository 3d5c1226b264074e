"""ReplayScreen: a recorded run played back from the journal (``cockpit replay``).

What the operator saw (``FollowScreen``), moment by moment on the replay's virtual clock
(``cockpit.replay.Playhead``): the run's events up to the playhead's time go through the
screen's ``RunView``, and the shown step's output is read from its file as it stood then
(the lines printed by that time, as its sidecar says). Moving forward applies the next
events; moving back rebuilds the screen and applies the events from the start, quietly
(no toasts), so a frame reached by seeking is the frame reached by playing.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from textual.binding import Binding
from textual.widgets import Label

from cockpit import events as ev
from cockpit.durations import format_duration
from cockpit.replay import Playhead, Recording, clock
from cockpit.runview import OutputBuffer
from cockpit.screens.follow import WINDOW_LINES, FollowScreen
from cockpit.widgets.metrics_panel import POINTS
from cockpit.widgets.output_keys import OUTPUT_KEYS
from cockpit.widgets.plain import plain
from cockpit.widgets.run_header import RunHeader

FRAME = 0.1  # seconds between two frames while playing


def _key(key: str, action: str, description: str, tooltip: str, show: bool = True) -> Binding:
    return Binding(key, action, description, show=show, id=f"replay.{action}", tooltip=tooltip)


def _lasting(events: list[ev.Event]) -> list[ev.Event]:
    """``events`` without the metric samples no frame after them shows: the panel keeps
    the last ``POINTS`` of them (its sparklines) and the last one's values."""
    samples = [i for i, e in enumerate(events) if isinstance(e, ev.MetricsSampled)]
    hidden = set(samples[:-POINTS])
    return [e for i, e in enumerate(events) if i not in hidden]


class ReplayScreen(FollowScreen):
    BINDINGS = [
        _key("space", "play", "Play/pause", "Pause or resume the replay"),
        _key("full_stop", "step", "Step", "Pause, and move to the run's next event"),
        _key("comma", "back", "Back", "Pause, and move back to the run's previous event"),
        _key("right_square_bracket", "next_phase", "Phase", "Move to the next phase's start"),
        _key(
            "left_square_bracket",
            "previous_phase",
            "Phase back",
            "Move to the start of this phase, or of the one before",
            show=False,
        ),
        _key("F", "failure", "Failure", "Move to the first failure (a step, else an alert)"),
        _key("plus,equals_sign", "faster", "Faster", "Play faster", show=False),
        _key("minus", "slower", "Slower", "Play slower", show=False),
        *OUTPUT_KEYS,
    ]
    SAYS = "replay"
    SEARCH_PRINTED_ONLY = True  # no match from the replay's future

    def __init__(
        self, recording: Recording, speed: float, at: float | None = None, play: bool = True
    ) -> None:
        self.recording = recording
        self.playhead = Playhead(recording.start, recording.end, speed)
        super().__init__(
            recording.runbook,
            recording.run["environment"] or "",
            recording.run_id,
            "; ".join(recording.notes),
            recorded_start=recording.run.get("started_at"),
            mode=(bool(recording.run.get("dry_run")), bool(recording.run.get("rehearsal"))),
        )
        self._times = [event.at for event in recording.events]
        self._stops = recording.stops()
        self._next = 0  # the next of the recording's events to apply
        self._printed = 0  # the lines of the shown step's output its buffer has
        self._quiet = False  # seeking: no toasts
        self._first = (recording.start if at is None else at, play)

    def clock(self) -> float:
        return self.playhead.now()

    def _mounted(self) -> None:
        at, play = self._first
        self._advance(at, quiet=True)
        if play:
            self.playhead.play()
        self._say()
        self.set_interval(FRAME, self._frame)

    def notify(self, *args, **kwargs) -> None:
        if not self._quiet:
            super().notify(*args, **kwargs)

    # ------------------------------------------------------------ the frames

    def _frame(self) -> None:
        if not self.playhead.playing:
            return
        at = self.playhead.now()
        stop = next(((a, b) for a, b in self._stops if a < at < b), None)
        if stop is not None:  # nobody flew it then: on to when it flew again
            at = stop[1]
            self.notify(f"Skipped {format_duration(stop[1] - stop[0])}: the run stood stopped")
        self._advance(at)
        if at >= self.recording.end:
            self.playhead.pause()
        self._say()

    def _advance(self, at: float, quiet: bool = False) -> None:
        """Apply the events up to ``at``, and the shown step's output printed by then."""
        self.playhead.seek(at)
        self._quiet = quiet
        try:
            with self.app.batch_update():
                end = bisect.bisect_right(self._times, at)
                events = self.recording.events[self._next : end]
                for event in _lasting(events) if quiet else events:
                    self.apply(event)
                self._next = max(self._next, end)
                self._output_to(at)
        finally:
            self._quiet = False

    async def _seek(self, at: float) -> None:
        """Show the frame at ``at``, paused: forward from here, or rebuilt from the start."""
        self.playhead.pause()
        if at < self.playhead.now():
            self._forget()
            self._next = self._printed = 0
            await self.recompose()
            self._build_tree()
        self._advance(at, quiet=True)
        self._say()

    def _say(self) -> None:
        """The replay's own line: playing or paused, speed, the moment, what waits."""
        head = self.playhead
        at = head.now()
        self.query_one(RunHeader).tick()
        state = "playing" if head.playing else "paused (space plays)"
        if at >= self.recording.end and not head.playing:
            state = "at the end (space plays it again)"
        parts = [
            f"replay {state} · {head.speed:g}x · {clock(at)}",
            f"{format_duration(at - self.recording.start)} of "
            f"{format_duration(self.recording.end - self.recording.start)}",
            *self.recording.notes,
        ]
        if self.view.said:
            parts.append(self.view.said)
        self.query_one("#watch-status", Label).update(plain(" · ".join(parts)))

    def _said(self, _event: ev.Event) -> None:
        self._say()

    # ------------------------------------------------------------ the shown step's output

    def _output_path(self, step_id: str) -> Path | None:
        output = self.recording.outputs.get(step_id)
        return output.path if output is not None else None

    def _show(self, step_id: str) -> None:
        """The step's output as it stood at the playhead's time."""
        self.selected = step_id
        output = self.recording.outputs.get(step_id)
        buffer = OutputBuffer(WINDOW_LINES)
        self._printed = 0
        if output is not None:
            self._printed = output.printed_by(self.playhead.now())
            lines = output.last(self._printed, WINDOW_LINES)
            buffer.extend(lines, dropped=self._printed - len(lines))
            self._stamp(buffer, self._printed, len(lines))
        buffer.printed = self._printed
        self.view.buffers[step_id] = buffer
        super()._show(step_id)

    def _stamp(self, buffer: OutputBuffer, printed: int, count: int) -> None:
        """The times the buffer's last ``count`` lines (up to line ``printed``) were read."""
        output = self.recording.outputs[self.selected]
        first = len(buffer.times) - count
        for index, at in enumerate(output.times(printed - count, count), first):
            buffer.times[index] = at

    def _output_to(self, at: float) -> None:
        output = self.recording.outputs.get(self.selected)
        if output is None:
            return
        printed = output.printed_by(at)
        count = printed - self._printed
        if count <= 0:
            return
        if count > WINDOW_LINES:
            lines = output.last(printed, WINDOW_LINES)
        else:
            lines = output.between(self._printed, printed)
        self._printed = printed
        self.apply(
            ev.OutputReceived(
                self.run_id, at, self.selected, tuple(lines), count - len(lines), count
            )
        )
        self._stamp(self.view.buffers[self.selected], printed, len(lines))

    # ------------------------------------------------------------ the keys

    async def action_play(self) -> None:
        if self.playhead.playing:
            self.playhead.pause()
        else:
            if self.playhead.now() >= self.recording.end:  # again, from the start
                await self._seek(self.recording.start)
            self.playhead.play()
        self._say()

    async def action_tick(self) -> None:
        """Space on the phase tree (its tick key elsewhere): play or pause."""
        await self.action_play()

    async def action_step(self) -> None:
        later = bisect.bisect_right(self._times, self.playhead.now())
        if later >= len(self._times):
            self.notify("The recording ends here")
            return
        await self._seek(self._times[later])

    async def action_back(self) -> None:
        earlier = bisect.bisect_left(self._times, self.playhead.now()) - 1
        if earlier < 0:
            self.notify("The recording starts here")
            return
        await self._seek(self._times[earlier])

    async def action_next_phase(self) -> None:
        now = self.playhead.now()
        later = [(at, title) for at, title in self.recording.phase_starts() if at > now]
        if not later:
            self.notify("No phase starts after this moment")
            return
        await self._seek(later[0][0])
        self.notify(f"{later[0][1]} starts", timeout=2)

    async def action_previous_phase(self) -> None:
        now = self.playhead.now()
        earlier = [(at, title) for at, title in self.recording.phase_starts() if at < now]
        if not earlier:
            self.notify("No phase started before this moment")
            return
        await self._seek(earlier[-1][0])
        self.notify(f"{earlier[-1][1]} starts", timeout=2)

    async def action_failure(self) -> None:
        at = self.recording.first_failure()
        if at is None:
            self.notify("Nothing failed in this run: no failed step, no alert fired")
            return
        await self._seek(at)

    def action_faster(self) -> None:
        self.playhead.faster(1)
        self._say()

    def action_slower(self) -> None:
        self.playhead.faster(-1)
        self._say()
