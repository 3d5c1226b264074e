"""Bundle benchmark: the size and start-up times of ``make bundle``'s one-file cockpit.

The bundle runs as on a bastion cut off from the network: in a network namespace of its
own with only a loopback (``unshare -n``, where this user may make one), with a clean
``HOME`` (so its first run unpacks it, as on a new machine), pip told there is no index
(``PIP_NO_INDEX=1``, an empty ``PIP_INDEX_URL``) and no venv on ``PATH``. Nothing is
asserted here (tests/e2e/test_bundle.py asserts the targets); each figure is printed with
its target.

1. Size of the file. Target: under 60 MB.
2. First run (``--help``), cut off from the network: unpacks the bundle into
   ``$HOME/.cache/pex``. For information.
3. ``--help``, best of ``REPEATS`` later runs. Target: under 0.3 s. These and 4 are timed
   without ``unshare`` (whose own processes are no part of the bundle's start), in the same
   environment otherwise; the first run showed nothing is fetched.
4. ``validate runbooks/hello.yaml``, best of ``REPEATS``. Target: under 0.5 s.
5. Baselines: the venv's own ``cockpit --help`` and ``validate``, best of ``REPEATS``, timed
   in the same run (the test accepts 1.5x these where the machine is too loaded for the
   targets: see ``within_targets``).
6. On every other CPython 3.11 or later the machine has (``pythons``): the first run, with
   that Python alone on ``PATH`` (the bundle's venv is made with it, and later runs keep
   it), then 3 and 4 again.

Run from the project root after ``make bundle``: ``python -m bench.bundle [BUNDLE]``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "runbooks" / "hello.yaml"
REPEATS = 5
TARGETS = {"size_mb": 60.0, "help_s": 0.3, "validate_s": 0.5}


def isolated() -> list[str]:
    """The command prefix that cuts a process off from every network but its own loopback
    (``unshare -n``: a namespace of its own, where ``ip`` brings ``lo`` up for the demo's
    servers), or none where this user can not make one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]
    return []


def offline_env(home: Path) -> dict[str, str]:
    """A bastion's environment: a clean HOME, no package index, no venv on PATH."""
    venv_bins = {str(Path(sys.prefix) / "bin"), os.environ.get("VIRTUAL_ENV", "") + "/bin"}
    path = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    keep = ("LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "USER", "LOGNAME")
    return {
        **{name: os.environ[name] for name in keep if name in os.environ},
        "HOME": str(home),
        "PATH": os.pathsep.join(p for p in path if p not in venv_bins),
        "PIP_INDEX_URL": "",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "",
        "PIP_EXTRA_INDEX_URL": "",
    }


def run_offline(
    bundle: Path, *args: str, home: Path, env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run the bundle with ``args`` cut off from the network (see ``isolated``)."""
    return subprocess.run(
        [*isolated(), str(bundle), *args],
        capture_output=True,
        text=True,
        env={**offline_env(home), **(env or {})},
        timeout=120,
        **kwargs,
    )


def best(command: list[str], env: dict[str, str], repeats: int = REPEATS) -> float:
    """The shortest wall time of ``repeats`` runs of ``command`` (each must succeed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - start)
    return min(times)


def figures(bundle: Path, home: Path) -> dict[str, float]:
    """Size, first run, ``--help`` and ``validate`` of the bundle, run as on a bastion."""
    env, command = offline_env(home), [str(bundle)]
    venv = [str(Path(sys.prefix) / "bin" / "cockpit")]
    return {
        "size_mb": bundle.stat().st_size / 1e6,
        "first_run_s": best([*isolated(), *command, "--help"], env, repeats=1),
        "help_s": best([*command, "--help"], env),
        "validate_s": best([*command, "validate", str(HELLO)], env),
        "venv_help_s": best([*venv, "--help"], dict(os.environ)),
        "venv_validate_s": best([*venv, "validate", str(HELLO)], dict(os.environ)),
    }


def pythons() -> dict[str, Path]:
    """Every CPython 3.11 or later on this machine's PATH, in /usr/bin and among pyenv's
    versions, by version: its binary. A pyenv shim for a version pyenv has not selected
    does not run, and is passed over; so is this venv's own Python."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    folders = [
        *os.environ.get("PATH", "").split(os.pathsep),
        "/usr/bin",
        *sorted(pyenv.glob("*/bin")),
    ]
    script = (
        "import platform, sys; print(platform.python_implementation(), *sys.version_info[:2],"
        " platform.python_version(), sys.executable)"
    )
    found: dict[str, Path] = {}
    for folder in dict.fromkeys(map(Path, folders)):
        if folder == Path(sys.prefix) / "bin":
            continue
        for path in sorted(folder.glob("python3.*")):
            if not re.fullmatch(r"python3\.\d+", path.name):
                continue
            ran = subprocess.run([path, "-c", script], capture_output=True, text=True)
            if ran.returncode == 0:
                implementation, major, minor, version, binary = ran.stdout.split()
                if implementation == "CPython" and (int(major), int(minor)) >= (3, 11):
                    found.setdefault(version, Path(binary))
    return found


def others(found: dict[str, Path]) -> dict[str, Path]:
    """Those of ``found`` that are not the Python this venv (and so the bundle) was made with."""
    builder = Path(sys._base_executable).resolve()
    return {version: python for version, python in found.items() if python.resolve() != builder}


def alone_on_path(python: Path, folder: Path) -> dict[str, str]:
    """The environment (to add to ``offline_env``) of a machine whose one Python on PATH is
    ``python``: ``folder`` gets links to it and to the tools a first run calls."""
    folder.mkdir()
    for tool in (python, *map(shutil.which, ("sh", "ip", "ldd"))):
        if tool:
            (folder / Path(tool).name).symlink_to(tool)
    return {"PATH": str(folder)}


def figures_on(bundle: Path, python: Path, home: Path) -> dict[str, float]:
    """The first run of the bundle with ``python`` alone on PATH, then ``--help`` and
    ``validate`` as later runs start them (straight into the venv made with it)."""
    env = {**offline_env(home), **alone_on_path(python, home / "python-alone")}
    return {
        "first_run_s": best([*isolated(), str(bundle), "--help"], env, repeats=1),
        "help_s": best([str(bundle), "--help"], offline_env(home)),
        "validate_s": best([str(bundle), "validate", str(HELLO)], offline_env(home)),
    }


def within_targets(values: dict[str, float]) -> dict[str, bool]:
    """Whether each start-up time is under its target, or, on a machine so loaded that
    the venv's own entry point misses it too, within 1.5x that entry point's time."""
    return {
        name: values[name] < max(TARGETS[name], 1.5 * values[f"venv_{name}"])
        for name in ("help_s", "validate_s")
    }


def report(values: dict[str, float]) -> str:
    lines = []
    for name, value in values.items():
        target = TARGETS.get(name)
        verdict = f"target < {target}  {'met' if value < target else 'MISSED'}" if target else ""
        lines.append(f"{name:<16} {value:8.3f}  {verdict}".rstrip())
    return "\n".join(lines)


def main() -> None:
    bundle = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist" / "cockpit.pex")
    if not bundle.is_file():
        sys.exit(f"bench.bundle: {bundle} does not exist: run make bundle first")
    with tempfile.TemporaryDirectory(prefix="cockpit-bundle-home-") as home:
        values = figures(bundle, Path(home))
    print(f"bundle {bundle} (network: {'cut off' if isolated() else 'not cut off'})")
    print(report(values))
    for version, python in others(pythons()).items():
        with tempfile.TemporaryDirectory(prefix="cockpit-bundle-home-") as home:
            values = figures_on(bundle, python, Path(home))
        print(f"on Python {version} ({python}), which did not build it:")
        print(report(values))


if __name__ == "__main__":
    main()
