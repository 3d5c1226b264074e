"""Hostile-input benchmark: what validating or importing an adversarial runbook costs.

Each case is written to a temporary folder and loaded in a fresh process (``cockpit
validate``'s ``load_runbook``, or ``cockpit import``'s ``import_file``), which reports
the time the call took and its peak memory (``ru_maxrss``: the whole process, the
interpreter and its imports included). A case that runs past ``LIMIT`` seconds is
killed and shown as such. Each input comes at three sizes; the ratio is each size's
time over the smallest's, so linear growth reads as about the size ratio (or less, when
a refusal stops early). Nothing is asserted: each figure is printed with its targets.

1. Billion laughs in an http step's ``json:`` (10 aliases a level; depth 6, 9, 30).
2. 200 aliases of a 1 MB string (and 20, 2,000 of 100 KB, 10 KB strings).
3. Chained variables, written last first (2,500, 5,000, 10,000); values in one list
   (50,000, 100,000, 1,000,000: over MAX_NODES, refused).
4. Fenced blocks under one Markdown heading, imported (5,000, 10,000, 20,000), then
   validated (``load_runbook``: the import, its YAML read back, and every check).
5. Files over the size limit: 20, 50, 500 MB (sparse: they cost no disk).
6. 15 MiB of comments with a NUL at the very end: the control-character scan.
7. Masking log lines with 53 secrets and their every spelling, against one secret.

Targets: each case under 2 s and 300 MB. Run from the project root:
``python -m bench.hostile``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

LIMIT = 30.0  # seconds before a case is killed
TIME_TARGET = 2.0  # seconds, at most
MEMORY_TARGET = 300  # MB of peak RSS, at most

# Run in the child: load (or import) one file, report time, peak memory and outcome.
PROBE = """
import json, resource, sys, time
from cockpit.importer import ImportFailed, import_file
from cockpit.runbook import RunbookInvalid, load_runbook
action, path = sys.argv[1:]
started = time.perf_counter()
try:
    if action == "import":
        import_file(path)
    else:
        load_runbook(path)
    outcome = "accepted"
except (RunbookInvalid, ImportFailed) as exc:
    outcome = "refused: " + str(exc).splitlines()[0].split(": ", 1)[-1][:60]
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "outcome": outcome}))
"""


def laughs(depth: int) -> str:
    lines = [
        "runbook: Laughs", "phases:", "  - id: p", "    steps:", "      - id: s",
        "        kind: http", "        url: http://127.0.0.1:9/", "        method: POST",
        "        json:", '          l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol"]',
    ]  # fmt: skip
    for level in range(1, depth + 1):
        lines.append(f"          l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def big_aliases(count: int, size: int) -> str:
    steps = "\n".join(f"      - {{id: s{i}, run: *big}}" for i in range(count))
    return (
        f'runbook: Big\nvariables:\n  BIG: &big "{"x" * size}"\nphases:\n  - id: p\n'
        f"    steps:\n{steps}\n"
    )


def chain(count: int) -> str:
    lines = ["runbook: Chain", "variables:"]
    lines += [f'  v{i}: "${{v{i - 1}}}x"' for i in range(count - 1, 0, -1)]
    lines += [
        "  v0: start",
        "phases:",
        "  - id: p",
        "    steps:",
        f'      - {{id: s, run: "echo ${{v{count - 1}}}"}}',
    ]
    return "\n".join(lines) + "\n"


def values(count: int) -> str:
    return (
        f"runbook: Many\nphases: [{{id: p, steps: [{{id: s, run: echo}}]}}]\n"
        f"checklists: {{a: [{','.join(['x'] * count)}]}}\n"
    )


def fences(count: int) -> str:
    blocks = "".join(f"```bash\necho {i}\n```\n\n" for i in range(count))
    return f"# Fences\n\n## Deploy\n\n{blocks}"


def comments_then_nul(size: int) -> str:
    line = "# " + "x" * 77 + "\n"
    return "runbook: Big\n" + line * (size // len(line)) + "\0"


CASES: list[tuple[str, str, str, Callable[[int], str], tuple[int, int, int]]] = [
    ("billion laughs (depth)", "validate", "yaml", laughs, (6, 9, 30)),
    ("200 aliases of a string (KB)", "validate", "yaml",
     lambda kb: big_aliases(200, kb * 1000), (10, 100, 1000)),
    ("chained variables", "validate", "yaml", chain, (2_500, 5_000, 10_000)),
    ("values in one list", "validate", "yaml", values, (50_000, 100_000, 1_000_000)),
    ("fences under one heading", "import", "md", fences, (5_000, 10_000, 20_000)),
    ("the same, validated", "validate", "md", fences, (5_000, 10_000, 20_000)),
    ("15 MiB then a NUL (MiB)", "validate", "yaml",
     lambda mib: comments_then_nul(mib * 2**20), (4, 8, 15)),
]  # fmt: skip


def probe(action: str, path: Path) -> dict:
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, action, str(path)],
            capture_output=True,
            text=True,
            timeout=LIMIT,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": None, "peak_mb": None, "outcome": f"killed after {LIMIT:.0f} s"}
    if done.returncode != 0:
        return {
            "seconds": None,
            "peak_mb": None,
            "outcome": "crashed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:60],
        }
    return json.loads(done.stdout)


def show(label: str, size: str, figures: dict, smallest: float | None) -> None:
    seconds, peak = figures["seconds"], figures["peak_mb"]
    if seconds is None:
        print(f"   {label:<30}{size:>10}  {'-':>9}  {'-':>7}  {'-':>7}  {figures['outcome']}")
        return
    ratio = f"{seconds / smallest:.1f}x" if smallest else "1.0x"
    met = "met" if seconds <= TIME_TARGET and peak <= MEMORY_TARGET else "MISSED"
    print(
        f"   {label:<30}{size:>10}  {seconds:>8.3f}s  {ratio:>7}  {peak:>5.0f}MB  "
        f"{met:<6}  {figures['outcome']}"
    )


def main() -> None:
    print(
        f"hostile-input benchmark: one fresh process per case, killed after {LIMIT:.0f} s; "
        f"targets < {TIME_TARGET:g} s and < {MEMORY_TARGET} MB peak RSS\n"
    )
    print(f"   {'case':<30}{'size':>10}  {'time':>9}  {'ratio':>7}  {'peak':>7}  target  outcome")
    with tempfile.TemporaryDirectory() as folder:
        for label, action, suffix, make, sizes in CASES:
            smallest = None
            for size in sizes:
                path = Path(folder) / f"case.{suffix}"
                path.write_text(make(size), encoding="utf-8")
                figures = probe(action, path)
                show(label, f"{size:,}", figures, smallest)
                smallest = smallest or figures["seconds"]
                label = ""
        path = Path(folder) / "huge.yaml"
        label = "over the size limit (MB)"
        for megabytes in (20, 50, 500):
            with path.open("wb") as file:
                file.truncate(megabytes * 10**6)  # sparse: no disk used
            show(label, f"{megabytes:,}", probe("validate", path), None)
            label = ""
    masking()


def masking() -> None:
    """The redactor on many secrets and their spellings (URL-encoded, JSON- and
    HTML-escaped, a secret URL's parts), against one secret, on the same log lines."""
    from cockpit.redact import Redactor

    lines = "2026-12-03 12:00:00 INFO serving GET /api/health 200 in 3 ms\n" * 150_000
    secrets = ["Ab/Zq7Secret#PW9", 'tok-3f9a"x<y>', "https://hooks.example/T1/B2/sig?k=v"]
    secrets += [f"token-{n:04d}-secret" for n in range(50)]
    rates = []
    for redactor in (Redactor(secrets[:1]), Redactor(secrets)):
        started = time.perf_counter()
        redactor.redact(lines)
        rates.append(len(lines) / (time.perf_counter() - started) / 1e6)
    print(
        f"\n   masking {len(lines) / 1e6:.1f} MB of log lines: {len(secrets)} secrets "
        f"{rates[1]:.0f} MB/s, one secret {rates[0]:.0f} MB/s: {rates[1] / rates[0]:.2f}x"
    )


if __name__ == "__main__":
    main()
