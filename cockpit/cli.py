"""The ``cockpit`` command.

Exit codes: 0 all ok; 1 a step failed (or the run rolled back); 2 bad input (runbook,
config, arguments, journal); 3 the run paused (waiting for an operator, or SIGHUP);
130 cancelled or interrupted; 141 stdout was closed by its reader (``| head``).
``--help``, ``validate``, ``plan`` and headless ``run`` never import Textual.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from cockpit.cli_parser import build_parser
from cockpit.cli_runbook import cmd_alerts, cmd_import, cmd_kinds, cmd_validate
from cockpit.cli_shell import cmd_completion, complete
from cockpit.errors import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PAUSED,
    CockpitError,
    UsageError,
)

EXIT_PIPE_CLOSED = 141  # stdout closed by its reader, as a shell reports SIGPIPE


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["__complete"]:  # the completion scripts' helper: no parser, no help
        command = partial(complete, argv[1:])
    else:
        args = build_parser().parse_args(argv)
        command = partial(COMMANDS[args.command], args)
    from cockpit.controls import visible_stream

    # Runbook titles, journal rows, step output and server answers are printed: none
    # may drive the terminal (the TUI writes to sys.__stderr__, past these).
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = map(visible_stream, streams)
    try:
        code = command()
        sys.stdout.flush()  # here, where a closed pipe can still be told apart
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except CockpitError as exc:
        print(exc.report(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    finally:
        sys.stdout, sys.stderr = streams


def _stdout_closed() -> int:
    """Whoever read the output has gone (``cockpit history --json | head -1``): end
    quietly, as a Unix tool killed by SIGPIPE would, with its exit code (128 + 13).
    Python's recipe: stdout now goes to devnull, so flushing it at exit raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE_CLOSED


# ------------------------------------------------------------------ commands


def _config(args):
    from cockpit.config import load_config

    return load_config(args.config)


def _profile(config, name: str | None):
    """The environment profile ``name``; ``sandbox``, when the config does not define
    it, is the running `cockpit sandbox` (its secrets and clients join this process's
    environment, for the steps)."""
    from cockpit.sandbox import session

    if (name or config.environment) != "sandbox" or "sandbox" in config.environments:
        return config.profile(name)
    profile, environ = session.running()
    os.environ.update(environ)
    return profile


def _sandbox_servers(config) -> tuple[str | None, str | None]:
    """A configured ``sandbox`` environment's own PostgreSQL and Redis (its secrets
    DATABASE_URL, REDIS_URL), used instead of the embedded ones."""
    configured = config.environments.get("sandbox")
    database_url, redis_url = (
        configured.secret(name)[0] if configured and name in configured.secrets else None
        for name in ("DATABASE_URL", "REDIS_URL")
    )
    return database_url, redis_url


def _shared_journal(args, config) -> bool:
    """Whether the journal is PostgreSQL ([team] journal_dsn; --journal PATH is SQLite)."""
    return bool(config.journal_dsn) and not getattr(args, "journal", None)


def _journal(args, config):
    if _shared_journal(args, config):
        from cockpit.journal_pg import PgJournal

        return PgJournal(config.journal_url(), runs_dir=config.journal_path.parent / "runs")
    from cockpit.journal import Journal

    path = Path(args.journal) if getattr(args, "journal", None) else config.journal_path
    return Journal(path, synchronous=config.synchronous)


def cmd_plan(args) -> int:
    from cockpit import readiness
    from cockpit.durations import format_duration, format_setting
    from cockpit.eta import EtaReading, from_rehearsal
    from cockpit.runbook import WithPending, load_runbook, resolve_fields
    from cockpit.steps import get_kind
    from cockpit.values import new_run_id, resolve_values

    config = _config(args)
    runbook = load_runbook(args.file)
    profile = _profile(config, args.env)
    values, env, redactor, missing = resolve_values(
        runbook, profile, config.operator_name, new_run_id()
    )
    journal_path = Path(args.journal) if args.journal else config.journal_path
    eta = (
        from_rehearsal(_journal(args, config), runbook, profile.name)
        if _shared_journal(args, config) or journal_path.exists()
        else None
    )
    print(f"{runbook.name} {runbook.version}".rstrip() + f"  ({args.file})")
    print(f"environment: {profile.name}{' (asks to type its name)' if profile.confirm else ''}")
    if runbook.window is not None:
        print(f"window: {format_setting(runbook.window)}")
    if eta is not None:
        whole = EtaReading(eta.total(), time.time(), 0.0, runbook.window)
        print(f"ETA {whole.remaining.text()} (timings of rehearsal {eta.source})")
        if whole.warning():
            print(f"warning: {whole.warning()}")
    for name in runbook.variables:
        print(f"  ${{{name}}} = {redactor.redact(values[name])}")
    for name in runbook.secrets:
        state = "MISSING" if any(m.startswith(f"{name} ") for m in missing) else "set"
        print(f"  secret {name}: {state}")

    def show(step, number: str) -> None:
        policy = [
            f"timeout {format_duration(step.timeout)}" if step.timeout else "",
            f"retries {step.retries}" if step.retries else "",
            f"on_failure {step.on_failure}" if step.on_failure != "stop" else "",
            "confirm" if step.confirm else "",
            "optional" if step.optional else "",
        ]
        skip = "" if step.when.applies(profile.name) else f"  [skipped on {profile.name}]"
        extra = ", ".join(filter(None, policy))
        print(
            f"  {number} {step.id} ({step.kind}{', ' + extra if extra else ''}): {step.title}{skip}"
        )
        fields, expect = resolve_fields(step, WithPending(values))
        for line in redactor.redact(get_kind(step.kind).explain(fields, expect)).splitlines():
            print(f"       {line}")

    for p_index, phase in enumerate(runbook.phases, 1):
        phase_eta = f"  ETA {eta.phase(phase).text()}" if eta is not None else ""
        print(f"\n{p_index}. {phase.title} [{phase.id}]{phase_eta}")
        for s_index, step in enumerate(phase.steps, 1):
            show(step, f"{p_index}.{s_index}")
    if runbook.rollback.steps or runbook.rollback.criteria:
        print("\nRollback")
        for criterion in runbook.rollback.criteria:
            print(f"  when: {criterion}")
        for s_index, step in enumerate(runbook.rollback.steps, 1):
            show(step, f"R.{s_index}")
    if missing:
        print(f"\nsecrets not set: {'; '.join(missing)}")
    subject = readiness.Subject(runbook, profile.name, values, env, missing)
    found = asyncio.run(readiness.check(subject))
    print("", *(redactor.redact(line) for line in found.lines()), sep="\n")
    if readiness.needs_reason(profile, found):  # `run` would refuse: a pipeline learns it here
        refused = redactor.redact(readiness.refusal(found, profile.name))
        print(f"cockpit: run would refuse it: {refused}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_run(args) -> int:
    from cockpit.journal import Journal
    from cockpit.runbook import load_runbook

    if args.dry_run and args.rehearsal:
        raise UsageError(
            "--rehearsal records the run's timings and --dry-run records nothing: choose one"
        )
    config = _config(args)
    runbook = load_runbook(args.file)
    profile = _profile(config, args.env)
    if args.dry_run:
        with tempfile.TemporaryDirectory(prefix="cockpit-dry-") as scratch:
            journal = Journal(Path(scratch) / "journal.sqlite3")
            try:
                return _fly(args, config, runbook, profile, journal, dry_run=True)
            finally:
                journal.close()
    journal = _journal(args, config)
    return _fly(args, config, runbook, profile, journal, rehearsal=args.rehearsal)


def cmd_resume(args) -> int:
    from cockpit.engine import Interrupted
    from cockpit.runbook import load_runbook

    config = _config(args)
    journal = _journal(args, config)
    run = journal.find_run(args.run_id)
    if run["status"] in ("ok", "rolled-back"):
        raise UsageError(f"run {run['id']} is {run['status']}: nothing to resume")
    live = journal.live_in(run)
    if live:
        raise UsageError(
            f"run {run['id']} is live in {live}: it is not flown twice; watch "
            "it, or wait for it to end"
        )
    if journal.elsewhere(run):
        raise UsageError(
            f"run {run['id']} was flown on {run['host']}: its run lock and its "
            f"output files are there; resume it on {run['host']}"
        )
    runbook = load_runbook(run["runbook_path"])
    if runbook.sha256 != run["runbook_sha256"]:
        raise UsageError(
            f"{run['runbook_path']} changed since run {run['id']} started "
            "(its sha256 differs): resume needs the runbook it started with"
        )
    profile = _profile(config, run["environment"])
    action = "retry" if args.retry_interrupted else "skip" if args.skip_interrupted else None
    if action is None and not args.headless:
        action = "ask"  # the TUI shows the interrupted step; the operator decides
    return _fly(args, config, runbook, profile, journal, resume=(run["id"], Interrupted(action)))


def cmd_repair(args) -> int:
    from cockpit.events import StepRepaired
    from cockpit.runbook import load_runbook, resolve_fields
    from cockpit.steps.migrate import MigrateError, repair
    from cockpit.values import resolve_values

    config = _config(args)
    journal = _journal(args, config)
    run = journal.find_run(args.run_id)
    live = journal.live_in(run)
    if live:
        raise UsageError(f"run {run['id']} is live in {live}: repair it once it has ended")
    runbook = load_runbook(run["runbook_path"])
    try:
        step = runbook.step(args.step)
    except KeyError:
        raise UsageError(
            f"run {run['id']}'s runbook {run['runbook_path']} has no step '{args.step}'"
        ) from None
    if step.kind != "migrate":
        raise UsageError(
            f"step '{step.id}' is a {step.kind} step: repair settles the history of a migrate step"
        )
    profile = _profile(config, run["environment"])
    values, _, redactor, missing = resolve_values(runbook, profile, config.operator_name, run["id"])
    if missing:
        raise UsageError("secrets not usable: " + "; ".join(missing))
    try:
        fields, _ = resolve_fields(step, values)
    except KeyError as exc:
        raise UsageError(
            f"step '{step.id}': {exc.args[0]}: repair needs fields that "
            "do not depend on other steps' details"
        ) from None
    how, file = ("rerun", args.rerun) if args.rerun else ("mark-applied", args.mark_applied)
    try:
        done = asyncio.run(
            repair(
                fields,
                runbook.path.resolve().parent,
                file,
                how,
                lambda line: print(redactor.redact(line), file=sys.stderr),
            )
        )
    except MigrateError as exc:
        raise UsageError(redactor.redact(str(exc))) from None
    done = redactor.redact(done)
    journal.apply(
        StepRepaired(run["id"], time.time(), step.id, file, how, config.operator_name, done)
    )
    print(done)
    print(f"then: cockpit resume {run['id']} --headless")
    return EXIT_OK


EXIT_CODES = {
    "ok": EXIT_OK,
    "failed": EXIT_FAILED,
    "rolled-back": EXIT_FAILED,
    "paused": EXIT_PAUSED,
    "cancelled": EXIT_CANCELLED,
}


def _fly(
    args,
    config,
    runbook,
    profile,
    journal,
    *,
    dry_run=False,
    resume=None,
    rehearsal=False,
    yes_note: str = "ticked by --yes",
) -> int:
    from cockpit.engine import Engine
    from cockpit.headless import TerminalOperator
    from cockpit.steps.base import Operator
    from cockpit.values import new_run_id

    protected = profile.confirm and not dry_run and args.confirm_env != profile.name
    operator: Operator
    if args.headless:
        operator = TerminalOperator(
            config.operator_name,
            assume_yes=args.yes,
            interactive=sys.stdin.isatty(),
            yes_note=yes_note,
        )
    else:
        from cockpit.app import TuiOperator

        operator = TuiOperator(config.operator_name, yes_note if args.yes else None)
    signer = config.signer() if not dry_run else None
    if signer is not None and profile.confirm:
        signer.ready()  # a protected environment's run starts signed, or not at all
    run_id = resume[0] if resume else new_run_id()
    team = _team(args, config, profile, run_id) if config.team and not dry_run else None
    engine = Engine(
        runbook,
        journal,
        config=config,
        profile=profile,
        operator=operator,
        dry_run=dry_run,
        run_id=run_id,
        team=team,
        rehearsal=rehearsal,
    )
    if team is not None:
        team.on_lost = partial(_lost, engine, args.headless)
        if resume:  # an approval taken before the run was resumed is not taken twice
            team.used(
                e["data"].get("signed", {}).get("nonce")
                for e in journal.events(run_id)
                if e["type"] == "StepApproved"
            )
    if signer is not None:
        from cockpit.chain import Sealer

        engine.subscribe(Sealer(journal, signer, config.identity, start=profile.confirm))
    try:
        if team is not None:
            team.start(runbook.path)
        if resume:
            engine.prepare_resume(resume[1])
        new_run = not (resume or dry_run)  # readiness is checked before a new run's start
        if not args.headless:
            return _fly_tui(engine, operator, protected, new_run, args.override_readiness)
        if new_run:
            from cockpit.readiness import before_start

            before_start(engine, override=args.override_readiness)
        return _fly_headless(args, engine, operator, protected)
    finally:
        if team is not None:
            team.close()


def _team(args, config, profile, run_id: str):
    """Team mode: the environment's lock for this run (taken over with --take-over and
    the environment's name typed), or TeamError naming who holds it."""
    from cockpit.team import Holder, LockHeld, TeamRun

    team = TeamRun(
        config.team, profile.name, run_id, config.identity, allowed_signers=config.allowed_signers
    )
    raw = team.lock()
    if raw is None:
        return team
    try:
        holder = Holder.parse(raw)
        if not getattr(args, "take_over", False):
            raise LockHeld(profile.name, holder)
        if args.confirm_env != profile.name:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"taking '{profile.name}' over from {holder} needs its name "
                    f"typed at a terminal, or --confirm-env {profile.name}"
                )
            print(f"'{profile.name}' is held by {holder}.")
            try:
                answer = input(f"Type '{profile.name}' to take its lock over: ")
            except EOFError:
                answer = ""
            if answer.strip() != profile.name:
                raise UsageError("environment name not confirmed: nothing was run")
        team.take_over(raw)
    except BaseException:
        team.client.close()
        raise
    return team


def _lost(engine, headless: bool, why: str) -> None:
    """Another run took the environment's lock: the running step finishes, then the
    run pauses (called from the heartbeat thread)."""
    engine.pause_after_step(why)
    if headless:
        print(f"cockpit: {why}: pausing after the current step", file=sys.stderr, flush=True)


def _checked(engine):
    """Rollback readiness for the cockpit's thread, which imports what it needs (the
    probes' clients), not the first paint."""
    from cockpit.readiness import checked

    return checked(engine)


def _fly_tui(engine, operator, protected: bool, new_run: bool, override) -> int:
    from cockpit.app import CockpitApp, terminal_stream

    if not sys.stdin.isatty() or not sys.stderr.isatty():
        raise UsageError("the TUI needs a terminal: use --headless in scripts and CI")
    readiness = partial(_checked, engine) if new_run else None
    app = CockpitApp(engine, operator, protected=protected, readiness=readiness, override=override)
    for stale in ("COLUMNS", "LINES"):  # would pin the layout to a size the terminal isn't
        os.environ.pop(stale, None)
    with terminal_stream():
        status = app.run()
    if app.error:
        raise UsageError(app.error)
    if status is None:
        return EXIT_OK
    print(f"cockpit: run {engine.run_id} {status.value}; journal {engine.journal.path}")
    return EXIT_CODES[status.value]


def _fly_headless(args, engine, operator, protected: bool) -> int:
    from cockpit.events import RunStatus
    from cockpit.headless import EtaPrinter, HeadlessPrinter, confirm_environment
    from cockpit.journal import JournalError
    from cockpit.stopped import hung_up

    profile, journal, runbook = engine.profile, engine.journal, engine.runbook
    dry_run, interactive = engine.dry_run, operator.interactive

    async def fly() -> RunStatus:
        if protected:
            if not interactive:
                raise UsageError(
                    f"environment '{profile.name}' is protected: type its name "
                    f"at a terminal, or pass --confirm-env {profile.name}"
                )
            if not await confirm_environment(profile.name, profile.label):
                raise UsageError("environment name not confirmed: nothing was run")
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, engine.cancel)
        loop.add_signal_handler(signal.SIGTERM, engine.cancel)
        loop.add_signal_handler(signal.SIGHUP, lambda: engine.pause_after_step(hung_up()))
        printer = HeadlessPrinter(runbook)
        if engine.stopped:
            printer.say(f"cockpit: resuming run {engine.run_id}: {engine.stopped}")
        engine.subscribe(printer)
        engine.subscribe(EtaPrinter(engine, printer.say))
        return await engine.run()

    try:
        status = asyncio.run(fly())
    except JournalError as exc:
        raise JournalError(
            f"{exc}\ncockpit: the run stopped with its record intact up to "
            f"here; once the journal can be written again (disk space, "
            f"permissions): cockpit resume {engine.run_id} --headless"
        ) from None
    if not dry_run and status != RunStatus.OK:
        print(f"cockpit: journal {journal.path}; output in {journal.run_dir(engine.run_id)}")
        if status != RunStatus.ROLLED_BACK:
            print(f"cockpit: continue with: cockpit resume {engine.run_id} --headless")
    return EXIT_CODES[status.value]


def _team_config(config):
    if config.team is None:
        where = config.path or "the configuration"
        raise UsageError(f"team mode is off: set [team] redis_url in {where}")
    return config.team


def cmd_watch(args) -> int:
    from cockpit.watching import find_watched

    config = _config(args)
    team = _team_config(config)
    journal = _journal(args, config)
    watched = asyncio.run(
        find_watched(
            team,
            journal,
            args.target,
            config.environments,
            waiting=(lambda text: print(f"cockpit: {text}", file=sys.stderr, flush=True))
            if args.wait
            else None,
        )
    )
    if not args.headless:
        if not sys.stdin.isatty() or not sys.stderr.isatty():
            raise UsageError("the TUI needs a terminal: use cockpit watch --headless")
        from cockpit.app import WatchApp, terminal_stream

        with terminal_stream():
            WatchApp(team, watched, config.identity, config.signer()).run()
        return EXIT_OK
    return asyncio.run(_watch_headless(team, watched))


async def _watch_headless(team, watched) -> int:
    from cockpit.headless import HeadlessPrinter
    from cockpit.watching import watch_events

    print(f"cockpit: watching {watched.note}", flush=True)
    printer = HeadlessPrinter(watched.runbook)
    said = partial(print, "cockpit:", file=sys.stderr, flush=True)
    async for event in watch_events(team, watched, held=said):
        printer(event)
    return EXIT_OK


def cmd_replay(args) -> int:
    from cockpit.cli_replay import replay

    return replay(args, _journal(args, _config(args)))


def cmd_approve(args) -> int:
    from cockpit.journal import RunNotFound
    from cockpit.watching import approve

    config = _config(args)
    team = _team_config(config)
    try:
        run_id = _journal(args, config).find_run(args.run_id)["id"]
    except RunNotFound:
        run_id = args.run_id  # flown from another host: its journal is not here
    print(asyncio.run(approve(team, run_id, args.step, config.identity, config.signer())))
    return EXIT_OK


def cmd_history(args) -> int:
    from cockpit.durations import format_duration

    config = _config(args)
    journal = _journal(args, config)
    if not (args.json or args.plain) and sys.stdin.isatty() and sys.stdout.isatty():
        from cockpit.app import HistoryApp, terminal_stream

        with terminal_stream():
            chosen = HistoryApp(journal).run()
        journal.close()
        if chosen is None:
            return EXIT_OK
        again = ["resume", chosen]  # as `cockpit resume RUN` would, with this journal
        for name in ("config", "journal"):
            if getattr(args, name):
                again += [f"--{name}", str(getattr(args, name))]
        return cmd_resume(build_parser().parse_args(again))
    runs = journal.runs(limit=args.limit)
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
        return EXIT_OK
    if not runs:
        print(f"no runs yet in {journal.path}")
        return EXIT_OK
    from datetime import datetime

    header = f"{'RUN':<22} {'STATUS':<12} {'ENV':<12} {'STARTED':<17} {'TOOK':>8}  RUNBOOK"
    print(header)
    for run in runs:
        started = datetime.fromtimestamp(run["started_at"]).strftime("%Y-%m-%d %H:%M")
        print(
            f"{run['id']:<22} {run['status']:<12} {run['environment']:<12} {started:<17} "
            f"{format_duration(run['duration']):>8}  {run['runbook']} ({run['operator']})"
            f"{' · rehearsal' if run['rehearsal'] else ''}"
        )
    return EXIT_OK


def cmd_report(args) -> int:
    from cockpit import report

    config = _config(args)
    journal = _journal(args, config)
    if args.compare:
        text = report.COMPARE_FORMATS[args.format](
            report.compare(journal, args.run_id, args.compare)
        )
    else:
        record = report.build(journal, args.run_id, config.allowed_signers)
        text = report.FORMATS[args.format](record)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_signoff(args) -> int:
    from cockpit.identity import current
    from cockpit.report import when

    config = _config(args)
    who = current(args.name) if args.name is not None else config.identity
    journal = _journal(args, config)
    run = journal.find_run(args.run_id)
    signed = journal.sign_off(
        run["id"], args.role, who, args.note, replace=args.replace, signer=config.signer()
    )
    again = " (replacing the earlier sign-off)" if signed["replaces"] else ""
    print(
        f"run {run['id']} signed off as {args.role} by {who.label} on {who.host} "
        f"at {when(signed['at'])}{again}"
    )
    return EXIT_OK


def cmd_verify(args) -> int:
    from cockpit.chain import verify

    config = _config(args)
    journal = _journal(args, config)
    run = journal.find_run(args.run_id)
    verdict = verify(journal, run["id"], config.allowed_signers)
    print(f"run {run['id']}: {verdict}")
    return EXIT_OK if verdict.ok else EXIT_FAILED


def cmd_locate(args) -> int:
    from cockpit.config import find_config

    config = _config(args)
    path = Path(args.journal) if args.journal else config.journal_path
    print(f"config:  {find_config(args.config) or '(none: defaults)'}")
    if _shared_journal(args, config):
        print(f"journal: PostgreSQL, its DSN in {config.journal_dsn}")
    else:
        print(f"journal: {path}")
    print(f"output:  {path.parent / 'runs'}")
    return EXIT_OK


def cmd_demo(args) -> int:
    """Start the sandbox, fly the flagship against it (TUI or headless), stop it."""
    from cockpit.runbook import load_runbook
    from cockpit.sandbox.demo import FLAGSHIP, Sandbox

    config = _config(args)
    runbook = load_runbook(FLAGSHIP)
    if not args.headless and not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("the TUI needs a terminal: use cockpit demo --headless in scripts")
    folder = Path(tempfile.mkdtemp(prefix="cockpit-sandbox-"))
    database_url, redis_url = _sandbox_servers(config)
    sandbox = Sandbox(
        folder,
        drill=args.drill,
        database_url=database_url,
        redis_url=redis_url,
        say=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(f"cockpit demo: starting the sandbox in {folder}", file=sys.stderr, flush=True)
    try:
        profile, environ = sandbox.start()
        os.environ.update(environ)  # its secrets, clients and their settings
        args.confirm_env = None
        return _fly(
            args,
            config,
            runbook,
            profile,
            _journal(args, config),
            rehearsal=True,
            yes_note="demo: acknowledged by cockpit demo --yes",
        )
    finally:
        sandbox.stop()


def cmd_sandbox(args) -> int:
    """Start the sandbox and a shell in it, or print the running one's exports."""
    from cockpit.sandbox import session

    if args.action == "env":
        _, environ = session.running()
        print(session.export_lines(environ), end="")
        return EXIT_OK
    return session.serve(
        args.drill,
        not args.no_shell,
        lambda text: print(text, file=sys.stderr, flush=True),
        *_sandbox_servers(_config(args)),
    )


COMMANDS = {
    "demo": cmd_demo,
    "sandbox": cmd_sandbox,
    "validate": cmd_validate,
    "plan": cmd_plan,
    "run": cmd_run,
    "resume": cmd_resume,
    "repair": cmd_repair,
    "history": cmd_history,
    "report": cmd_report,
    "signoff": cmd_signoff,
    "verify": cmd_verify,
    "import": cmd_import,
    "kinds": cmd_kinds,
    "alerts": cmd_alerts,
    "locate": cmd_locate,
    "watch": cmd_watch,
    "approve": cmd_approve,
    "completion": cmd_completion,
    "replay": cmd_replay,
}
