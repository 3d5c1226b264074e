"""Hostile Markdown: code the rendered document does not show as code never runs, an
unterminated fence that swallows structure (a heading, another block) is refused where it
opens while one that only runs to the end of its list item or document is imported and
listed for review, a fence right after a list marker runs,
and 20,000 fences under one heading import in linear time (issue 13, "Hidden code runs").

Each case flies the file as an operator would (`cockpit run X.md --headless --yes`, or
`validate` / `import`) in the test's own folder, and checks the exit code, the message
and that the hidden `touch` left no file behind.
"""

from __future__ import annotations

import time

import pytest
from helpers import cockpit

from cockpit.importer import import_markdown
from cockpit.runbook import RunbookInvalid

VISIBLE = "## Deploy\n\n```bash\necho deploy-ran\n```\n\n"


def fly(tmp_path, markdown: str, name: str = "x.md"):
    (tmp_path / name).write_text(markdown)
    return cockpit("run", name, "--headless", "--yes")


def runs(markdown: str) -> list[str]:
    """The command text of every step the import makes."""
    book = import_markdown(markdown, "x.md").runbook
    steps = [s for phase in book["phases"] for s in phase["steps"]]
    steps += book.get("rollback", {}).get("steps", [])
    return [s.get("run", "") for s in steps]


# ---------------------------------------------------------------- hidden code never runs

HIDDEN = {
    "html-comment": "<!-- Disabled until fixed:\n```bash\ntouch pwned\n```\n-->\n",
    "comment-over-several-fences-and-a-heading": (
        "<!--\n```bash\ntouch pwned\n```\n\n## Phase 9: Old\n\n```bash\ntouch pwned\n```\n"
        "\n```sh\ntouch pwned\n```\n-->\n"
    ),
    "comment-opened-in-a-list-item": (
        "- Old way, do not use:\n  <!--\n  ```bash\n  touch pwned\n  ```\n  -->\n- Check the logs\n"
    ),
    "comment-left-open-by-a-list-item": (
        "- Old way:\n  <!--\n```bash\ntouch pwned\n```\n\n1. `touch pwned`\n-->\n"
    ),
    "comment-left-open-by-a-quote": "> <!--\n\n```bash\ntouch pwned\n```\n-->\n",
    "script-opened-inline": "Text <script>\n\n```bash\ntouch pwned\n```\n\n</script>\n",
    "pre": "<pre>\n```bash\ntouch pwned\n```\n\n```bash\ntouch pwned\n```\n</pre>\n",
    "details-without-blank-line": (
        "<details><summary>Old commands</summary>\n```bash\ntouch pwned\n```\n</details>\n"
    ),
    "div": "<div hidden>\n```bash\ntouch pwned\n```\n</div>\n",
    "script": "<script>\n```bash\ntouch pwned\n```\n\n</script>\n",
    "custom-tag-block": "<x-disabled>\n```bash\ntouch pwned\n```\n</x-disabled>\n",
    "indented-code-block": "Example of a fence:\n\n    ```bash\n    touch pwned\n    ```\n",
    "indented-code-in-a-list-item": (
        "1. Shown as text:\n\n           ```bash\n           touch pwned\n           ```\n"
    ),
    "quote": "> Never run this:\n>\n> ```bash\n> touch pwned\n> ```\n",
}


@pytest.mark.parametrize("hidden", HIDDEN.values(), ids=HIDDEN.keys())
def test_code_not_shown_as_code_never_becomes_a_step(tmp_path, hidden):
    markdown = f"# Hidden\n\n{VISIBLE}{hidden}\nAfter it.\n"
    assert not any("touch" in run for run in runs(markdown))
    done = fly(tmp_path, markdown)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deploy-ran" in done.stdout
    assert not (tmp_path / "pwned").exists()


def test_hidden_fence_does_not_title_the_next_step():
    markdown = (
        "# T\n\n## Go\n\n<!-- Disabled until fixed:\n```bash\ntouch pwned\n```\n-->\n"
        "```bash\necho next\n```\n"
    )
    book = import_markdown(markdown, "x.md").runbook
    (step,) = book["phases"][0]["steps"]
    assert (step["id"], step["run"]) == ("go", "echo next\n")
    assert "touch pwned" in step["description"]  # kept as text, for the reader


def test_code_after_a_closed_comment_is_shown():
    markdown = (
        "# T\n\n## Go\n\n- Old way:\n  <!--\n  ```bash\n  touch pwned\n  ```\n  -->\n\n"
        "```bash\necho after\n```\n\n<script>x()</script>\n\n```bash\necho later\n```\n"
    )
    assert [run for run in runs(markdown) if run] == ["echo after\n", "echo later\n"]


def test_details_after_a_blank_line_is_shown_so_it_runs(tmp_path):
    # CommonMark ends a <details> HTML block at the blank line: the fence after it is
    # rendered as code (inside the collapsed block), so it is a step like any other.
    markdown = (
        "# Shown\n\n## Deploy\n\n<details><summary>More</summary>\n\n"
        "```bash\ntouch shown\n```\n\n</details>\n"
    )
    done = fly(tmp_path, markdown)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "shown").exists()


def test_front_matter_is_not_a_setext_heading():
    # CommonMark alone reads `---`, `title: x`, `---` as a rule and a heading.
    markdown = (
        "---\ntitle: Upgrade\nweight: 5\n---\n\n# Upgrade\n\n## Go\n\n```bash\necho go\n```\n"
    )
    book = import_markdown(markdown, "x.md").runbook
    assert [p["title"] for p in book["phases"]] == ["Go"]
    assert "description" not in book  # metadata, not text (issue 18)


# ---------------------------------------------------------------- unterminated fences

UNTERMINATED = {
    # The case: the second block's closing line closes the first one.
    "next-block-closes-it": (
        "# T\n\n## Phase 1\n\n```bash\ntouch pwned\n\n## Phase 2\n\n```bash\ntouch pwned\n```\n",
        "5:1",
        "line 10 opens another block (```bash) before this one is closed",
    ),
    "swallows-a-phase-heading": (
        "# T\n\n## Phase 1\n\n```bash\ntouch pwned\n\n## Phase 2\n\nThe end.\n",
        "5:1",
        "no closing ``` line before the end of the document; line 8 (## Phase 2) would be a "
        "heading, and everything from it",
    ),
    "tildes": (
        "# T\n\n## Phase 1\n\n~~~~sh\ntouch pwned\n~~~\n## Phase 2\n",
        "5:1",
        "no closing ~~~~ line before the end of the document; line 8 (## Phase 2)",
    ),
    "swallows-a-fence-opener": (
        "# T\n\n## Phase 1\n\n```bash\necho one\n\n```sh\ntouch pwned\n",
        "5:1",
        "no closing ``` line before the end of the document; line 8 opens another block (```sh)",
    ),
    "swallows-an-opener-of-the-other-kind": (
        "# T\n\n## Phase 1\n\n```bash\necho one\n~~~sh\ntouch pwned\n~~~\n",
        "5:1",
        "no closing ``` line before the end of the document; line 7 opens another block (~~~sh)",
    ),
    "in-a-list-item-swallows-a-heading": (
        "# T\n\n## Phase 1\n\n- ```bash\n  touch pwned\n  ## Phase 2\n- Next item\n",
        "5:3",
        "no closing ``` line before the end of the list item; line 7 (## Phase 2)",
    ),
}


@pytest.mark.parametrize(
    ("markdown", "where", "why"), UNTERMINATED.values(), ids=UNTERMINATED.keys()
)
def test_unterminated_fence_is_refused_where_it_opens(tmp_path, markdown, where, why):
    done = fly(tmp_path, markdown)
    assert done.returncode == 2, done.stdout + done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"x.md:{where}: unterminated code fence (opened here): {why}")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "pwned").exists()
    assert cockpit("history", "--json").stdout.strip() == "[]"  # nothing recorded
    for command in (("validate", "x.md"), ("plan", "x.md")):
        again = cockpit(*command)
        assert (again.returncode, again.stderr.splitlines()[0]) == (2, first)


def test_import_of_an_unterminated_fence_writes_nothing(tmp_path):
    (tmp_path / "x.md").write_text(UNTERMINATED["next-block-closes-it"][0])
    done = cockpit("import", "x.md", "-o", "x.yaml")
    assert done.returncode == 2
    assert done.stderr.startswith("x.md:5:1: unterminated code fence (opened here)")
    assert not (tmp_path / "x.yaml").exists()


def test_a_longer_fence_may_show_a_shorter_one():
    markdown = "# T\n\n## Docs\n\n````markdown\n```bash\necho inside\n```\n````\n"
    assert runs(markdown) == [""]  # one manual step showing it, nothing refused


def test_every_unterminated_fence_is_listed():
    markdown = "# T\n\n- ```bash\n  echo a\n  ```sh\n- ```sh\n  echo b\n  ## c\n- done\n"
    with pytest.raises(RunbookInvalid) as caught:
        import_markdown(markdown, "x.md")
    assert [(p.line, p.col) for p in caught.value.problems] == [(3, 3), (6, 3)]


# A fence never closed over code only renders as code to the end of its list item or of
# the document (a real runbook ends inside one: pasted psql output): it is imported as
# that step, and listed for review where it opens.
LEFT_OPEN = {
    "in-a-list-item": (
        "# T\n\n## Phase 1\n\n- ```bash\n  touch ran\n- Next item\n",
        "5:3 phase-1",
        "list item",
    ),
    "runs-to-the-end": (
        "# T\n\n## Phase 1\n\n```bash\ntouch ran\n\n# done\n",
        "5:1 phase-1",
        "document",
    ),
    "output-under-an-item": (  # no step of its own: the step showing it is flagged
        "# T\n\n## Phase 1\n\n1. Check the position:\n\n   ```\n   pg_current_xlog_location\n"
        "   ------------\n   AD/5C000060\n",
        "7:4 check-the-position",
        "list item",
    ),
    "last-fence-left-open": (
        "# T\n\n## Phase 1\n\n```bash\necho one\n## Phase 2\n```\necho two\n```\n",
        "10:1 phase-1",
        "document",
    ),
    "under-a-checklist-item": (
        "# T\n\n## Phase 1\n\n- [ ] Check the position:\n\n  ```\n  AD/5C000060\n",
        "7:3 check-the-position",  # a task item's code is its own (issue 18)
        "list item",
    ),
    "in-no-step": (  # rollback criteria's text: the runbook's description shows it
        "# T\n\n## Rollback Procedure\n\n### When to Rollback\n\n- errors\n\n```\noutput\n",
        "9:1 description",
        "document",
    ),
}


@pytest.mark.parametrize(
    ("markdown", "where", "container"), LEFT_OPEN.values(), ids=LEFT_OPEN.keys()
)
def test_fence_left_open_over_code_is_imported_and_flagged(tmp_path, markdown, where, container):
    (tmp_path / "x.md").write_text(markdown)
    done = cockpit("import", "x.md", "-o", "x.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    warning = f"code fence never closed; it runs to the end of the {container}: check where it ends"
    assert f"  x.md:{where}: {warning}" in done.stderr.splitlines()
    assert done.stderr.count("never closed") == 1
    assert warning in (tmp_path / "x.yaml").read_text()  # the step's description says so
    assert cockpit("validate", "x.md").returncode == 0


def test_fence_left_open_runs_as_the_step_it_renders_as(tmp_path):
    done = fly(tmp_path, LEFT_OPEN["in-a-list-item"][0])
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "ran").exists()
    book = import_markdown(LEFT_OPEN["in-a-list-item"][0], "x.md").runbook
    step, _next_item = book["phases"][0]["steps"]
    assert step["run"] == "touch ran\n"
    assert "code fence never closed; it runs to the end of the list item" in step["description"]


# ---------------------------------------------------------------- fences in list items


@pytest.mark.parametrize("marker", ["-", "*", "1.", "2)"])
def test_fence_right_after_a_list_marker_is_a_step(tmp_path, marker):
    pad = " " * (len(marker) + 1)
    markdown = (
        f"# T\n\n## Deploy\n\n{marker} ```bash\n{pad}touch three\n{pad}```\n"
        f"{marker} Check the dashboard\n"
    )
    book = import_markdown(markdown, "x.md").runbook
    kinds = [(s["kind"], s.get("run") or s.get("items")) for s in book["phases"][0]["steps"]]
    assert kinds == [("shell", "touch three\n"), ("manual", ["Check the dashboard"])]
    done = fly(tmp_path, markdown)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "three").exists()


def test_item_text_titles_every_fence_in_the_item():
    markdown = (
        "# T\n\n## Deploy\n\n1. Restart the workers\n\n   ```bash\n   echo a\n   ```\n\n"
        "   ```bash\n   echo b\n   ```\n2. Done\n"
    )
    steps = import_markdown(markdown, "x.md").runbook["phases"][0]["steps"]
    assert [(s["title"], s.get("run")) for s in steps[:2]] == [
        ("Restart the workers", "echo a\n"),
        ("Restart the workers", "echo b\n"),
    ]


# ---------------------------------------------------------------- bounded


def fences(count: int) -> str:
    """``count`` fences under one heading: the issue's 20,000 took 25 s to import."""
    return "# T\n\n## Deploy\n\n" + "".join(f"```bash\necho {n}\n```\n\n" for n in range(count))


def test_many_fences_under_one_heading_import_in_linear_time():
    def cost(count: int) -> float:
        text = fences(count)
        best = float("inf")
        for _ in range(2):
            started = time.process_time()
            book = import_markdown(text, "x.md").runbook
            best = min(best, time.process_time() - started)
        ids = [s["id"] for s in book["phases"][0]["steps"]]
        assert len(set(ids)) == count and ids[:3] == ["deploy", "deploy-2", "deploy-3"]
        return best

    small, large = cost(400), cost(4000)
    assert large / small < 30, f"10x the fences took {large / small:.0f}x the time"


def test_every_fence_left_open_is_listed_even_with_the_same_code():
    markdown = "# T\n\n## P\n\n- [ ] a\n\n  ```\n  out\n- [ ] b\n\n  ```\n  out\n"
    summary = import_markdown(markdown, "x.md").summary
    assert [(u.line, u.column, u.step) for u in summary.uncertain] == [(7, 3, "a"), (11, 3, "b")]
