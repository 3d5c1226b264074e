"""The real-world corpus (issue 18): public runbooks nobody here wrote, read where they
are (``../shared/corpus/markdown``; a missing corpus fails, never skips), imported into
something you would fly. The figures are measured by ``tests/corpus.py`` (the bench
prints them: ``python -m bench.corpus -v``)."""

from __future__ import annotations

import re
import time

import pytest
from corpus import corpus_files, measure
from markdown_it import MarkdownIt

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
    # checklists are named by their items, text by its first sentence, a part's heading
    # ("Diagnosis") with what it is under: what is left is code under a heading that
    # names it ("Prepare toolbox")
    assert len(heading) <= 0.05 * steps, "\n".join(heading)
    assert not long, "\n".join(long)
    assert not markup, "\n".join(markup)
    # one step written under sibling sections ("Phase one" / "Phase two") is named with
    # its section: a phase rarely shows two steps by one name
    duplicate = [f"{f.name}: {title}" for f in figures for title in f.duplicate_titles]
    assert len(duplicate) <= 0.01 * steps, "\n".join(duplicate)


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


PROMPT = re.compile(r"^(?:\$|#|[\w.:-]+=?[#>]|[\w.-]+@[\w.-]+(?::\S*)?[$#])\s+")
TYPED = re.compile(r"(?:curl|kubectl|redis-cli|psql|pg_dump|aws)\b|-|\w+$")
"""What a typed step (http, k8s, redis, sql, backup) holds as fields, not as written:
its command, a continuation line of options, a here-document's end marker."""


def texts(value) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in texts(item)]
    return [str(value).replace("$$", "$")]


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_nothing_is_dropped(path):
    """Every line of every fence is in the runbook, as code or as text (output in a
    description, a prompt taken off), but what a typed step holds as fields and the
    placeholders made variables."""
    shown = " ".join(" ".join(texts(import_markdown(path.read_text(), path.name).runbook)).split())
    dropped = []
    for token in MarkdownIt("commonmark").parse(path.read_text()):
        for line in token.content.splitlines() if token.type == "fence" else ():
            line = PROMPT.sub("", line.strip(), count=1)
            if line and "<" not in line and " ".join(line.split()) not in shown:
                dropped.append(f"{path.name}:{token.map[0] + 1}: {line}")
    assert not [line for line in dropped if not TYPED.match(line.split(": ", 1)[1])], dropped
