"""``make bundle``: one file that flies runbooks on a bastion with no network (issue 21).

The bundle is built from this venv cut off from the network (pex resolves from the venv
itself), then run as on a bastion: cut off from every network (``unshare -n`` where it
can be made), a clean HOME, pip told there is no index, no venv on PATH; then on every
CPython 3.11 or later the machine has (3.11, 3.12 and 3.13 at least; Debian 12's 3.11.2 is
below the 3.11.3 from which redis no longer needs async-timeout).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, TEST_DATA
from packaging.utils import parse_wheel_filename
from terminal import Terminal, cockpit_command

from bench.bundle import (
    HELLO,
    TARGETS,
    alone_on_path,
    best,
    figures,
    isolated,
    offline_env,
    others,
    pythons,
    report,
    run_offline,
    within_targets,
)
from cockpit.journal import SCHEMA_VERSION, Journal

pytestmark = [pytest.mark.bundle, pytest.mark.long]


def make(target: str, *made: str, **settings: Path) -> None:
    """``make TARGET`` in this tree cut off from the network, with this venv (installed
    already, the other Pythons' compiled wheels downloaded beside it: make must neither
    reinstall nor download) and the targets ``made`` taken as done."""
    venv = Path(sys.prefix)
    done = [f"{venv}/.installed-test", f"{venv}/bundle-wheels/.downloaded", *made]
    assigned = [f"{name}={value}" for name, value in {"VENV": venv, **settings}.items()]
    built = subprocess.run(
        [*isolated(), "make", "-s", *(f"-o{t}" for t in done), target, *assigned],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "cockpit.pex"
    make("bundle", BUNDLE=out)  # everything from the venv and its wheel cache
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """The bastion user's clean HOME, where the bundle unpacks on its first run."""
    return tmp_path_factory.mktemp("home")


def test_the_bundle_flies_hello_offline(bundle, home, tmp_path):
    figures_ = figures(bundle, home)  # its first run unpacks it into the clean HOME
    print(f"\nbundle figures (network {'cut off' if isolated() else 'reachable'}):")
    print(report(figures_))
    assert figures_["size_mb"] < TARGETS["size_mb"]
    assert within_targets(figures_) == {"help_s": True, "validate_s": True}

    plan = run_offline(bundle, "plan", HELLO, home=home)
    assert plan.returncode == 0, plan.stderr
    assert "Phase 1: Preparation" in plan.stdout

    env = {"HELLO_TOKEN": "x-token", "TMPDIR": str(tmp_path)}
    run = run_offline(bundle, "run", "--headless", "--yes", HELLO, home=home, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    history = run_offline(bundle, "history", "--json", home=home)
    assert [r["status"] for r in json.loads(history.stdout)] == ["ok"]
    run_id = json.loads(history.stdout)[0]["id"]
    assert run_offline(bundle, "__complete", "runs", home=home).stdout.split() == ["last", run_id]
    assert "_shtab_cockpit" in run_offline(bundle, "completion", "bash", home=home).stdout
    assert str(home) in run_offline(bundle, "locate", home=home).stdout  # the clean HOME's

    imported = tmp_path / "imported.yaml"
    markdown = TEST_DATA / "markdown" / "console-page.md"
    result = run_offline(bundle, "import", markdown, "-o", imported, home=home)
    assert result.returncode == 0, result.stderr
    assert run_offline(bundle, "validate", imported, home=home).returncode == 0


BUILT_FOR = {"cp311", "cp312", "cp313", "cp314"}  # the Makefile's BUNDLE_PYTHONS

# The glibc each manylinux platform tag needs: manylinux_2_28_x86_64, or an older alias.
GLIBC_OF_ALIAS = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def glibc_needed(platform: str) -> tuple[int, int]:
    name = platform.removesuffix("_x86_64")
    if name in GLIBC_OF_ALIAS:
        return GLIBC_OF_ALIAS[name]
    major, minor = name.removeprefix("manylinux_").split("_")
    return int(major), int(minor)


def test_the_bundle_holds_compiled_wheels_for_each_python_and_glibc_2_28(bundle):
    """Each compiled dependency is in the bundle for CPython 3.11, 3.12, 3.13 and 3.14 (one
    wheel each, or one abi3 wheel for all), built for glibc 2.28 or older (RHEL 8's): not
    the manylinux_2_34 cryptography wheel pip takes on a newer machine such as this one.
    (3.14's are there for the bastions that have only it, such as Fedora 43's;
    no 3.14 interpreter could be had here to fly them: see the README.)"""
    with zipfile.ZipFile(bundle) as pex:
        wheels = json.loads(pex.read("PEX-INFO"))["distributions"]
    pythons_of: dict[str, set[str]] = {}
    for wheel in wheels:
        project, _, _, tags = parse_wheel_filename(wheel)
        if {tag.platform for tag in tags} == {"any"}:
            continue
        assert min(glibc_needed(tag.platform) for tag in tags) <= (2, 28), wheel
        for tag in tags:
            minors = BUILT_FOR if tag.abi == "abi3" else {tag.interpreter}
            pythons_of.setdefault(project, set()).update(minors)
    assert {"asyncpg", "google-re2", "cryptography", "aiohttp"} <= pythons_of.keys()
    assert {p: m for p, m in pythons_of.items() if m != BUILT_FOR} == {}


def test_the_bundle_talks_to_s3_with_botocore_trimmed(bundle, home, tmp_path, s3):
    """The bundle's botocore keeps only the models cockpit needs (S3, and the services
    credentials come from): an s3 step uploads, lists and downloads through it. (The
    test's S3 is on this host's loopback: this run is not cut off from it.)"""
    endpoint, bucket = s3
    source = tmp_path / "release.txt"
    source.write_text("release 2.0\n" * 1000)
    book = tmp_path / "s3.yaml"
    book.write_text(
        "runbook: S3\nphases:\n  - id: p\n    steps:\n"
        f"      - {{id: up, kind: s3, action: upload, from: {source}, "
        f'to: "s3://{bucket}/r/", endpoint_url: "{endpoint}"}}\n'
        f'      - {{id: ls, kind: s3, action: list, prefix: "s3://{bucket}/r/", '
        f'endpoint_url: "{endpoint}", expect: {{objects: 1}}}}\n'
        f'      - {{id: down, kind: s3, action: download, from: "s3://{bucket}/r/release.txt", '
        f'to: {tmp_path / "copy.txt"}, endpoint_url: "{endpoint}"}}\n'
    )
    aws = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    ran = subprocess.run(
        [bundle, "run", "--headless", "--yes", book],
        capture_output=True,
        text=True,
        env={**offline_env(home), **aws, "AWS_DEFAULT_REGION": "us-east-1"},
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (tmp_path / "copy.txt").read_text() == source.read_text()
    script = (
        "import botocore, pathlib; data = pathlib.Path(botocore.__file__).parent / 'data'; "
        "print(*sorted(p.name for p in data.iterdir() if p.is_dir()))"
    )
    models = run_offline(bundle, "-c", script, home=home, env={"PEX_INTERPRETER": "1"})
    assert models.stdout.split() == ["s3", "signin", "sso", "sso-oidc", "sts"], models.stderr


def test_the_bundle_carries_the_flagship_runbook(bundle, home):
    """Installed from a wheel, with no source tree beside it, cockpit still finds the
    flagship runbook the demo and the sandbox fly (and its migrations)."""
    script = "from cockpit.sandbox.demo import FLAGSHIP; print(FLAGSHIP)"
    found = run_offline(bundle, "-c", script, home=home, env={"PEX_INTERPRETER": "1"})
    flagship = Path(found.stdout.strip())
    assert flagship.is_relative_to(home), found.stderr  # the bundle's copy, not this tree's
    assert (flagship.parent / "migrations" / "V3_007__baseline.sql").is_file()
    result = run_offline(bundle, "validate", flagship, home=home)
    assert result.returncode == 0, result.stderr


def every_python() -> dict[str, Path]:
    """``pythons()``: 3.11, 3.12 and 3.13 at least, or the test fails (CI's machine has them)."""
    found = pythons()
    minors = {version.rsplit(".", 1)[0] for version in found}
    assert {"3.11", "3.12", "3.13"} <= minors, f"CPython 3.11, 3.12 and 3.13 wanted, found {found}"
    return found


# The modules of the bundle's compiled wheels that cockpit loads, built for each Python:
# its PostgreSQL driver, runbook regexes, the simulator's CA, the sandbox's HTTP servers.
COMPILED = (
    "asyncpg.protocol.protocol",
    "re2._re2",
    "cryptography.hazmat.bindings._rust",
    "aiohttp._http_parser",
)


def test_the_bundle_runs_on_every_python_3_11_or_later_here(bundle, home, tmp_path):
    """One file for every CPython from 3.11 (PEX_PYTHON picks it): each validates and flies
    hello.yaml offline and loads the compiled modules the bundle carries for it. Below
    3.11.3 (Debian 12's 3.11.2) redis imports async-timeout, which the bundle carries though
    the building Python did not need it."""
    script = (
        "import importlib, json, platform, async_timeout, redis.asyncio.connection as c; "
        f"files = [importlib.import_module(m).__file__ for m in {COMPILED!r}]; "
        "print(json.dumps([platform.python_version(), c.async_timeout is async_timeout.timeout,"
        " files]))"
    )
    for version, python in every_python().items():
        env = {"PEX_PYTHON": str(python), "HELLO_TOKEN": "x-token", "TMPDIR": str(tmp_path)}
        result = run_offline(bundle, "validate", HELLO, home=home, env=env)
        assert result.returncode == 0, f"{python}: {result.stderr}"
        journal = tmp_path / f"journal-{version}.sqlite3"
        run = run_offline(
            bundle, "run", "--headless", "--yes", "--journal", journal, HELLO, home=home, env=env
        )
        assert run.returncode == 0, f"{python}: {run.stdout}{run.stderr}"
        assert "hello from" in run.stdout

        carried = run_offline(bundle, "-c", script, home=home, env={**env, "PEX_INTERPRETER": "1"})
        assert carried.returncode == 0, f"{python}: {carried.stderr}"
        ran_on, has_async_timeout, files = json.loads(carried.stdout)
        below = tuple(map(int, version.split("."))) < (3, 11, 3)
        assert [ran_on, has_async_timeout] == [version, below]
        for file in map(Path, files):  # the bundle's own, compiled for this Python
            assert file.is_relative_to(home) and file.suffix == ".so", file


def test_the_bundle_starts_fast_on_a_python_that_did_not_build_it(bundle, tmp_path):
    """A bastion's Python is seldom the builder's: the bundle's venv is keyed by its
    interpreter constraints (CPython 3.11 to 3.14), so /bin/sh finds it and starts it
    directly whichever Python made it (keyed by the builder's Python, each start went
    through the zip and a second interpreter: 0.4-0.6 s). The first run takes the Python it
    finds on PATH; later ones keep it, whatever PATH then holds."""
    venv_help = best([str(Path(sys.prefix) / "bin" / "cockpit"), "--help"], dict(os.environ))
    for version, python in others(every_python()).items():
        home = tmp_path / version
        home.mkdir()
        alone = alone_on_path(python, tmp_path / f"bin-{version}")
        first = run_offline(bundle, "--version", home=home, env=alone)
        assert first.stdout.splitlines()[1].startswith(f"Python {version} ("), first.stderr
        later = run_offline(bundle, "--version", home=home)
        assert later.stdout.splitlines()[1].startswith(f"Python {version} ("), later.stderr
        help_s = best([str(bundle), "--help"], offline_env(home), repeats=3)
        print(f"\n--help on Python {version}, which did not build the bundle: {help_s:.3f} s")
        assert help_s < max(TARGETS["help_s"], 1.5 * venv_help), (version, venv_help)


def test_the_bundle_names_its_python_and_refuses_a_newer_journal(bundle, home, tmp_path):
    version = run_offline(bundle, "--version", home=home)
    assert version.returncode == 0, version.stderr
    lines = version.stdout.splitlines()
    assert lines[0] == "cockpit 0.1.0" and lines[1].startswith("Python 3.")
    assert lines[2] == f"journal schema {SCHEMA_VERSION}"

    newer = tmp_path / "newer.sqlite3"
    Journal(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
        db.execute("UPDATE meta SET value = '9.0.0' WHERE key = 'schema_by'")
    refused = run_offline(bundle, "history", "--journal", newer, home=home)
    assert refused.returncode == 2
    assert f"written by a newer cockpit (9.0.0, journal schema {SCHEMA_VERSION + 1})" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr


def test_the_bundle_opens_the_cockpit_in_a_terminal(bundle, home, tmp_path):
    """The screens' style sheets travel in the wheel (they once did not: the bundle flew
    headless only): from the bundle, the cockpit paints in a real terminal and runs a step."""
    terminal = Terminal(tmp_path)
    try:
        env = {**offline_env(home), "HELLO_TOKEN": "x-token", "TMPDIR": str(tmp_path)}
        command = cockpit_command(tmp_path, "run", HELLO, program=bundle, env=env)
        terminal.start(command, width=100, height=30)
        terminal.wait_for("Phase 1: Preparation", "Enough disk space", "0 of 2 ticked")
        terminal.keys("Down", "r")
        terminal.wait_for("free: ")
    finally:
        terminal.close()


@pytest.fixture(scope="module")
def wheels(bundle, tmp_path_factory) -> Path:
    """``make wheels``: the bundle's wheels and pip's."""
    wheels = tmp_path_factory.mktemp("wheels")
    make("wheels", "bundle", BUNDLE=bundle, WHEELS=wheels)
    return wheels


def test_make_wheels_holds_all_pipx_needs(wheels, tmp_path):
    """``make wheels``, for ``pipx install --pip-args="--no-index --find-links=wheels"``:
    pip resolves cockpit and pip (pipx upgrades it first) from them alone, and
    async-timeout is there for Pythons below 3.11.3."""
    resolved_json = tmp_path / "resolved.json"
    (cockpit_wheel,) = wheels.glob("cockpit-*.whl")
    assert list(wheels.glob("async_timeout-*.whl"))
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q"]
    offline = ["--no-index", "--find-links", wheels, "--report", resolved_json]
    resolved = subprocess.run(
        [*pip, *offline, cockpit_wheel, "pip"],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""},
        timeout=120,
    )
    assert resolved.returncode == 0, resolved.stderr
    names = {item["metadata"]["name"] for item in json.loads(resolved_json.read_text())["install"]}
    assert {"cockpit", "redis", "textual", "shtab", "pip"} <= names


OTHER_STEPS = {
    "pyproject.toml": '[project]\nname = "steps"\nversion = "9.9"\n',
    "steps/__init__.py": 'WHOSE = "the other project"\n',
}


def test_cockpit_installs_beside_another_steps_package(wheels, tmp_path):
    """steps/, screens/ and widgets/ install under ``cockpit.``: a venv that has another
    project's top-level ``steps`` (PyPI has one) keeps it, and cockpit flies beside it."""
    other = tmp_path / "other"
    for name, text in OTHER_STEPS.items():
        (other / name).parent.mkdir(parents=True, exist_ok=True)
        (other / name).write_text(text)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    built = subprocess.run([*build, "-w", wheels, other], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr

    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", venv], check=True)
    env = {**offline_env(tmp_path / "home"), "PIP_CONFIG_FILE": os.devnull}
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--find-links", wheels]
    for package in ("steps", "cockpit"):  # the other project first: cockpit must not touch it
        installed = subprocess.run(
            [*isolated(), *pip, package], capture_output=True, text=True, env=env, timeout=300
        )
        assert installed.returncode == 0, installed.stderr

    record = next(venv.glob("lib/python3*/site-packages/cockpit-*.dist-info/RECORD"))
    tops = {line.split("/")[0] for line in record.read_text().splitlines()}
    assert {"steps", "screens", "widgets"} & tops == set()
    python = venv / "bin" / "python"
    script = "import steps, cockpit.steps.shell as s; print(steps.WHOSE, s.__name__)"
    both = subprocess.run(  # env: no PYTHONPATH naming this tree's own top-level steps/
        [python, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert both.stdout.split(" ", 3) == ["the", "other", "project", "cockpit.steps.shell\n"]
    checked = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout

    env = {**env, "HELLO_TOKEN": "x-token", "TMPDIR": str(tmp_path)}
    run = subprocess.run(
        [venv / "bin" / "cockpit", "run", "--headless", "--yes", HELLO],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "hello" in run.stdout
