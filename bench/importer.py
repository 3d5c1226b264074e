"""Importer benchmark: the Markdown importer against parsing the same text, in one run.

Every figure is timed in this process, in this run, best of ``REPEATS`` with the
importer and its baselines interleaved, so the ratios read the same on a fast laptop
and a slow CI runner. Nothing is asserted: each figure is printed with its target.

1. Import of the seed runbook (``import_markdown``: Markdown to runbook data and YAML),
   against two baselines on the same input: a full CommonMark parse of the Markdown
   (markdown-it-py, which Rich brings) and PyYAML reading the YAML the import wrote.
   Target: the import takes well under a second (< 0.1 s).
2. ``load_runbook`` of the seed ``.md`` (import, then the validating loader), against
   ``load_runbook`` of the YAML written by ``cockpit import``: what flying a ``.md``
   directly costs on top of flying its YAML. Target: at most 2x.
3. Scaling: the seed repeated 10 times (one document of ~6,900 lines) against the seed
   once. Target: linear, at most 12x the time for 10x the text.
4. ``cockpit validate`` of the seed ``.md`` and of its YAML, in fresh processes
   (interpreter start-up included), median of 5.
5. Hostile size (issue 13): ``FENCES`` fences under one heading, against a tenth of
   them; import time and peak memory (tracemalloc). Targets: linear (at most 12x the time
   for 10x the fences), under 2 s and 300 MB. ``fences(count)`` builds the document.

Run from the project root: ``python -m bench.importer``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import yaml
from markdown_it import MarkdownIt

from cockpit.importer import import_markdown
from cockpit.runbook import load_runbook

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "deployment-runbook.md"
REPEATS = 20
COPIES = 10
IMPORT_TARGET = 0.1  # seconds, at most
LOAD_TARGET = 2.0  # .md load / .yaml load, at most
SCALE_TARGET = 12.0  # 10x the text, at most this many times the time
FENCES = 20_000
FENCES_TARGET = 2.0  # seconds, at most
MEMORY_TARGET = 300  # MB, at most


def best_of(*work: Callable[[], object], repeats: int = REPEATS) -> list[float]:
    """The least disturbed time of each callable, their runs interleaved."""
    best = [float("inf")] * len(work)
    for _ in range(repeats):
        for index, call in enumerate(work):
            started = time.perf_counter()
            call()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def fences(count: int) -> str:
    """``count`` shell fences under one heading (20,000 took 25 s to import before ids
    remembered their next free number)."""
    return "# Fences\n\n## Deploy\n\n" + "".join(
        f"```bash\necho {number}\n```\n\n" for number in range(count)
    )


def peak_mb(work: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def row(label: str, value: str, note: str = "") -> None:
    print(f"   {label:<40}{value:>14}  {note}".rstrip())


def verdict(value: float, target: float, unit: str = "x") -> str:
    return f"target <= {target}{unit}  {'met' if value <= target else 'MISSED'}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    text = SEED.read_text()
    lines = text.count("\n") + 1
    imported = import_markdown(text, SEED.name)
    print(
        f"importer benchmark: {SEED.name}, {lines} lines, {len(text):,} characters; best of "
        f"{REPEATS}, interleaved\n"
    )

    markdown = MarkdownIt("commonmark")
    importing, parsing, reading = best_of(
        lambda: import_markdown(text, SEED.name),
        lambda: markdown.parse(text),
        lambda: yaml.safe_load(imported.yaml),
    )
    print("1. import of the seed")
    row("baseline: markdown-it parse of the .md", ms(parsing))
    row("baseline: yaml.safe_load of its YAML", ms(reading))
    row(
        "import_markdown (Markdown -> YAML)", ms(importing), verdict(importing, IMPORT_TARGET, " s")
    )
    row("ratio to the Markdown parse", f"{importing / parsing:.2f}x")
    row("ratio to reading the YAML", f"{importing / reading:.2f}x")

    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as scratch:
        as_yaml = Path(scratch) / "seed.yaml"
        as_yaml.write_text(imported.yaml)
        from_md, from_yaml = best_of(lambda: load_runbook(SEED), lambda: load_runbook(as_yaml))
        print("\n2. load_runbook (validating loader)")
        row("the YAML written by cockpit import", ms(from_yaml))
        row("the .md, imported in memory", ms(from_md))
        row("ratio", f"{from_md / from_yaml:.2f}x", verdict(from_md / from_yaml, LOAD_TARGET))

        many = "\n".join([text] * COPIES)
        big, one = best_of(
            lambda: import_markdown(many, "big.md"),
            lambda: import_markdown(text, SEED.name),
            repeats=5,
        )
        print(f"\n3. scaling: the seed {COPIES} times in one document ({lines * COPIES} lines)")
        row("import, seed once", ms(one))
        row(f"import, seed x{COPIES}", ms(big), f"{big / (lines * COPIES) * 1e6:.1f} us/line")
        row("ratio", f"{big / one:.2f}x", verdict(big / one, SCALE_TARGET))

        cockpit = Path(sys.executable).parent / "cockpit"
        print("\n4. `cockpit validate` in a fresh process, median of 5")
        for label, path in (("seed .yaml", as_yaml), ("seed .md", SEED)):
            times = []
            for _ in range(5):
                started = time.perf_counter()
                subprocess.run(
                    [str(cockpit), "validate", str(path)], check=True, capture_output=True
                )
                times.append(time.perf_counter() - started)
            row(label, ms(statistics.median(times)))

    many, tenth = fences(FENCES), fences(FENCES // 10)
    large, small = best_of(
        lambda: import_markdown(many, "fences.md"),
        lambda: import_markdown(tenth, "fences.md"),
        repeats=3,
    )
    print(f"\n5. {FENCES:,} fences under one heading ({len(many):,} characters)")
    row(f"import, {FENCES // 10:,} fences", ms(small))
    row(f"import, {FENCES:,} fences", ms(large), verdict(large, FENCES_TARGET, " s"))
    row("ratio", f"{large / small:.2f}x", verdict(large / small, SCALE_TARGET))
    memory = peak_mb(lambda: import_markdown(many, "fences.md"))
    row("peak memory (tracemalloc)", f"{memory:.0f} MB", verdict(memory, MEMORY_TARGET, " MB"))


if __name__ == "__main__":
    main()
