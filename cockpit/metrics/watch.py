"""The watch: polls a source, evaluates the alert rules, says when polls fail or recover."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cockpit.durations import format_setting
from cockpit.metrics.alerts import AlertEvaluator, AlertRule, AlertStatus
from cockpit.metrics.exposition import Reading, no_data
from cockpit.metrics.sources import Sample, ScrapeError, SourceSpec, _sampler

BASELINE_SPAN = 30.0
"""A baseline is the median of each metric over this many seconds before it was asked
for (the system as it was before the run or phase changed it)..."""
BASELINE_POLLS = 3
"""... from at least this many values: fewer there (the watch just started), it waits
for the next polls. One value alone made a noisy P95 the baseline, and a +50% alert
fired on a healthy release."""


@dataclass(frozen=True)
class Notice:
    """Something to say once: polls started failing (``ok=False``), or work again."""

    message: str
    ok: bool


@dataclass(frozen=True)
class Poll:
    """What one poll brought: the sample, the alerts whose state moved, a notice, and
    the baselines it completed."""

    sample: Sample
    changed: list[AlertStatus]
    notice: Notice | None = None
    baselines: list[tuple[str, dict[str, float | None]]] = field(default_factory=list)


class MetricsWatch:
    """Polls a source and evaluates the alert rules, never two polls at once.

    The next poll is scheduled when the last one finished (``interval`` after it), so a
    slow endpoint is never hit by overlapping requests. ``listener`` gets a :class:`Poll`
    each time: the sample, the alerts whose state moved, a notice when polls start
    failing or recover (an error is said once, not at every retry), and baselines asked
    for with :meth:`take_baseline` (see BASELINE_SPAN) as soon as they are complete.
    """

    def __init__(
        self,
        spec: SourceSpec,
        rules: Iterable[AlertRule] = (),
        listener: Callable[[Poll], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.evaluator = AlertEvaluator(rules, clock)
        self.listener = listener
        self._clock = clock
        self._sampler = _sampler(spec)
        self._failing: str | None = None
        self._pending_baselines: dict[str, dict[str, list[float]]] = {}
        self._recent: deque[tuple[float, Mapping[str, Reading]]] = deque()
        self.latest: Sample | None = None
        self.stopped: str | None = None
        """Why the watch stopped (its listener failed: the journal can't be written)."""
        self._new_sample = asyncio.Condition()

    def take_baseline(self, key: str) -> None:
        """Set baseline ``key`` (``run``, a phase id): each metric's median over the
        BASELINE_SPAN before now, completed by the next polls if it has too few values."""
        seen: dict[str, list[float]] = {name: [] for name in self.spec.metrics}
        for _, readings in self._recent:
            self._add(seen, readings)
        self._pending_baselines[key] = seen

    async def next_sample(self) -> Sample:
        """Wait for the next poll to finish; ScrapeError if the watch has stopped."""
        async with self._new_sample:
            if self.stopped is None:
                await self._new_sample.wait()
            if self.stopped is not None:
                raise ScrapeError(f"the metrics watch stopped: {self.stopped}")
            assert self.latest is not None
            return self.latest

    async def run(self) -> None:
        # httpx's import and its client's TLS context cost ~0.1 s: made in a thread, so
        # the loop (a screen's first paint, its keys) does not wait for them.
        client = await asyncio.to_thread(self._client)
        async with client:
            try:
                while True:
                    await self.poll(client)
                    await asyncio.sleep(self.spec.interval)
            except Exception as exc:
                self.stopped = str(exc) or type(exc).__name__
                async with self._new_sample:
                    self._new_sample.notify_all()

    def _client(self):
        import httpx

        headers = {"Accept": "application/json, text/plain"}
        if self.spec.token:
            headers["Authorization"] = f"Bearer {self.spec.token}"
        return httpx.AsyncClient(timeout=self.spec.timeout, headers=headers)

    async def poll(self, client) -> Sample:
        """One poll: sample, baselines, alerts; the listener hears of it."""
        sample = await self._sampler.poll(client, self._clock())
        notice = None
        if sample.error and sample.error != self._failing:
            notice = Notice(
                f"metrics unavailable: {sample.error} (retrying every "
                f"{format_setting(self.spec.interval)})",
                ok=False,
            )
        elif not sample.error and self._failing:
            notice = Notice("metrics available again", ok=True)
        self._failing = sample.error
        baselines = self._fill_baselines(sample)
        readings = (
            sample.readings
            if not sample.error
            else {
                name: sample.readings.get(name) or no_data(sample.error)
                for name in self.spec.metrics
            }
        )
        statuses = self.evaluator.evaluate(readings)
        self.latest = sample
        if self.listener is not None:
            self.listener(Poll(sample, [s for s in statuses if s.changed], notice, baselines))
        async with self._new_sample:
            self._new_sample.notify_all()
        return sample

    def _fill_baselines(self, sample: Sample) -> list[tuple[str, dict[str, float | None]]]:
        if not sample.error:
            self._recent.append((sample.at, sample.readings))
        while self._recent and self._recent[0][0] < sample.at - BASELINE_SPAN:
            self._recent.popleft()
        taken = []
        for key, seen in list(self._pending_baselines.items()):
            self._add(seen, sample.readings, upto=BASELINE_POLLS)
            if all(len(values) >= BASELINE_POLLS for values in seen.values()):
                del self._pending_baselines[key]
                medians = {name: statistics.median(values) for name, values in seen.items()}
                self.evaluator.set_baseline({n: Reading(v) for n, v in medians.items()}, key)
                taken.append((key, dict[str, float | None](medians)))
        return taken

    @staticmethod
    def _add(
        seen: dict[str, list[float]], readings: Mapping[str, Reading], upto: int | None = None
    ) -> None:
        for name, reading in readings.items():
            values = seen.get(name)
            if values is None or reading.value is None:
                continue
            if upto is None or len(values) < upto:
                values.append(reading.value)
