"""The commands that read a runbook and fly nothing: ``validate``, ``import``,
``alerts`` and ``kinds`` (``cockpit.cli`` dispatches to them)."""

from __future__ import annotations

import sys
from pathlib import Path

from cockpit.errors import EXIT_OK, UsageError


def cmd_validate(args) -> int:
    from cockpit.runbook import RunbookInvalid, load_runbook

    problems = []
    for file in args.files:
        try:
            runbook = load_runbook(file)
        except RunbookInvalid as exc:
            problems.extend(exc.problems)
            continue
        print(
            f"ok: {file}: {runbook.name}, {len(runbook.phases)} phases, "
            f"{len(runbook.steps)} steps, {len(runbook.rollback.steps)} rollback steps"
        )
        for warning in runbook.warnings:
            print(warning, file=sys.stderr)
    if problems:
        raise RunbookInvalid(problems)
    return EXIT_OK


def cmd_import(args) -> int:
    from cockpit.importer import import_file
    from cockpit.importer.lint import review_shell

    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and not args.force:
        raise UsageError(f"{output} exists: pass --force to overwrite it")
    imported = import_file(args.file)  # ImportFailed: one line, exit code 2
    review_shell(imported)  # shellcheck's errors: lines to review
    if output is None:
        sys.stdout.write(imported.yaml)
    else:
        try:
            output.write_text(imported.yaml)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    for line in imported.summary.lines():
        print(line, file=sys.stderr)
    return EXIT_OK


def cmd_alerts(args) -> int:
    from cockpit.metrics import format_metric
    from cockpit.metrics.rulefile import prom_duration, prometheus_rules
    from cockpit.runbook import load_runbook

    runbook = load_runbook(args.file)
    if runbook.metrics is None:
        raise UsageError(f"{args.file}: no metrics: section, so no alert rules")
    baselines = dict(args.baseline)
    for metric in baselines:
        if metric not in runbook.metrics.metrics:
            raise UsageError(
                f"--baseline {metric}: not measured; the metrics source gives: "
                f"{', '.join(runbook.metrics.metrics)}"
            )
    if args.prometheus_rules:
        written = prometheus_rules(
            runbook.name,
            runbook.alerts,
            runbook.metrics,
            env=args.env,
            window=args.rate_window,
            baselines=baselines,
        )
        print(written.text(), end="")
        return EXIT_OK
    for rule in runbook.alerts:
        envs = rule.environments
        if args.env is not None and envs is not None and args.env not in envs:
            continue
        limit = (
            f"{rule.relative_to_baseline:+.0%} of its {rule.baseline} baseline"
            if rule.relative_to_baseline is not None
            else format_metric(rule.metric, rule.threshold(None))
        )
        held = "".join(
            f" {word} {prom_duration(seconds)}"
            for word, seconds in (
                ("for", rule.for_seconds),
                ("keep firing", rule.keep_firing_for_seconds),
            )
            if seconds
        )
        where = f" [{', '.join(rule.environments)}]" if rule.environments is not None else ""
        print(
            f"{rule.name} ({rule.severity}): {rule.metric} {rule.direction} {limit}"
            f"{held}; no data: {rule.no_data}{where}"
        )
    return EXIT_OK


def cmd_kinds(args) -> int:
    from cockpit.steps import KindNotFound, get_kind, known_kinds

    for name in args.names or known_kinds():
        try:
            kind = get_kind(name)
        except KindNotFound:
            raise UsageError(
                f"no step kind '{name}'; known kinds: {', '.join(known_kinds())}"
            ) from None
        print(f"{name}: {kind.summary}")
        for label, fields in (("", kind.fields), ("expect.", kind.expect)):
            for field_name, spec in fields.items():
                need = ", required" if spec.required else ""
                choices = f" [{' | '.join(spec.choices)}]" if spec.choices else ""
                print(f"  {label}{field_name} ({spec.type}{need}){choices}: {spec.help}")
        print()
    return EXIT_OK
