"""``shell``: a bash script in its own process group, output streamed and masked.

Variables and secrets reach the script as environment variables, never pasted into
its text: ``run`` is not templated, so a value can not turn into shell code. Runs as
``bash --noprofile --norc -eo pipefail -c RUN`` (the first failing command fails the
step, as in CI runners).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.patterns import PatternError
from cockpit.process import describe_exit, run_process
from cockpit.steps.base import DESTRUCTIVE, Field, StepContext, StepKind, StepResult

BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]


class ShellStep(StepKind):
    name = "shell"
    summary = "a bash script; variables and secrets arrive as environment variables"
    fields = {
        "run": Field("str", required=True, template=False, help="the bash script"),
        "cwd": Field("str", help="folder to run in"),
        "env": Field("str_map", help="extra environment variables (templated)"),
    }
    expect = {
        "exit_code": Field("int", minimum=0, maximum=255, help="expected exit code (default 0)"),
        "output": Field("regex", help="a regular expression the output must match"),
    }

    def describe(self, fields: Mapping[str, Any]) -> str:
        lines = [fields["run"].rstrip("\n")]
        if fields.get("cwd"):
            lines.insert(0, f"# in {fields['cwd']}")
        return "\n".join(lines)

    def destructive(self, fields: Mapping[str, Any]) -> bool:
        return bool(DESTRUCTIVE.search(str(fields.get("run", ""))))

    async def run(self, ctx: StepContext) -> StepResult:
        env = {**ctx.env, **ctx.fields.get("env", {})}
        try:
            code = await run_process(
                [*BASH, ctx.fields["run"]],
                env=env,
                write=ctx.write,
                kill_grace=ctx.kill_grace,
                cwd=ctx.fields.get("cwd") or None,
                started=ctx.process_started,
            )
        except FileNotFoundError as exc:
            missing = ctx.fields.get("cwd") if exc.filename != "bash" else "bash"
            return StepResult(False, f"cannot start: {missing!s}: no such file or folder")
        except PermissionError as exc:
            return StepResult(False, f"cannot start: {exc.filename}: permission denied")
        expected = ctx.expect.get("exit_code", 0)
        if code != expected:
            return StepResult(False, f"{describe_exit(code)}, expected {expected}", code)
        pattern = ctx.expect.get("output")
        if pattern is None:
            return StepResult(True, describe_exit(code), code)
        try:
            matched = await ctx.output_matches(pattern)
        except PatternError as exc:  # a variable's value made it so
            return StepResult(False, f"expect.output: not a valid regular expression: {exc}", code)
        if not matched:
            return StepResult(False, f"output did not match /{pattern}/", code)
        return StepResult(True, describe_exit(code), code)
