"""Hostile input to loading and validation: each case ends in one located line and exit
code 2 (never a hang, a traceback, or a run), and leaves nothing behind."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import COCKPIT, cockpit

from cockpit.controls import control_name, find_control, visible
from cockpit.runbook import parse_runbook

# A subprocess that hangs fails the test instead of the suite.
HANG = 30

GOOD = """\
runbook: Demo
phases:
  - id: prepare
    steps:
      - id: greet
        run: echo hi
"""


def refused(*args: object, **kwargs) -> str:
    """Run ``cockpit ARGS``; it must refuse (exit 2, no traceback); its stderr."""
    done = cockpit(*args, timeout=HANG, **kwargs)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    return done.stderr


def write(tmp_path: Path, text: str, name: str = "book.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ------------------------------------------------------- not a regular file, too big

COMMANDS = [("validate",), ("plan",), ("run", "--headless", "--yes"), ("import",)]


def fifo(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "book.yaml"
    os.mkfifo(path)
    return path, "not a regular file (a FIFO)"


def folder(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "book.yaml"
    path.mkdir()
    return path, "not a regular file (a folder)"


def device(tmp_path: Path) -> tuple[Path, str]:
    return Path("/dev/zero"), "not a regular file (a character device)"


def unix_socket(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "book.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))  # the socket file stays after the test closes it
    server.close()
    return path, "not a regular file (a socket)"


def too_big(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "book.yaml"
    with path.open("wb") as file:
        file.truncate(50 * 2**20)  # sparse: 52.4 MB of NULs, no disk used
    return path, "52.4 MB is over the 16 MiB limit for a runbook"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("make", [fifo, folder, device, unix_socket, too_big])
def test_only_a_regular_file_of_sane_size_is_read(tmp_path, command, make):
    path, why = make(tmp_path)
    stderr = refused(*command, path)
    assert f"{path}: {why}" in stderr
    assert len([line for line in stderr.splitlines() if str(path) in line]) == 1
    assert not (tmp_path / "data").exists()  # no journal, no run


def test_a_config_or_secret_file_that_is_a_fifo_is_refused_too(tmp_path):
    book = write(tmp_path, GOOD.replace("runbook: Demo\n", "runbook: Demo\nsecrets: [TOKEN]\n"))
    config, secret = tmp_path / "cockpit.toml", tmp_path / "token"
    os.mkfifo(config)
    assert f"cockpit: {config}: not a regular file (a FIFO)" in refused(
        "plan", "--config", config, book
    )
    config.unlink()
    os.mkfifo(secret)
    config.write_text(f'[environments.local.secrets]\nTOKEN = "file:{secret}"\n')
    stderr = refused("run", "--headless", "--yes", "--config", config, book)
    assert f"TOKEN (looked in {secret} (not a regular file (a FIFO)))" in stderr
    assert cockpit("history", "--json", timeout=HANG).stdout.strip() == "[]"  # no run


def test_a_markdown_fifo_is_refused_too(tmp_path):
    path = tmp_path / "book.md"
    os.mkfifo(path)
    assert f"{path}: not a regular file (a FIFO)" in refused("validate", path)


def test_a_runbook_at_the_limit_is_read(tmp_path):
    from cockpit.runbook import MAX_RUNBOOK_BYTES

    path = tmp_path / "book.yaml"
    path.write_text(GOOD + "#" * (MAX_RUNBOOK_BYTES - len(GOOD) - 1) + "\n")
    assert path.stat().st_size == MAX_RUNBOOK_BYTES
    done = cockpit("validate", path, timeout=HANG)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------- control characters


CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x9b", "\u202e", "\u2066"]


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_control_character_in_yaml_is_refused_where_it_is(tmp_path, char):
    path = tmp_path / "book.yaml"
    path.write_text(GOOD.replace("echo hi", f"echo h{char}i"), encoding="utf-8")
    stderr = refused("run", "--headless", "--yes", path)
    assert stderr.startswith(f"{path}:6:20: control character {control_name(char)}")
    assert not (tmp_path / "data").exists()


def escaped(tmp_path: Path, escape: str) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(
        GOOD.replace("run: echo hi", f'run: "echo h{escape}i"').replace(
            "id: greet", 'id: greet\n        title: "Greet"'
        )
    )
    return path


@pytest.mark.parametrize(
    "escape, what",
    [("\\0", "control character U+0000 (NUL)"), ("\\ud800", "U+D800 (a lone surrogate)")],
)
def test_what_no_command_can_hold_is_refused_when_written_as_an_escape(tmp_path, escape, what):
    path = escaped(tmp_path, escape)
    stderr = refused("run", "--headless", "--yes", path)
    assert stderr.startswith(
        f"{path}:7:14: {what}, written as an escape: no command, file name or environment "
        "variable can hold it"
    )
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("escape", ["\\e[1m", "\\x9b", "\\u202E", "\\a"])
def test_other_escapes_are_written_visibly_on_purpose_and_load(tmp_path, escape):
    done = cockpit("validate", escaped(tmp_path, escape), timeout=HANG)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u202e"], ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("command", [("validate",), ("import",), ("run", "--headless", "--yes")])
def test_a_control_character_in_markdown_is_refused_before_import(tmp_path, char, command):
    path = tmp_path / "book.md"
    path.write_text(f"# Demo\n\n## Deploy\n\n```bash\ntouch made{char}\n```\n", encoding="utf-8")
    stderr = refused(*command, path)
    assert f"{path}:6:11: control character {control_name(char)}" in stderr
    assert not list(tmp_path.glob("made*"))
    assert not (tmp_path / "data").exists()


def test_a_control_character_in_a_comment_is_refused_too(tmp_path):
    path = tmp_path / "book.yaml"
    path.write_text(GOOD + "# fine\u202e\n")
    assert f"{path}:7:7: control character U+202E (RIGHT-TO-LEFT OVERRIDE)" in refused(
        "validate", path
    )


def test_tab_and_line_ends_are_text():
    assert find_control("a\tb\r\nc\nd\re") is None
    assert find_control("ok\x1b[2J") == (2, "\x1b")
    assert control_name("\x00") == "U+0000 (NUL)"
    assert control_name("\x7f") == "U+007F (DEL)"
    for char in CONTROLS:  # what is refused is what visible would show
        assert visible(char) != char


# ------------------------------------------------------------------ alias bombs


def laughs(depth: int) -> str:
    """Billion laughs in a ``json:`` field: ``depth`` levels of ten aliases each."""
    lines = [
        "runbook: Laughs", "phases:", "  - id: p", "    steps:", "      - id: s",
        "        kind: http", "        url: http://127.0.0.1:9/", "        method: POST",
        "        json:", '          l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol"]',
    ]  # fmt: skip
    for level in range(1, depth + 1):
        lines.append(f"          l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("depth", [6, 9, 30])
def test_billion_laughs_is_refused_at_the_alias_that_goes_too_far(tmp_path, depth):
    path = write(tmp_path, laughs(depth))
    stderr = refused("validate", path)
    assert stderr.startswith(f"{path}:15:35: alias *l4: aliases repeat more than 1 MiB")
    assert len(stderr.splitlines()) == 2


def test_many_aliases_of_a_big_string_are_refused_before_anything_runs(tmp_path):
    big = "x" * 1_000_000
    steps = "\n".join(f"      - {{id: s{i}, run: *big}}" for i in range(200))
    path = tmp_path / "book.yaml"
    path.write_text(
        f'runbook: Big\nvariables:\n  BIG: &big "{big}"\nphases:\n  - id: p\n    steps:\n{steps}\n'
    )
    stderr = refused("run", "--headless", "--yes", path)
    assert stderr.startswith(f"{path}:8:23: alias *big: aliases repeat more than 1 MiB")
    assert not (tmp_path / "data").exists()  # nothing recorded, let alone 440 MB


def test_a_recursive_alias_is_refused(tmp_path):
    path = write(tmp_path, "runbook: x\nphases: &a\n  - id: p\n    steps: *a\n")
    assert refused("validate", path).startswith(
        f"{path}:4:12: alias *a is inside the node it names"
    )


def test_shared_settings_still_merge_and_small_laughs_still_load():
    text = laughs(3).replace(
        "      - id: s\n", "      - <<: &defaults {timeout: 5s, retries: 2}\n        id: s\n"
    )
    text += "      - {<<: *defaults, id: t, run: echo hi}\n"
    runbook = parse_runbook(text, "book.yaml")
    assert [(s.timeout, s.retries) for s in runbook.steps] == [(5.0, 2), (5.0, 2)]
    assert len(runbook.step("s").fields["json"]["l3"]) == 10


def test_millions_of_values_are_refused_before_they_fill_memory(tmp_path):
    path = write(tmp_path, GOOD + "checklists:\n  a: [" + ",".join(["x"] * 1_000_000) + "]\n")
    stderr = refused("validate", path)
    assert stderr.startswith(
        f"{path}:8:499969: more than 250,000 YAML values (mappings, lists, "
        "scalars) by here: a runbook this big is refused"
    )


# ------------------------------------------------------------- chained variables


def chain(count: int, *, cycle: bool = False) -> str:
    """``count`` variables, each the one before it plus an ``x``, written last first."""
    lines = ["runbook: Chain", "variables:"]
    lines += [f'  v{i}: "${{v{i - 1}}}x"' for i in range(count - 1, 0, -1)]
    first = f"${{v{count - 1}}}" if cycle else "start"
    lines.append(f'  v0: "{first}"')
    lines += [
        "phases:",
        "  - id: p",
        "    steps:",
        f'      - {{id: s, run: "echo ${{v{count - 1}}}"}}',
    ]
    return "\n".join(lines) + "\n"


def test_ten_thousand_chained_variables_validate_in_linear_time(tmp_path):
    path = write(tmp_path, chain(10_000))
    done = cockpit("validate", path, timeout=HANG)  # took 3 minutes when quadratic
    assert done.returncode == 0, done.stderr


def test_a_long_cycle_is_still_reported(tmp_path):
    path = write(tmp_path, chain(10_000, cycle=True))
    stderr = refused("validate", path)
    assert stderr.startswith(
        f"{path}:3:3: variables refer to each other in a cycle: v9999, v9998, v9997, "
    )
    assert stderr.splitlines()[0].endswith(", v9990 and 9990 more")


def test_chained_variables_resolve_in_any_order():
    from cockpit.runbook import resolve_variables

    variables = {"C": "${B}c", "B": "${A}b", "A": "${env}a"}
    assert resolve_variables(variables, {"env": "prod"})["C"] == "prodabc"


# ------------------------------------------------------------- validation gaps

STEP = """\
runbook: Gaps
secrets: [API_TOKEN]
phases:
  - id: p
    steps:
      - id: s
"""


@pytest.mark.parametrize(
    "lines, where, message",
    [
        (
            ["run: echo hi", "retries: " + "1" * 400],
            "8:18",
            "step 's' retries: expected a whole number from 0 to 100, found '1111111111",
        ),
        (["run: echo hi", "retries: 101"], "8:18", "from 0 to 100, found '101'"),
        (
            ["kind: manual", "items: [x]", "approve: " + "1" * 31],
            "9:18",
            "step 's' approve: expected a whole number from 1 to 10, found",
        ),
        (
            ["kind: http", "url: http://127.0.0.1:9/", "expect: {status: 42}"],
            "9:26",
            "step 's' expect.status: expected a whole number from 100 to 599, found '42'",
        ),
        (
            ["kind: http", "url: http://127.0.0.1:9/", "expect: {status: -1}"],
            "9:26",
            "from 100 to 599, found '-1'",
        ),
        (
            ["kind: http", "url: http://127.0.0.1:9/", "expect: {rows: -3}"],
            "9:24",
            "step 's' expect.rows: expected a whole number from 0 to",
        ),
        (
            ["kind: sql", "dsn: x", "query: SELECT 1", "expect: {rows: -3}"],
            "10:24",
            "step 's' expect.rows: expected a whole number from 0 to",
        ),
        (
            ["kind: k8s", "action: scale", "deployment: api", "replicas: -5"],
            "10:19",
            "step 's' replicas: expected a whole number from 0 to",
        ),
        (
            ["run: echo hi", "expect: {exit_code: 256}"],
            "8:29",
            "step 's' expect.exit_code: expected a whole number from 0 to 255",
        ),
        (["run: echo hi", "timeout: 0"], "8:18", "step 's' timeout: must be more than 0s"),
        (["run: echo hi", "timeout: 0s"], "8:18", "step 's' timeout: must be more than 0s"),
        (
            ["run: echo hi", "timeout: 99999999d"],
            "8:18",
            "step 's' timeout: '99999999d' is longer than 720h",
        ),
        (
            ["run: echo hi", "retry_delay: " + "1" * 400],
            "8:22",
            "step 's' retry_delay: '111111111111111111111111111111...' is longer than 720h",
        ),
        (
            ["kind: http", "url: http://127.0.0.1:9/", "until: " + "1" * 400],
            "9:16",
            "step 's' until: '111111111111111111111111111111...' is longer than 720h",
        ),
        (
            ["kind: http", "url: http://127.0.0.1:9/", "until: 0s"],
            "9:16",
            "step 's' until: must be more than 0s",
        ),
        (
            ["kind: http", "url: http://127.0.0.1:9/", "json: {a: '${steps.s.details.x}'}"],
            "9:20",
            "${steps.s.details.x}: a step can not use its own details",
        ),
        (
            ["run: echo hi", "title: 'Ping ${steps.s.details.status}'"],
            "8:22",
            "${steps.s.details.status}: a step can not use its own details",
        ),
        (
            ["run: echo hi", "title: 'Ping ${OOPS'"],
            "8:22",
            "'${OOPS' is not closed: write ${NAME}, or $$",
        ),
        (["kind: notify", "template: 'costs $${5} and ${OOPS'"], "8:36", "'${OOPS' is not"),
    ],
)
def test_a_wrong_value_is_refused_where_it_is(tmp_path, lines, where, message):
    path = write(
        tmp_path,
        STEP.replace(
            "      - id: s\n", "      - id: s\n        " + "\n        ".join(lines) + "\n"
        ),
    )
    stderr = refused("validate", path)
    first = stderr.splitlines()[0]
    assert first.startswith(f"{path}:{where}: "), first
    assert message in first
    assert len(first) < 300  # a 400-digit number is not repeated in full


def test_zero_is_fine_where_zero_means_something(tmp_path):
    path = write(
        tmp_path,
        STEP.replace(
            "      - id: s\n",
            "      - id: s\n        run: echo hi\n        retries: 0\n        retry_delay: 0s\n",
        ),
    )
    assert cockpit("validate", path, timeout=HANG).returncode == 0


def test_a_description_may_use_a_secret_and_never_records_its_value(tmp_path, monkeypatch):
    secret = "tok-7c1e-never-recorded"
    monkeypatch.setenv("API_TOKEN", secret)
    path = write(
        tmp_path,
        STEP.replace(
            "runbook: Gaps\n", "runbook: Gaps\ndescription: 'Calls the API with ${API_TOKEN}'\n"
        )
        + "        run: echo hi\n",
    )
    done = cockpit("run", "--headless", "--yes", path, timeout=HANG)
    assert done.returncode == 0, done.stderr
    reports = [
        cockpit("report", "last", "--format", form, timeout=HANG).stdout for form in ("md", "json")
    ]
    recorded = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert secret not in done.stdout + done.stderr + "".join(reports)
    assert secret.encode() not in recorded


# ---------------------------------------------------------------- a closed stdout


@pytest.mark.parametrize(
    "args",
    [
        ("kinds",),
        ("history", "--json"),
        ("history", "--plain"),
        ("validate", "book.yaml"),
        ("plan", "book.yaml"),
        ("import", "book.md"),
    ],
    ids=lambda args: " ".join(args),
)
def test_a_closed_stdout_ends_any_command_quietly(tmp_path, args):
    write(tmp_path, GOOD)
    write(tmp_path, "# Demo\n\n## Deploy\n\n```bash\necho hi\n```\n", "book.md")
    assert cockpit("run", "--headless", "--yes", "book.yaml", timeout=HANG).returncode == 0
    process = subprocess.Popen([COCKPIT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first line is written
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=HANG) == 141  # as a shell reports a SIGPIPE
    assert stderr == ""


def test_a_number_too_big_for_a_float_is_refused_in_metrics_and_alerts(tmp_path):
    huge = "1" * 400
    path = write(
        tmp_path,
        STEP.replace(
            "phases:",
            f"""\
metrics: {{source: scrape, url: "http://127.0.0.1:9/m", requests: r, interval: {huge}}}
alerts:
  - {{name: a, metric: request_rate, above: {huge}, for: 1m}}
phases:""",
        )
        + "        run: echo hi\n",
    )
    lines = refused("validate", path).splitlines()
    assert lines[0].startswith(f"{path}:3:79: metrics interval: '1111")
    assert lines[1].startswith(f"{path}:5:44: alert 'a' above: expected a number")
    assert lines[2] == "cockpit: 2 problems found"


def test_a_long_value_is_cut_in_its_message(tmp_path):
    long = "y " * 300_000
    path = write(
        tmp_path,
        GOOD.replace("run: echo hi", f'kind: "{long}"').replace("id: prepare", f'id: "{long}"'),
    )
    lines = refused("validate", path).splitlines()
    assert lines[0] == (
        f"{path}:3:9: phase id: '{'y ' * 15}...' is not a valid id: use "
        "letters, digits, '-', '_' or '.', starting with a letter or digit"
    )
    assert lines[1].startswith(f"{path}:6:15: unknown step kind '{'y ' * 15}...'; known kinds")
    assert all(len(line) < 300 for line in lines)
