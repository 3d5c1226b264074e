"""Broken runbooks: every problem named as path:line:col, all of them in one pass.

Each case in ``CASES`` is one kind of broken runbook with the exact ``line:col`` the
problem must be reported at and a fragment of the message. Positions were worked out by
hand from the YAML text (1-based lines and columns), not copied from the loader.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import COCKPIT
from helpers import ROOT as REPO

from cockpit.runbook import Problem, RunbookInvalid, load_runbook, parse_runbook
from cockpit.steps import known_kinds

KNOWN = ", ".join(known_kinds())


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def problems_of(path: Path) -> list[Problem]:
    """The problems ``load_runbook`` reports for ``path`` (fails if it loads)."""
    with pytest.raises(RunbookInvalid) as caught:
        load_runbook(path)
    assert caught.value.problems, "RunbookInvalid without problems"
    return caught.value.problems


def write(tmp_path: Path, text: str, name: str = "book.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


# (id, yaml text, "line:col", message fragment)
CASES = [
    (
        "yaml-syntax",
        """
        runbook: Demo
        phases:
          - id: prepare: now
            steps: []
        """,
        "3:16",
        "YAML syntax: mapping values are not allowed here",
    ),
    (
        "yaml-syntax-unclosed-flow",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - {id: a, run: echo
        """,
        "6:1",
        "YAML syntax: expected ',' or '}'",
    ),
    (
        "empty-file",
        "# nothing but a comment\n",
        "1:1",
        "empty runbook: expected a mapping with 'runbook' and 'phases'",
    ),
    (
        "top-level-not-a-mapping",
        """
        - runbook: Demo
        """,
        "1:1",
        "the runbook: expected a mapping, found a list",
    ),
    (
        "two-documents",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        ---
        runbook: Other
        """,
        "8:1",
        "expected one YAML document, found another here",
    ),
    (
        "missing-runbook",
        """
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        """,
        "1:1",
        "the runbook: missing required key 'runbook'",
    ),
    (
        "missing-phases",
        """
        runbook: Demo
        version: "1.0"
        """,
        "1:1",
        "the runbook: missing required key 'phases'",
    ),
    (
        "unknown-top-level-key",
        """
        runbook: Demo
        varibles: {A: b}
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        """,
        "2:1",
        "the runbook: unknown key 'varibles' (did you mean 'variables'?); expected one of: "
        "runbook, version, description, variables, secrets, metrics, alerts, phases, "
        "rollback",
    ),
    (
        "runbook-name-not-a-string",
        """
        runbook: [Demo]
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        """,
        "1:10",
        "'runbook': expected a string, found a list",
    ),
    (
        "unknown-step-key",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                timout: 5s
        """,
        "7:9",
        "step 'greet': unknown key 'timout' (did you mean 'timeout'?); a shell step takes:",
    ),
    (
        "unknown-phase-key",
        """
        runbook: Demo
        phases:
          - id: prepare
            stpes:
              - id: greet
                run: echo hi
        """,
        "4:5",
        "phase: unknown key 'stpes' (did you mean 'steps'?)",
    ),
    (
        "duplicate-step-id-in-phase",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
              - id: greet
                run: echo again
        """,
        "7:13",
        "duplicate step id 'greet' (first at line 5)",
    ),
    (
        "duplicate-step-id-across-phases",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
          - id: deploy
            steps:
              - id: greet
                run: echo again
        """,
        "9:13",
        "duplicate step id 'greet' (first at line 5)",
    ),
    (
        "duplicate-step-id-in-rollback",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        rollback:
          steps:
            - id: greet
              run: echo undo
        """,
        "9:11",
        "duplicate step id 'greet' (first at line 5)",
    ),
    (
        "duplicate-phase-id",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: one
                run: echo 1
          - id: prepare
            steps:
              - id: two
                run: echo 2
        """,
        "7:9",
        "duplicate phase id 'prepare' (first at line 3)",
    ),
    (
        "invalid-step-id",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: say hello!
                run: echo hi
        """,
        "5:13",
        "step id: 'say hello!' is not a valid id",
    ),
    (
        "unknown-kind",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                kind: shel
                run: echo hi
        """,
        "6:15",
        "unknown step kind 'shel' (did you mean 'shell'?); known kinds: " + KNOWN,
    ),
    (
        "no-kind-and-no-run",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                title: Say hello
        """,
        "5:9",
        "step: missing 'kind' (or 'run' for a shell step); known kinds: " + KNOWN,
    ),
    (
        "undefined-variable-in-title",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                title: "Hi ${WHO}"
                run: echo hi
        """,
        "6:20",
        "undefined variable ${WHO}; define it under 'variables:' or 'secrets:'",
    ),
    (
        "undefined-variable-did-you-mean",
        """
        runbook: Demo
        variables: {GREETING: hello}
        phases:
          - id: prepare
            steps:
              - id: greet
                title: ${GREETNG} world
                run: echo hi
        """,
        "7:16",
        "undefined variable ${GREETNG} (did you mean 'GREETING'?)",
    ),
    (
        "undefined-variable-in-cwd",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                cwd: /srv/${APP_DIR}/current
        """,
        "7:19",
        "undefined variable ${APP_DIR}",
    ),
    (
        "undefined-variable-in-block-scalar-later-line",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                description: |
                  Says hello.
                  Then greets ${WHOEVER} twice.
        """,
        "9:23",
        "undefined variable ${WHOEVER}",
    ),
    (
        "undefined-variable-in-env-map",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo "$TOKEN"
                env: {TOKEN: "${API_TOKN}"}
        """,
        "7:23",
        "undefined variable ${API_TOKN}",
    ),
    (
        "undefined-variable-in-phase-title",
        """
        runbook: Demo
        phases:
          - id: prepare
            title: Prepare ${TARGET}
            steps:
              - id: greet
                run: echo hi
        """,
        "4:20",
        "undefined variable ${TARGET}",
    ),
    (
        "undefined-variable-in-variable",
        """
        runbook: Demo
        variables:
          HOST: db.${DOMAIN}
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        """,
        "3:12",
        "undefined variable ${DOMAIN}",
    ),
    (
        "undefined-variable-in-checklist-given-as-one-string",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: check
                kind: manual
                items: "Tell ${TEAM}"
        """,
        "7:22",
        "undefined variable ${TEAM}",
    ),
    (
        "invalid-reference",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                title: "${not-a-name}"
                run: echo hi
        """,
        "6:17",
        "'${not-a-name}' is not a valid reference",
    ),
    (
        "bad-duration",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                timeout: 5 parsecs
        """,
        "7:18",
        "step 'greet' timeout: expected a duration such as 500ms, 30s, 5m or 1h30m",
    ),
    (
        "bad-retry-delay",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                retry_delay: soon
        """,
        "7:22",
        "step 'greet' retry_delay: expected a duration",
    ),
    (
        "not-a-number-duration",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                timeout: .nan
        """,
        "7:18",
        "step 'greet' timeout: expected a duration",
    ),
    (
        "bad-on-failure",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                on_failure: retry
        """,
        "7:21",
        "step 'greet' on_failure: 'retry' is not one of: stop, continue, rollback",
    ),
    (
        "empty-phases",
        """
        runbook: Demo
        phases: []
        """,
        "2:9",
        "'phases' is empty: a runbook needs at least one phase",
    ),
    (
        "phases-not-a-list",
        """
        runbook: Demo
        phases: {id: prepare}
        """,
        "2:9",
        "'phases': expected a list of phases, found a mapping",
    ),
    (
        "phase-with-empty-steps",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps: []
        """,
        "4:12",
        "phase 'prepare' has no steps",
    ),
    (
        "phase-without-steps",
        """
        runbook: Demo
        phases:
          - id: prepare
            title: Prepare
        """,
        "3:5",
        "phase: missing required key 'steps'",
    ),
    (
        "retries-not-a-number",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                retries: "two"
        """,
        "7:18",
        "step 'greet' retries: expected a whole number from 0 to 100, found 'two'",
    ),
    (
        "retries-negative",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                retries: -1
        """,
        "7:18",
        "step 'greet' retries: expected a whole number from 0 to 100, found '-1'",
    ),
    (
        "retries-tagged-int-that-is-not",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                retries: !!int two
        """,
        "7:18",
        "step 'greet' retries: 'two' is not a valid tag:yaml.org,2002:int",
    ),
    (
        "retries-impossible-date",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                retries: 2024-13-45
        """,
        "7:18",
        "step 'greet' retries: '2024-13-45' is not a valid tag:yaml.org,2002:timestamp",
    ),
    (
        "confirm-not-a-boolean",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                confirm: maybe
        """,
        "7:18",
        "step 'greet' confirm: expected true or false, found 'maybe'",
    ),
    (
        "unknown-tag",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                optional: !please yes
        """,
        "7:19",
        "step 'greet' optional: could not determine a constructor for the tag '!please'",
    ),
    (
        "when-not-a-mapping",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                when: production
        """,
        "7:15",
        "step 'greet' when: expected a mapping, found 'production'",
    ),
    (
        "run-not-a-string",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: [echo, hi]
        """,
        "6:14",
        "step 'greet' run: expected a string, found a list",
    ),
    (
        "duplicate-yaml-key",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                run: echo again
        """,
        "7:9",
        "duplicate key 'run' (first at line 6)",
    ),
    (
        "bad-merge-key",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                <<: 1
        """,
        "7:13",
        "step: expected a mapping or list of mappings for merging, but found scalar",
    ),
    (
        "manual-step-without-items",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: check
                kind: manual
        """,
        "5:9",
        "step 'check': missing required key 'items' for a manual step",
    ),
    (
        "manual-step-takes-no-expect",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: check
                kind: manual
                items: [Notified]
                expect: {output: ok}
        """,
        "8:17",
        "step 'check': a manual step takes no 'expect'",
    ),
    (
        "regex-does-not-compile",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                expect: {output: "(["}
        """,
        "7:26",
        "step 'greet' expect.output: not a valid regular expression",
    ),
    (
        "regex-repeat-too-large",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                expect:
                  output: x{4294967296}
        """,
        "8:19",
        "step 'greet' expect.output: not a valid regular expression: the repetition number",
    ),
    (
        "number-too-long",
        f"""
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                retries: {"9" * 5000}
        """,
        "7:18",
        "step 'greet' retries: '999",
    ),
    (
        "unknown-expect-key",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                expect: {exitcode: 0}
        """,
        "7:18",
        "unknown key 'exitcode' (did you mean 'exit_code'?)",
    ),
    (
        "variable-cycle",
        """
        runbook: Demo
        variables:
          A: "${B}"
          B: "x${A}"
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        """,
        "3:3",
        "variables refer to each other in a cycle: A, B",
    ),
    (
        "variable-refers-to-itself",
        """
        runbook: Demo
        variables:
          PATH_EXTRA: "${PATH_EXTRA}:/opt/bin"
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        """,
        "3:3",
        "variables refer to each other in a cycle: PATH_EXTRA",
    ),
    (
        "variable-hides-builtin",
        """
        runbook: Demo
        variables: {env: prod}
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        """,
        "2:13",
        "variable 'env' hides the built-in ${env}",
    ),
    (
        "bad-secret-name",
        """
        runbook: Demo
        secrets: [API_TOKEN, api-key]
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        """,
        "2:22",
        "secret name 'api-key': use letters, digits and '_'",
    ),
    (
        "rollback-not-a-mapping",
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
        rollback: [undo]
        """,
        "7:11",
        "'rollback': expected a mapping, found a list",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [pytest.param(text, where, fragment, id=name) for name, text, where, fragment in CASES],
)
def test_broken_runbook_names_the_exact_place(tmp_path, text, where, fragment):
    path = write(tmp_path, text)
    shown = [str(problem) for problem in problems_of(path)]
    prefix = f"{path}:{where}: "
    matching = [line for line in shown if line.startswith(prefix) and fragment in line]
    assert matching, f"no problem at {where} containing {fragment!r}; got:\n" + "\n".join(shown)


def test_the_table_covers_many_distinct_kinds():
    names = [name for name, *_ in CASES]
    assert len(names) == len(set(names)) >= 12


def test_undefined_variable_points_at_each_reference_in_turn(tmp_path):
    # "$$" is a literal dollar, so "$${A}" is no reference; the two real ones are found
    # where they are written, not both at the first "${A}" in the text.
    path = write(
        tmp_path,
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                title: "$${A} ${A} and ${A}"
                run: echo hi
    """,
    )
    assert [str(p) for p in problems_of(path)] == [
        f"{path}:6:23: undefined variable ${{A}}; define it under 'variables:' or "
        "'secrets:' (built-ins: env, run_id, date, now, operator, host, runbook, version, "
        "duration, status, run_url)",
        f"{path}:6:32: undefined variable ${{A}}; define it under 'variables:' or "
        "'secrets:' (built-ins: env, run_id, date, now, operator, host, runbook, version, "
        "duration, status, run_url)",
    ]


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_positions_follow_yaml_line_breaks(tmp_path, newline):
    text = dedent("""
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
                title: "Hi ${WHO}"
    """).replace("\n", newline)
    path = tmp_path / "book.yaml"
    path.write_bytes(text.encode())
    shown = [str(p) for p in problems_of(path)]
    assert len(shown) == 1
    assert shown[0].startswith(f"{path}:7:20: undefined variable ${{WHO}}")


def test_undefined_name_in_a_variable_is_not_also_called_a_cycle(tmp_path):
    path = write(
        tmp_path,
        """
        runbook: Demo
        variables:
          HOST: db.${DOMAIN}
          URL: https://${HOST}/
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo hi
    """,
    )
    [problem] = problems_of(path)
    assert str(problem).startswith(f"{path}:3:12: undefined variable ${{DOMAIN}}")


def test_shell_run_is_not_templated(tmp_path):
    # bash expands ${NAME} in `run` from the environment; the loader must not judge it,
    # and must keep the text exactly as written.
    path = write(
        tmp_path,
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - id: greet
                run: echo "${NOT_A_RUNBOOK_VARIABLE:-fallback} ${HOME}"
    """,
    )
    runbook = load_runbook(path)
    assert runbook.step("greet").fields["run"] == (
        'echo "${NOT_A_RUNBOOK_VARIABLE:-fallback} ${HOME}"'
    )


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"runbook: Demo\nphases:\n  - id: caf\xe9\n")
    [problem] = problems_of(path)
    assert str(problem) == f"{path}:3:12: not UTF-8 text: a runbook must be UTF-8"


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    [problem] = problems_of(path)
    assert (problem.line, problem.col) == (0, 0)
    assert str(problem) == f"{path}: no such file"


def test_folder_instead_of_file(tmp_path):
    [problem] = problems_of(tmp_path)
    assert str(problem) == f"{tmp_path}: not a regular file (a folder)"


BROKEN_MANY = """
runbook: Demo
variables:
  A: "${B}"
  B: "${A}"
phases:
  - id: prepare
    steps:
      - id: greet
        run: echo hi
        timout: 5s
      - id: greet
        kind: shel
        run: echo again
      - id: wait
        run: sleep 1
        timeout: forever
        on_failure: panic
        retries: "two"
        confirm: maybe
        title: "Wait for ${NOBODY}"
        expect: {output: "(["}
      - id: check
        kind: manual
  - id: prepare
    steps: []
"""


def test_all_problems_in_one_pass_sorted_by_position(tmp_path):
    path = write(tmp_path, BROKEN_MANY)
    problems = problems_of(path)
    assert [(p.line, p.col) for p in problems] == [
        (3, 3),  # variables refer to each other in a cycle
        (10, 9),  # timout (did you mean timeout)
        (11, 13),  # duplicate step id greet
        (12, 15),  # unknown kind shel
        (16, 18),  # bad duration
        (17, 21),  # bad on_failure
        (18, 18),  # retries "two"
        (19, 18),  # confirm maybe
        (20, 26),  # ${NOBODY}
        (21, 26),  # regex
        (22, 9),  # manual without items
        (24, 9),  # duplicate phase id
        (25, 12),  # phase without steps
    ]
    assert all(p.path == str(path) for p in problems)
    assert len(problems) == 13


def test_problems_of_several_files_stay_grouped_by_file():
    problems = [
        Problem("b.yaml", 9, 1, "late in b"),
        Problem("a.yaml", 5, 1, "late in a"),
        Problem("b.yaml", 1, 1, "early in b"),
        Problem("a.yaml", 2, 1, "early in a"),
    ]
    assert [str(p) for p in RunbookInvalid(problems).problems] == [
        "b.yaml:1:1: early in b",
        "b.yaml:9:1: late in b",
        "a.yaml:2:1: early in a",
        "a.yaml:5:1: late in a",
    ]


def test_problem_str_without_position():
    assert str(Problem("x.yaml", 0, 0, "no such file")) == "x.yaml: no such file"
    assert str(Problem("x.yaml", 3, 7, "bad")) == "x.yaml:3:7: bad"


# ----------------------------------------------------------------------------- the CLI


def test_cli_validate_reports_every_problem_and_exits_2(tmp_path):
    path = write(tmp_path, BROKEN_MANY)
    done = subprocess.run(
        [COCKPIT, "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.splitlines()
    located = [line for line in lines if line.startswith(f"{path}:")]
    assert len(located) == 13
    assert located[0].startswith(f"{path}:3:3: variables refer to each other in a cycle")
    assert located[-1].startswith(f"{path}:25:12: phase 'prepare' has no steps")
    assert lines[-1] == "cockpit: 13 problems found"


def test_cli_validate_several_files_groups_problems_by_file(tmp_path):
    first = write(tmp_path, BROKEN_MANY, "first.yaml")
    second = write(tmp_path, "runbook: Demo\nphases: []\n", "second.yaml")
    done = subprocess.run(
        [COCKPIT, "validate", str(first), str(second)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    located = [line for line in done.stderr.splitlines() if ".yaml:" in line]
    files = [line.split(":", 1)[0] for line in located]
    assert files == [str(first)] * 13 + [str(second)]


@pytest.mark.parametrize(
    "content",
    [b"runbook: [unclosed\n", b"\xff\xfe", b"phases: []\n", b"- just\n- a list\n"],
    ids=["syntax", "binary", "no-name", "list"],
)
def test_cli_validate_never_shows_a_traceback(tmp_path, content):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    done = subprocess.run(
        [COCKPIT, "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith(f"{path}:")


def test_cli_validate_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    done = subprocess.run(
        [COCKPIT, "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{path}: no such file" in done.stderr


def test_cli_validate_good_runbook_exits_0():
    done = subprocess.run(
        [COCKPIT, "validate", str(REPO / "runbooks" / "hello.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")


# ----------------------------------------------------------------------- good runbooks

# The example from the format description, made valid: the rollback placeholder is a
# real step and the secret is used.
FORMAT_EXAMPLE = """
runbook: Hello                 # required
version: "1.0"
variables: {GREETING: hello}   # ${NAME} in step fields; environment variables in shell steps
secrets: [API_TOKEN]           # names; values from the environment profile or the process env
phases:                        # required, non-empty, ordered
  - id: prepare                # unique slug
    title: "Phase 1: Preparation"
    steps:
      - id: greet              # unique across the runbook
        title: Say hello
        kind: shell            # default when `run` is given
        run: echo "$GREETING"  # bash script
        timeout: 30s           # 90s, 5m, 1h30m
        retries: 2
        retry_delay: 1s
        on_failure: stop       # stop | continue | rollback
        confirm: false         # true: operator must confirm before it runs
        optional: false
        when: {env: [staging, production]}
        expect: {exit_code: 0, output: "hello"}   # output: a regex that must match
        env: {AUTH: "Bearer ${API_TOKEN}"}
      - id: ok-to-go
        kind: manual
        items: ["Stakeholders notified", "Dashboard open"]
rollback:
  criteria: ["Error rate > 5% for 5 minutes"]
  steps:
    - id: undo-greet
      title: Take the greeting back
      run: echo "goodbye"
      on_failure: continue
"""


def test_format_example_loads(tmp_path):
    runbook = load_runbook(write(tmp_path, FORMAT_EXAMPLE))
    assert runbook.name == "Hello"
    assert runbook.version == "1.0"
    assert runbook.variables == {"GREETING": "hello"}
    assert runbook.secrets == ("API_TOKEN",)
    [phase] = runbook.phases
    assert (phase.id, phase.title) == ("prepare", "Phase 1: Preparation")
    greet, ok = phase.steps
    assert (greet.kind, greet.timeout, greet.retries, greet.retry_delay) == ("shell", 30.0, 2, 1.0)
    assert (greet.on_failure, greet.confirm, greet.optional) == ("stop", False, False)
    assert greet.when.env == ("staging", "production")
    assert greet.expect == {"exit_code": 0, "output": "hello"}
    assert greet.fields["env"] == {"AUTH": "Bearer ${API_TOKEN}"}
    assert (ok.kind, ok.fields["items"]) == ("manual", ["Stakeholders notified", "Dashboard open"])
    assert runbook.rollback.criteria == ("Error rate > 5% for 5 minutes",)
    assert [s.id for s in runbook.rollback.steps] == ["undo-greet"]
    assert runbook.rollback.steps[0].phase == "rollback"


def test_hello_runbook_loads():
    runbook = load_runbook(REPO / "runbooks" / "hello.yaml")
    assert runbook.name == "Hello"
    assert runbook.steps
    assert runbook.rollback.steps


def test_merge_keys_fill_in_and_explicit_keys_win():
    runbook = parse_runbook(
        dedent("""
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - &base
                id: first
                run: echo hi
                timeout: 5m
                retries: 1
              - <<: *base
                id: second
                retries: 3
    """),
        "book.yaml",
    )
    first, second = runbook.steps
    assert (first.id, first.retries) == ("first", 1)
    assert (second.id, second.kind, second.timeout, second.retries) == ("second", "shell", 300.0, 3)
    assert second.fields["run"] == "echo hi"


def test_a_bad_value_in_a_merged_step_is_reported_for_each_step(tmp_path):
    path = write(
        tmp_path,
        """
        runbook: Demo
        phases:
          - id: prepare
            steps:
              - &base
                id: first
                run: echo hi
                retries: !!int many
              - <<: *base
                id: second
    """,
    )
    assert [str(p) for p in problems_of(path)] == [
        f"{path}:8:18: step 'first' retries: 'many' is not a valid tag:yaml.org,2002:int",
        f"{path}:8:18: step 'second' retries: 'many' is not a valid tag:yaml.org,2002:int",
    ]


def test_control_character_is_located(tmp_path):
    path = tmp_path / "book.yaml"
    path.write_bytes(b"runbook: Demo\nphases:\n  - id: pre\x07pare\n")
    [problem] = problems_of(path)
    assert str(problem).startswith(f"{path}:3:12: control character U+0007 (BEL)")


def test_a_character_yaml_can_not_read_is_located(tmp_path):
    path = tmp_path / "book.yaml"
    path.write_text("runbook: Demo\nphases:\n  - id: pre\ufffepare\n")
    [problem] = problems_of(path)
    assert str(problem).startswith(f"{path}:3:12: YAML syntax: special characters are not")


def test_variables_may_refer_to_each_other_in_any_order():
    runbook = parse_runbook(
        dedent("""
        runbook: Demo
        variables:
          URL: https://${HOST}/${run_id}
          HOST: db.${DOMAIN}
          DOMAIN: example.org
          PRICE: "$$5"
        phases:
          - id: prepare
            steps:
              - id: greet
                title: Open ${URL} for ${PRICE}
                run: echo hi
    """),
        "book.yaml",
    )
    assert runbook.step("greet").title == "Open ${URL} for ${PRICE}"


def test_a_field_with_choices_names_them(tmp_path):
    path = tmp_path / "choices.yaml"
    path.write_text(
        textwrap.dedent("""\
        runbook: Choices
        phases:
          - id: db
            steps:
              - {id: up, kind: migrate, dsn: "x", folder: m, action: migrat}
    """)
    )
    with pytest.raises(RunbookInvalid) as caught:
        load_runbook(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:5:62: step 'up' action: 'migrat' is not one of: migrate, undo, plan "
        "(did you mean 'migrate'?)"
    ]


def test_contacts_checklists_and_quick_actions(tmp_path):
    path = write(
        tmp_path,
        """
        runbook: Sections
        contacts:
          on_call:
            - {role: Primary, name: Dana Ortiz, phone: "+1 555 0100", email: dana@example.com}
            - {role: Manager, name: Sam Lee}
          escalation: ["On-call engineer (15 minutes)", "CTO (critical only)"]
        checklists:
          post-deployment:
            day-1: [Monitor error rates, Check backup success]
            week-1: [Review dashboards]
          sign-off: [Team notified]
        troubleshooting:
          - {id: db-ping, title: "Database: check the connection", run: "true"}
        phases:
          - {id: p, steps: [{id: a, run: "true"}]}
    """,
    )
    runbook = load_runbook(path)
    assert runbook.contacts.on_call[0].phone == "+1 555 0100"
    assert runbook.contacts.on_call[1].email == ""
    assert runbook.contacts.escalation[1] == "CTO (critical only)"
    assert runbook.checklists == (
        ("post-deployment / day-1", ("Monitor error rates", "Check backup success")),
        ("post-deployment / week-1", ("Review dashboards",)),
        ("sign-off", ("Team notified",)),
    )
    assert [s.id for s in runbook.troubleshooting] == ["db-ping"]
    assert runbook.step("db-ping").phase == "troubleshooting"
    assert [s.id for s in runbook.steps] == ["a"]  # quick actions are not part of the flow


def test_bad_contacts_are_located(tmp_path):
    path = write(
        tmp_path,
        """
        runbook: Sections
        contacts:
          on_call:
            - {role: Primary, phone: "+1 555 0100"}
          pager: x
        troubleshooting:
          - {id: a, run: "true"}
        phases:
          - {id: p, steps: [{id: a, run: "true"}]}
    """,
    )
    messages = [f"{p.line}:{p.col} {p.message}" for p in problems_of(path)]
    assert messages[0] == "4:7 contact: missing required key 'name'"
    assert messages[1].startswith("5:3 'contacts': unknown key 'pager'")
    assert messages[2] == "7:10 duplicate step id 'a' (first at line 9)"
