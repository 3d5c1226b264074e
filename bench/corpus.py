"""Real-world corpus benchmark (issue 18): what ``cockpit import`` makes of the public
runbooks in ``../shared/corpus/markdown`` (or the folder given), document by document.

Printed per document and in total, each with the issue's target: files that import,
validate and dry-run (``cockpit run --dry-run --headless`` of the imported YAML); shell
steps that still hold a ``$ `` prompt or pasted output, that ``bash -n`` refuses, and
shellcheck's errors (listed, for review); rollback steps found; titles that only repeat
a heading, pass 100 characters or hold Markdown markup; import time against size, and
the longest document imported ten times over against once (linear: at most 12x).

Run from the project root: ``python -m bench.corpus [FOLDER] [-v]`` (``-v`` lists each
step behind a figure).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cockpit.importer import import_markdown
from tests import corpus

SCALE_TARGET = 12.0
COPIES = 10


def main(argv: list[str]) -> None:
    verbose = "-v" in argv
    folders = [arg for arg in argv if arg != "-v"]
    if folders:
        corpus.CORPUS = Path(folders[0]).resolve()
    files = corpus.corpus_files()
    print(f"corpus benchmark: {len(files)} documents in {corpus.CORPUS}\n")
    header = (
        f"{'document':<36}{'lines':>6}{'ok':>4}{'shell':>6}{'$':>4}{'out':>4}"
        f"{'-n':>4}{'SC':>4}{'rb':>4}{'steps':>6}{'=h':>4}{'>100':>5}{'md':>4}{'typed':>6}"
        f"{'us/line':>9}"
    )
    print(header)
    print("-" * len(header))
    all_figures = []
    for path in files:
        figures = corpus.measure(path)
        all_figures.append(figures)
        ok = "".join(
            "." if not failed else "x"
            for failed in (figures.imported, figures.validated, figures.dry_run)
        )
        print(
            f"{figures.name[:35]:<36}{figures.lines:>6}{ok:>4}{figures.shell:>6}"
            f"{len(figures.prompted):>4}{len(figures.output):>4}{len(figures.bash_n):>4}"
            f"{len(figures.shellcheck):>4}{figures.rollback:>4}{figures.steps:>6}"
            f"{len(figures.heading_titles):>4}{len(figures.long_titles):>5}"
            f"{len(figures.markup_titles):>4}{figures.typed:>6}"
            f"{figures.seconds / figures.lines * 1e6:>9.0f}"
        )
        if verbose:
            for what in ("imported", "validated", "dry_run"):
                if getattr(figures, what):
                    print(f"    {what}: {getattr(figures, what)}")
            for what in ("prompted", "output", "bash_n", "shellcheck", "long_titles"):
                for entry in getattr(figures, what):
                    print(f"    {what}: {entry}")
            for title in figures.markup_titles:
                print(f"    markup: {title}")
            for title in figures.heading_titles:
                print(f"    heading title: {title}")
    totals(all_figures)
    scaling(files)


def totals(all_figures: list[corpus.Figures]) -> None:
    count = len(all_figures)
    steps = sum(f.steps for f in all_figures)
    shell = sum(f.shell for f in all_figures)
    heading = sum(len(f.heading_titles) for f in all_figures)
    manual = sum(f.manual for f in all_figures)

    def line(label: str, value: str, target: str) -> None:
        print(f"   {label:<46}{value:>12}  {target}")

    print("\ntotals")
    for what, label in (
        ("imported", "import"),
        ("validated", "validate"),
        ("dry_run", "dry-run"),
    ):
        done = sum(not getattr(f, what) for f in all_figures)
        line(f"files that {label}", f"{done}/{count}", f"target {count}/{count}")
    line(
        "shell steps with a $ prompt",
        f"{sum(len(f.prompted) for f in all_figures)}/{shell}",
        "target 0",
    )
    line(
        "shell steps with pasted output",
        f"{sum(len(f.output) for f in all_figures)}/{shell}",
        "target 0",
    )
    line(
        "shell steps bash -n refuses",
        f"{sum(len(f.bash_n) for f in all_figures)}/{shell}",
        "target 0",
    )
    line("shellcheck errors (review)", str(sum(len(f.shellcheck) for f in all_figures)), "listed")
    line(
        "documents with rollback steps",
        str(sum(bool(f.rollback) for f in all_figures)),
        "wherever the document has one",
    )
    line(
        "titles equal to a heading",
        f"{heading}/{steps} ({heading / max(steps, 1):.0%})",
        "target <= 10%",
    )
    line(
        "  of steps that run code",
        f"{sum(len(f.heading_run_titles) for f in all_figures)}/{steps - manual}",
        "",
    )
    line(
        "titles repeating another's in a phase",
        str(sum(len(f.duplicate_titles) for f in all_figures)),
        "",
    )
    line("titles over 100 characters", str(sum(len(f.long_titles) for f in all_figures)), "0")
    line("titles with Markdown markup", str(sum(len(f.markup_titles) for f in all_figures)), "0")
    line("typed steps", f"{sum(f.typed for f in all_figures)}/{steps}", "")


def scaling(files: list[Path]) -> None:
    longest = max(files, key=lambda path: path.stat().st_size)
    text = longest.read_text()
    many = "\n".join([text] * COPIES)
    best_one = best_many = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        import_markdown(text, longest.name)
        best_one = min(best_one, time.perf_counter() - started)
        started = time.perf_counter()
        import_markdown(many, longest.name)
        best_many = min(best_many, time.perf_counter() - started)
    ratio = best_many / best_one
    print(
        f"\nscaling: {longest.name} ({len(text):,} characters) once {best_one * 1000:.1f} ms, "
        f"x{COPIES} {best_many * 1000:.1f} ms: {ratio:.2f}x  target <= {SCALE_TARGET}x  "
        f"{'met' if ratio <= SCALE_TARGET else 'MISSED'}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
