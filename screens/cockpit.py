"""CockpitScreen: phases on the left, the selected step's output and detail in the
centre, metrics on the right. It owns the operator's actions; every one is a Binding
with an id, so the footer, the help screen and the command palette say the same."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Label, SelectionList, Static, Tree

from cockpit import events as ev
from cockpit.engine import Engine, EngineError
from cockpit.events import StepStatus
from cockpit.journal import JournalError
from cockpit.metrics import alert_summary
from cockpit.runbook import TROUBLESHOOTING, Phase, Step
from cockpit.runview import RunView
from cockpit.screens.cockpit_keys import COCKPIT_KEYS
from cockpit.screens.confirm_step import ConfirmStepModal
from cockpit.screens.contacts import ContactsScreen
from cockpit.screens.help import HelpModal
from cockpit.screens.history import HistoryScreen
from cockpit.screens.messages import EngineEvent
from cockpit.screens.prompt import PromptModal
from cockpit.screens.rollback import RollbackModal
from cockpit.screens.run_events import ShowsRunEvents
from cockpit.widgets.checklist import Checklist
from cockpit.widgets.keys_footer import KeysFooter
from cockpit.widgets.metrics_panel import MetricsPanel
from cockpit.widgets.output_keys import SEARCH_HINT, OutputKeys
from cockpit.widgets.output_pane import OutputPane
from cockpit.widgets.phase_tree import PhaseTree
from cockpit.widgets.plain import literal, plain
from cockpit.widgets.run_header import RunHeader
from cockpit.widgets.step_detail import StepDetail

NARROW = 100  # below this many columns the metrics slot folds away
Flight = Callable[[], Coroutine[Any, Any, ev.RunStatus | None]]
"""Engine work that flies steps in order: the rest of the run, or of a phase."""
JUMPS = (
    ("the failed step", (StepStatus.FAILED, StepStatus.INTERRUPTED)),
    ("the running step", (StepStatus.RUNNING,)),
    ("the step waiting for you", (StepStatus.WAITING_CONFIRM,)),
)
"""The palette's jumps to a step by its state, most urgent first."""


def _answers(answer: asyncio.Future[bool | None]) -> Callable[[bool | None], None]:
    """A modal's callback that answers ``answer`` once, with what it was dismissed with."""

    def said(choice: bool | None) -> None:
        if not answer.done():
            answer.set_result(choice)

    return said


class CockpitScreen(ShowsRunEvents, OutputKeys, Screen):
    CSS_PATH = "cockpit.tcss"
    BINDINGS = COCKPIT_KEYS

    def __init__(self, engine: Engine, *, protected: bool) -> None:
        # The classes the layout depends on are set before the first styling: set on
        # the first resize, each restyled the whole screen again (~20 ms of first paint).
        super().__init__(classes="-metrics" if engine.runbook.metrics is not None else "")
        self.set_class(self.narrow, "-narrow")
        self.engine = engine
        self.protected = protected
        self.view = RunView(engine.runbook, engine.window_lines, engine.status)
        stopped_at = self.view.load_record(engine.history.steps(engine.run_id))  # if resumed
        self.ticks: dict[str, set[int]] = {}
        self.notes: dict[str, dict[int, str]] = {}
        self.explicit: set[str] = set()
        self._flies_on: dict[str, Flight] = {}
        """Checklists a flight stopped at: recording one flies on (no second ``a``)."""
        self.selected: str = stopped_at or engine.runbook.steps[0].id
        self.flying = False
        self._can_fly = asyncio.Event()
        """Set when the run has started (after rollback readiness): flights wait for it."""
        self.told: set[str] = set()
        """The critical alerts said in a toast: once each; the header keeps showing them."""
        self._telling = False  # a toast of the critical alerts just fired is on its way
        self._shows = self._show_table()

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        engine = self.engine
        yield RunHeader(
            runbook=engine.runbook.name,
            version=engine.runbook.version,
            environment=engine.profile.name,
            label=engine.profile.label,
            run_id=engine.run_id,
            dry_run=engine.dry_run,
            protected=self.protected,
            started=engine.flown_since if self._can_fly.is_set() else None,
            rehearsal=engine.rehearsal,
            eta=engine.eta_now if engine.eta is not None else None,
        )
        yield Static("", id="metrics-strip")
        with Horizontal(id="body"):
            yield PhaseTree(engine.runbook, eta=engine.eta, id="phases")
            with Vertical(id="centre"):
                yield Static(plain(f"resumed run · {engine.stopped}"), id="stopped")
                yield OutputPane(id="output")
                yield Label("", id="output-status")
                yield Input(placeholder=SEARCH_HINT, id="search")
                yield Checklist(id="checklist")
                yield StepDetail(id="detail")
            spec = engine.runbook.metrics
            yield MetricsPanel(
                spec.metrics if spec else (),
                engine.alerts,
                spec.interval if spec else None,
                id="metrics",
            )
        yield KeysFooter(show_command_palette=False, compact=self.narrow)

    def on_mount(self) -> None:
        self.query_one("#stopped").display = bool(self.engine.stopped)
        tree = self.query_one(PhaseTree)
        tree.build(self.view.status, self.view.durations)
        tree.focus()
        self.call_after_refresh(tree.select_step, self.selected)
        self.show_step(self.selected)

    @property
    def narrow(self) -> bool:
        """Too narrow for the metrics slot (the terminal's width: the screen's own is
        known once laid out)."""
        return self.app.size.width < NARROW

    def on_resize(self) -> None:
        self.set_class(self.narrow, "-narrow")
        self.query_one(KeysFooter).compact = self.narrow  # every key, whole

    # ------------------------------------------------------------ what is shown

    def show_step(self, step_id: str) -> None:
        self.selected = step_id
        step = self.engine.runbook.step(step_id)
        self.query_one(OutputPane).show(
            self.view.buffers[step_id], self.engine.output_path(step_id)
        )
        self._show_status()
        result = self.view.results.get(step_id)
        row = None
        if result is not None:
            row = {
                "duration": result.duration,
                "attempt": result.attempt,
                "message": result.message,
            }
        path = self.engine.output_path(step_id)
        self.query_one(StepDetail).show(
            step,
            self.view.status[step_id],
            self.engine.describe(step),
            row,
            str(path).replace(str(Path.home()), "~", 1),
        )
        checklist = self.query_one(Checklist)
        checklist.display = "items" in step.fields
        if checklist.display:
            recorded = self._recorded_ticks(step_id)
            if recorded is None:
                checklist.load(list(step.fields["items"]), self.ticks.get(step_id, set()))
            else:
                ticked, by = recorded
                checklist.load(list(step.fields["items"]), ticked, recorded=by)

    def _recorded_ticks(self, step_id: str) -> tuple[set[int], str] | None:
        """The ticks the record holds for a checklist that ran (None: not recorded yet):
        what the screen shows once recorded is the record, not what was pressed."""
        if self.view.status[step_id] not in (StepStatus.OK, StepStatus.SKIPPED):
            return None
        ticks = self.view.recorded.get(step_id)
        if ticks is not None:
            rows = [(index, t.ticked, t.by) for index, t in ticks.items()]
        else:  # a resumed run: its ticks are in the journal
            rows = [
                (row["idx"], bool(row["ticked"]), row["by"])
                for row in self.engine.history.checklist(self.engine.run_id)
                if row["step_id"] == step_id
            ]
        who = sorted({by for _, _, by in rows}) or ["nobody (skipped)"]
        return {index for index, ticked, _ in rows if ticked}, ", ".join(who)

    def _show_status(self) -> None:
        pane = self.query_one(OutputPane)
        path = self.engine.output_path(self.selected)
        follow = (
            "following"
            if pane.following
            else (f"{pane.unseen:,} new lines · End or f to follow" if pane.unseen else "paused")
        )
        follow = pane.excerpt_note() or follow
        count = pane.live.printed
        self.query_one("#output-status", Label).update(  # one fixed row: no relayout
            f"{follow} · {count:,} line{'s' if count != 1 else ''} · {path.name}", layout=False
        )

    def jumps(self) -> Iterator[tuple[str, str, Callable[[], None], bool]]:
        """The palette's "Go to" entries as (title, help, jump, listed before typing):
        the failed, running or waiting step first, then every step by its title (a long
        runbook is faster found by name than by arrows). Titles are the runbook's text,
        made literal: the palette reads markup."""
        steps = self.engine.runbook.all_steps
        for label, states in JUMPS:
            found = next((s for s in steps if self.view.status[s.id] in states), None)
            if found is not None:
                yield f"Go to: {label}", literal(found.title), partial(self.go_to, found.id), True
        for step in steps:
            state = self.view.status[step.id].value
            yield (
                f"Go to: {literal(step.title)}",
                literal(f"{step.id} · {state}"),
                partial(self.go_to, step.id),
                False,
            )

    def go_to(self, step_id: str) -> None:
        tree = self.query_one(PhaseTree)
        tree.select_step(step_id)
        tree.focus()

    def selected_step(self) -> Step | None:
        node = self.query_one(PhaseTree).cursor_node
        if node is None or node.data is None or node.data.startswith("phase:"):
            return None
        return self.engine.runbook.step(node.data)

    def selected_phase(self) -> Phase | None:
        node = self.query_one(PhaseTree).cursor_node
        if node is None or node.data is None:
            return None
        phase_id = (
            node.data.removeprefix("phase:")
            if node.data.startswith("phase:")
            else (self.engine.runbook.step(node.data).phase)
        )
        return next((p for p in self.engine.runbook.phases if p.id == phase_id), None)

    def on_tree_node_highlighted(self, message: Tree.NodeHighlighted) -> None:
        data = message.node.data
        if data and not data.startswith("phase:"):
            self.show_step(data)

    def on_output_pane_tail_changed(self) -> None:
        self._show_status()

    def on_selection_list_selected_changed(self, message: SelectionList.SelectedChanged):
        self.ticks[self.selected] = set(message.selection_list.selected)

    # ------------------------------------------------------------ engine events

    def on_engine_event(self, message: EngineEvent) -> None:
        """One engine event: the RunView keeps the state, a handler per event type
        shows what changed, the tree and the selected step's detail follow."""
        step_id = self.show_event(message.event)
        if step_id is not None and step_id == self.selected:
            self.show_step(step_id)

    def output_shown(self) -> None:
        self._show_status()

    def _show_table(self) -> dict[type[ev.Event], Callable[[Any], object]]:
        """What each event type changes on screen, beyond the tree and the detail."""

        def header() -> RunHeader:
            return self.query_one(RunHeader)

        return {
            ev.StepFinished: lambda e: header().refresh(),  # the remaining ETA drops
            ev.StepStarted: self._started,
            ev.GuardChanged: lambda e: header().set_banner(" · ".join(self.engine.guards)),
            ev.RollbackStarted: self._rolling_back,
            ev.MetricsSampled: self._sampled,
            ev.MetricsNotice: self._metrics_notice,
            ev.AlertChanged: self._alert_changed,
            ev.DiskLow: self._disk_low,
            ev.RunReopened: self._run_reopened,
            ev.RunFinished: self._run_finished,
        }

    def _started(self, event: ev.StepStarted) -> None:
        self.query_one("#stopped").display = False  # the resumed run flies on
        if event.attempt == event.first_attempt:
            self.query_one(PhaseTree).select_step(event.step_id)

    def _rolling_back(self, event: ev.RollbackStarted) -> None:
        self.notify(f"Rolling back: {event.reason}", severity="warning")
        header = self.query_one(RunHeader)
        header.set_alarm("")
        header.set_eta(None)  # the ETA is the main steps': a rolled-back run has none

    def _run_finished(self, event: ev.RunFinished) -> None:
        """The run ended (the last step, a rollback's last step, a failure with nothing
        left to do): the header keeps saying so, with the final time."""
        self.query_one(RunHeader).finish(event.status, event.duration)
        self.notify(
            f"Run {self.view.ending}: {event.message}",
            title="Run ended",
            severity="information" if event.status == ev.RunStatus.OK else "error",
        )

    def _run_reopened(self, event: ev.RunReopened) -> None:
        header = self.query_one(RunHeader)
        header.reopen(self.engine.eta_now if self.engine.eta is not None else None)
        header.set_note(f"reopened by {event.by}")
        self.notify(f"Run reopened by {event.by}: {event.reason}", severity="warning")

    def _metrics_notice(self, event: ev.MetricsNotice) -> None:
        super()._metrics_notice(event)
        if not event.ok:
            self.notify(event.message, title="Metrics", severity="warning")

    def _alarm(self, event: ev.AlertChanged) -> None:
        """A critical alert during or after a deploy phase offers the rollback."""
        critical = [a for a in self.view.firing.values() if a.severity == "critical"]
        if not critical or not self.view.deploying or self.engine.in_rollback:
            self.query_one(RunHeader).set_alarm("")
            return
        names = ", ".join(a.name for a in critical)
        self.query_one(RunHeader).set_alarm(f"CRITICAL {names}", "ctrl+r rolls back")
        if event.state == "firing" and event.severity == "critical" and not self._telling:
            self._telling = True  # alerts firing together, in one sample: one toast
            self.call_after_refresh(self._tell_critical)

    def _tell_critical(self) -> None:
        """One toast for the critical alerts that fired since the last one (each is
        said once; the header keeps naming them all)."""
        self._telling = False
        if isinstance(self.app.screen, RollbackModal):  # it shows the alerts
            return
        new = [
            alert
            for alert in self.view.firing.values()
            if alert.severity == "critical" and alert.name not in self.told
        ]
        if not new or not self.view.deploying or self.engine.in_rollback:
            return
        self.told.update(alert.name for alert in new)
        said = "; ".join(
            f"{a.name}: {alert_summary(a.metric, a.value, a.threshold, a.reason)}" for a in new
        )
        self.notify(
            f"{said}. Press ctrl+r to roll back.",
            title="Critical alert" if len(new) == 1 else f"{len(new)} critical alerts",
            severity="error",
            timeout=30,
        )

    # ------------------------------------------------------------ actions

    def started(self) -> None:
        """The run is recorded started: a flight asked for before it flies now, and the
        header's clock counts from here."""
        self._can_fly.set()
        for header in self.query(RunHeader):  # none yet when it started with the screen
            header.start(self.engine.flown_since)

    def _fly(self, work: Coroutine, done=None) -> bool:
        """Run engine work as a worker; one at a time."""
        if self.flying:
            self.notify("A step is running: wait for it, or cancel it (c)", severity="warning")
            return False
        self.flying = True

        async def fly() -> None:
            try:
                if not self._can_fly.is_set():
                    self.notify("Checking rollback readiness: the flight starts when it is done")
                    await self._can_fly.wait()
                result = await work
                if done is not None:
                    done(result)
            except (EngineError, JournalError) as exc:
                self.notify(str(exc), title="Stopped", severity="error", timeout=15)
            except asyncio.CancelledError:
                work.close()  # the app quit before it started: it never will
                raise
            finally:
                self.flying = False

        self._shows = self._show_table()

        self.run_worker(fly(), group="engine", exit_on_error=False)
        return True

    def action_run_step(self) -> None:
        step = self.selected_step()
        if step is None:
            self.action_run_phase()
            return
        if self.engine.status[step.id] == StepStatus.OK and step.phase != TROUBLESHOOTING:
            self.notify(
                f"'{step.title}' already ran ok; select it and press r again "
                "after skip/cancel if it must run again",
                severity="information",
            )
            return
        items = step.fields.get("items")
        if items and len(self.ticks.get(step.id, ())) < len(items):
            self.notify(
                f"Tick every item of '{step.title}' first (space), or skip it (s)",
                title="Checklist",
                severity="warning",
            )
            return
        self.explicit.add(step.id)
        go_on = self._flies_on.pop(step.id, None)
        if go_on is None:
            self._fly(self.engine.run_step(step))
        else:  # the flight stopped at this checklist: recording it flies on
            self._fly(self._record_then(step, go_on), partial(self._stopped, go_on))

    async def _record_then(self, step: Step, go_on: Flight) -> ev.RunStatus | None:
        if await self.engine.run_step(step) != StepStatus.OK:
            return self.engine.outcome()
        return await go_on()

    def action_run_phase(self) -> None:
        phase = self.selected_phase()
        if phase is None:
            self.notify("Select a step of a phase (rollback runs with ctrl+r)")
            return
        self._flight(partial(self.engine.run_phase, phase))

    def action_run_all(self) -> None:
        self._flight(self.engine.run_remaining)

    def _flight(self, go: Flight) -> None:
        """Fly steps in order until something stops the flight (``_stopped`` says what)."""
        self._fly(go(), partial(self._stopped, go))

    def _stopped(self, go: Flight, status: ev.RunStatus | None) -> None:
        """Say why an automatic run stopped, and show the step that stopped it; a
        checklist it stopped at flies on from where it was once recorded (``r``)."""
        waiting = next((s for s in self.engine.runbook.steps if not self.engine.accepted(s)), None)
        if status in (None, ev.RunStatus.OK) or waiting is None:
            if self.engine.ended is None:  # else the run's end says it
                self.notify("All steps done" if waiting is None else "Phase done")
            return
        self.query_one(PhaseTree).select_step(waiting.id)
        state = self.engine.status[waiting.id]
        if "items" in waiting.fields and state == StepStatus.WAITING_CONFIRM:
            self._flies_on[waiting.id] = go
            self.notify(
                f"'{waiting.title}': tick its items (space), then run it (r)", title="Checklist"
            )
        elif state == StepStatus.FAILED:
            self.notify(
                f"'{waiting.title}' failed. r retries, s skips, ctrl+r rolls back",
                title="Stopped",
                severity="error",
            )
        elif state == StepStatus.INTERRUPTED:
            self.notify(
                f"'{waiting.title}' was interrupted: r retries it, s skips it",
                title="Interrupted",
                severity="warning",
            )
        else:
            self.notify(f"Stopped at '{waiting.title}' ({status.value})")

    def action_skip(self) -> None:
        step = self.selected_step()
        done = (StepStatus.OK, StepStatus.SKIPPED, StepStatus.RUNNING)
        if step is None or self.engine.status[step.id] in done:
            self.notify("Select a step that has not run to skip it")
            return

        if not self._can_fly.is_set():
            self.notify("Checking rollback readiness: skip when the run has started")
            return

        def skip(reason: str | None) -> None:
            if reason:
                self.engine.skip(step, reason)

        self.app.push_screen(
            PromptModal(
                f"Skip '{step.title}'", "Why? The reason goes into the record.", required=True
            ),
            skip,
        )

    def action_cancel(self) -> None:
        if not self.engine.busy:
            self.notify("Nothing is running")
            return
        self.engine.cancel()

    def action_tick(self) -> None:
        checklist = self.query_one(Checklist)
        if checklist.display and not checklist.disabled:
            checklist.action_tick_next()

    def action_untick(self) -> None:
        checklist = self.query_one(Checklist)
        if checklist.display and not checklist.disabled:
            checklist.untick()

    def action_note(self) -> None:
        checklist = self.query_one(Checklist)
        if not checklist.display or checklist.highlighted is None:
            self.notify("Select a checklist item to add a note to it")
            return
        step_id, index = self.selected, checklist.highlighted
        item = checklist.get_option_at_index(index).prompt
        notes = self.notes.setdefault(step_id, {})

        def keep(note: str | None) -> None:
            if note is not None:
                notes[index] = note

        self.app.push_screen(
            PromptModal(
                f"Note on '{item}'",
                "Kept with the tick in the record.",
                required=False,
                value=notes.get(index, ""),
            ),
            keep,
        )

    def action_history(self) -> None:
        self.app.push_screen(HistoryScreen(self.engine.history))

    def action_rollback(self) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                reason = self._why()[0] if self._why() else "the operator's call"
                self.run_worker(self._roll_back(reason), group="rollback", exit_on_error=False)

        self._rollback_modal(confirmed)

    async def ask_rollback(self, reason: str) -> bool:
        """The runbook says to roll back on a failure: show why and what, let the
        operator confirm (the engine then rolls back) or decline (ctrl+r later)."""
        answer: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._rollback_modal(_answers(answer), reason)
        yes = bool(await answer)
        if not yes:
            self.notify(
                f"Not rolled back ({reason}); ctrl+r rolls back when you decide", severity="warning"
            )
        return yes

    def _why(self) -> list[str]:
        engine = self.engine
        why = [
            f"alert {a.rule.name} ({a.rule.severity}) firing: "
            f"{alert_summary(a.rule.metric, a.value, a.threshold, a.no_data_reason or '')}"
            for a in engine.firing_alerts()
        ]
        results = self.view.results
        return why + [
            f"step '{s.id}' failed: {results[s.id].message}"
            for s in engine.runbook.steps
            if engine.status[s.id] == StepStatus.FAILED and s.id in results
        ]

    def _rollback_modal(self, callback, reason: str = "") -> None:
        engine = self.engine
        why = self._why()
        if reason and not any(reason in line for line in why):
            why.insert(0, reason)  # the failure's event may not have reached the screen
        plan = [(s.title, engine.describe(s)) for s in engine.runbook.rollback.steps]
        running = next(
            (s.title for s in engine.runbook.steps if engine.status[s.id] == StepStatus.RUNNING),
            None,
        )
        state = ("finished: " if engine.finished else "in progress: ") + engine.summary()
        if running:
            state += f"; '{running}' is running and will be cancelled first"
        self.app.clear_notifications()  # the modal says why; no toast covers its keys
        self.app.push_screen(
            RollbackModal(
                why=why,
                criteria=list(engine.runbook.rollback.criteria),
                plan=plan,
                state=state,
                contacts=engine.runbook.contacts,
            ),
            callback,
        )

    async def _roll_back(self, reason: str) -> None:
        if self.flying:
            self.engine.cancel()
            deadline = asyncio.get_running_loop().time() + self.engine.kill_grace + 5
            while self.flying and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        self._fly(self.engine.rollback(f"operator: {reason}"))

    def action_export(self) -> None:
        from cockpit import report  # imported when asked: it costs the first paint ~20 ms

        history, run_id = self.engine.history, self.engine.run_id
        try:  # the journal is read here: its connection belongs to this thread
            record = report.build(history, run_id)
        except JournalError as exc:
            self.notify(f"No deployment record: {exc}", title="Report", severity="error")
            return
        self._write_record(record, history.run_dir(run_id) / "report.md")

    @work(thread=True, group="export", exit_on_error=False)
    def _write_record(self, record: dict[str, Any], path: Path) -> None:
        """Render and write the record off the UI loop; say when it is written."""
        from cockpit import report

        try:
            path.write_text(report.to_markdown(record))
            path.with_suffix(".html").write_text(report.to_html(record))
        except OSError as exc:
            self.app.call_from_thread(
                self.notify,
                f"The deployment record was not written: {exc}",
                title="Report",
                severity="error",
                timeout=15,
            )
            return
        self.app.call_from_thread(
            self.notify, f"Deployment record written to {path} (and report.html)", title="Report"
        )

    def action_chart(self) -> None:
        if self.engine.runbook.metrics is None:
            self.notify("This runbook has no metrics: section to chart")
            return
        from cockpit.screens.chart import ChartScreen  # plotext costs the first paint ~40 ms

        self.app.push_screen(
            ChartScreen(
                self.engine.history, self.engine.run_id, self.engine.runbook, self.engine.alerts
            )
        )

    def action_contacts(self) -> None:
        self.app.push_screen(ContactsScreen(self.engine.runbook))

    def action_help(self) -> None:
        self.app.push_screen(HelpModal(self.active_bindings))

    async def ask_confirmation(self, step: Step, description: str) -> bool | None:
        """True runs the step, False declines it, None goes back (the step waits)."""
        answer: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self.app.push_screen(ConfirmStepModal(step, description), _answers(answer))
        return await answer
