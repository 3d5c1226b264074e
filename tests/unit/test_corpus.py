"""The real-world corpus (issue 18): public runbooks nobody here wrote, read where they
are (``../shared/corpus/markdown``; a missing corpus fails, never skips), imported into
something you would fly. The figures are measured by ``tests/corpus.py`` (the bench
prints them: ``python -m bench.corpus -v``)."""

from __future__ import annotations

import time

import pytest
from corpus import corpus_files, measure

from cockpit.importer import import_markdown

FILES = corpus_files()
ROLLBACK = {"06-gitlab-pg-credential-rotation.md", "17-etcd-upgrade-3-5.md"}
"""The documents with a rollback section (``### Roll-back``, ``#### Downgrade``)."""


@pytest.fixture(scope="module")
def figures():
    return [measure(path) for path in FILES]


def test_every_document_imports_validates_and_dry_runs(figures):
    failed = [
        f"{f.name}: {what}: {getattr(f, what)}"
        for f in figures
        for what in ("imported", "validated", "dry_run")
        if getattr(f, what)
    ]
    assert not failed, "\n".join(failed)


def test_shell_steps_hold_no_prompt_and_no_pasted_output(figures):
    prompted = [f"{f.name}: {step}" for f in figures for step in f.prompted]
    pasted = [f"{f.name}: {step}" for f in figures for step in f.output]
    assert not prompted, "\n".join(prompted)
    assert not pasted, "\n".join(pasted)


def test_every_shell_step_passes_bash_n(figures):
    refused = [f"{f.name}: {entry}" for f in figures for entry in f.bash_n]
    assert not refused, "\n".join(refused)


def test_rollback_found_wherever_the_document_has_one(figures):
    found = {f.name for f in figures if f.rollback}
    assert found >= ROLLBACK, f"no rollback found in {ROLLBACK - found}"
    assert not found - ROLLBACK, f"a rollback where the document has none: {found - ROLLBACK}"


def test_titles_are_short_plain_and_not_the_heading(figures):
    steps = sum(f.steps for f in figures)
    running = steps - sum(f.manual for f in figures)
    heading = [f"{f.name}: {title}" for f in figures for title in f.heading_titles]
    heading_run = [f"{f.name}: {title}" for f in figures for title in f.heading_run_titles]
    long = [f"{f.name}: {title}" for f in figures for title in f.long_titles]
    markup = [f"{f.name}: {title}" for f in figures for title in f.markup_titles]
    # steps that run code are named by their sentence or list item, not the heading
    assert len(heading_run) <= 0.10 * running, "\n".join(heading_run)
    # what is left: text-only sections (read them), one-alert headings: the heading is
    # their only name
    assert len(heading) <= 0.40 * steps, "\n".join(heading)
    assert not long, "\n".join(long)
    assert not markup, "\n".join(markup)


def test_import_time_is_linear_in_size():
    longest = max(FILES, key=lambda path: path.stat().st_size)
    text = longest.read_text()
    many = "\n".join([text] * 10)

    def best(document: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            import_markdown(document, longest.name)
            times.append(time.perf_counter() - started)
        return min(times)

    once, tenfold = best(text), best(many)
    # linear: about 10x (the bench's target is 12x); quadratic would be 100x
    assert tenfold <= 20 * once, f"{longest.name}: once {once:.3f} s, 10x {tenfold:.3f} s"
