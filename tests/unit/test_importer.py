"""The Markdown importer: the seed runbook and three other styles import into runbooks
that validate; nothing is dropped; `cockpit import` and .md runbooks through the CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import TEST_DATA, cockpit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.controls import find_control
from cockpit.importer import ImportFailed, import_file, import_markdown
from cockpit.runbook import RunbookInvalid, parse_runbook

SEED = TEST_DATA / "seed" / "deployment-runbook.md"  # a copy of the seed
DATA = TEST_DATA / "markdown"
SHELL = ("bash", "sh", "shell", "console")


def steps_of(book: dict) -> list[dict]:
    steps = [step for phase in book["phases"] for step in phase["steps"]]
    return steps + book.get("rollback", {}).get("steps", [])


def shown(text) -> str:
    """A templated text as it reads once resolved: ``$$`` is a dollar sign."""
    return str(text).replace("$$", "$")


def source_line(step: dict) -> int:
    match = re.search(
        r"\nsource: [^\n:]+\.md:(\d+)$|^source: [^\n:]+\.md:(\d+)$", step["description"]
    )
    assert match, f"step {step['id']} has no source line: {step['description']!r}"
    return int(match.group(1) or match.group(2))


def fences(path: Path) -> list[tuple[str, int, list[str]]]:
    """(language, line of the opening fence, code lines) of every top-level fence."""
    found, lines, open_at = [], path.read_text().splitlines(), None
    for number, line in enumerate(lines, 1):
        if line.startswith("```") and open_at is None:
            open_at, language = number, line[3:].strip()
        elif line.startswith("```"):
            found.append((language, open_at, lines[open_at : number - 1]))
            open_at = None
    return found


@pytest.fixture(scope="module")
def seed():
    imported = import_file(SEED)
    return imported, parse_runbook(imported.yaml, "seed.yaml")


# ---------------------------------------------------------------- the seed runbook


def test_seed_validates_with_its_phases_rollback_and_kinds(seed):
    imported, runbook = seed
    titles = [phase.title for phase in runbook.phases]
    numbered = [t for t in titles if t.startswith("Phase ")]
    assert numbered == [
        "Phase 1: Preparation (30 minutes before)",
        "Phase 2: Database Migration (15-30 minutes)",
        "Phase 3: Backend Deployment (20-30 minutes)",
        "Phase 4: Frontend Deployment (15-20 minutes)",
        "Phase 5: Post-Deployment Verification (15-20 minutes)",
        "Phase 6: Cron Jobs Setup",
        "Phase 7: Monitoring Setup",
        "Phase 8: Final Steps",
    ]
    # The checklist before the phases comes first; sign-off and reference sections after.
    assert titles[0] == "Pre-Deployment Checklist"
    assert titles[-1] == "Sign-Off"
    assert [p.id for p in runbook.phases if p.deploy] == [
        "phase-3-backend-deployment",
        "phase-4-frontend-deployment",
    ]
    assert runbook.rollback.criteria == (
        "Critical bug affecting > 50% of users",
        "Data corruption detected",
        "Security vulnerability exposed",
        "Performance degradation > 50%",
        "Multiple critical errors",
    )
    rollback_kinds = {step.kind for step in runbook.rollback.steps}
    assert {"redis", "k8s", "shell", "http", "manual"} <= rollback_kinds
    kinds = {step.kind for step in runbook.steps}
    assert {"http", "redis", "k8s", "backup", "sql", "manual", "notify", "shell"} <= kinds
    assert set(runbook.secrets) == {"DATABASE_URL", "REDIS_URL", "ADMIN_KEY", "TEST_API_KEY"}
    assert runbook.version == "2.0"
    summary = imported.summary
    assert summary.phases == len(runbook.phases) == 13
    assert sum(summary.kinds.values()) == len(runbook.steps)
    assert summary.kinds["backup"] == 1 and summary.kinds["notify"] == 2
    assert summary.rollback_steps == len(runbook.rollback.steps)


def test_seed_typed_steps_carry_what_the_commands_said(seed):
    _, runbook = seed
    by_title = {step.title: step for step in (*runbook.steps, *runbook.rollback.steps)}

    backup = by_title["Create Backup"]
    assert backup.kind == "backup"
    assert dict(backup.fields) == {"dsn": "${DATABASE_URL}", "to": "s3://${BACKUPS}/${date}/"}
    assert runbook.variables["BACKUPS"] == "your-backups"

    flag = by_title["Enable Maintenance Mode (if needed): Set maintenance mode flag"]
    assert (flag.kind, list(flag.fields["command"]), flag.fields["maintenance"]) == (
        "redis",
        ["SET", "maintenance_mode", "true"],
        True,
    )
    assert flag.optional and flag.confirm  # "(if needed)": the operator decides

    health = by_title["Deploy Backend (Rolling Deployment): Verify deployment"]
    assert health.kind == "http" and health.fields["url"] == "http://localhost:3000/health"
    assert health.expect == {"json": {"status": "ok", "version": "2.0"}}
    created = by_title["Smoke Tests: Create signal"]
    assert created.fields["method"] == "POST"
    assert created.fields["token"] == "${TEST_API_KEY}"
    assert created.fields["json"] == {"content": "Test signal", "source": "test"}
    assert created.fields["url"] == "https://${DOMAIN}/api/signals"
    assert created.expect == {"status": 201}
    assert by_title["Smoke Tests: Authentication"].expect == {"body": r"^\s*\["}
    assert by_title["Smoke Tests: Export data"].expect == {"content_type": "text/csv"}

    tables = by_title["Verify Tables Created: Check new tables exist"]
    assert tables.kind == "sql" and len(tables.expect["tables_exist"]) == 15
    assert "feedback_tickets" in tables.expect["tables_exist"]
    pool = by_title["Database Health: Check connection pool"]
    assert pool.fields["query"].startswith("SELECT count(*) as active_connections")

    image = by_title["Deploy Frontend: If using Kubernetes"]
    assert dict(image.fields) == {
        "action": "set_image",
        "deployment": "frontend",
        "container": "frontend",
        "image": "${REGISTRY}/frontend:v2.0",
    }
    undo = by_title["Deploy Previous Version: Or with Kubernetes"]
    assert (undo.kind, undo.fields["action"], undo.fields["deployment"]) == (
        "k8s",
        "rollout_undo",
        "backend",
    )

    notice = by_title["Notify Stakeholders"]
    assert notice.fields["template"].startswith("Deployment starting at ${now}\n")
    assert "Monitoring: ${DASHBOARD_URL}" in notice.fields["template"]
    assert "Send to: Engineering team, Product team" in notice.description


def test_seed_alternatives_are_optional_choices_never_a_sequence(seed):
    _, runbook = seed
    deploy = [s for s in runbook.steps if s.title.startswith("Deploy Backend (Rolling")]
    choices = [s for s in deploy if "One of 3 alternatives" in s.description]
    assert [s.title.split(": ")[1] for s in choices] == [
        "If using PM2",
        "If using Docker",
        "If using Kubernetes",
        "If using Kubernetes",
    ]
    assert choices[-1].title == (
        "Deploy Backend (Rolling Deployment): If using Kubernetes: "
        "kubectl rollout status deployment/backend"
    )
    assert all(s.optional and s.confirm for s in choices)
    after = deploy[-1]  # "Verify deployment" follows the alternatives, for all of them
    assert after.kind == "http" and not after.optional
    restore = [s for s in runbook.rollback.steps if s.title.startswith("Restore Database")]
    assert len(restore) == 2 and all(s.optional and s.confirm for s in restore)


def test_seed_alerts_and_reference_sections(seed):
    imported, runbook = seed
    assert imported.runbook["alerts"] == [
        {
            "name": "error-rate-critical",
            "metric": "error_rate",
            "above": 0.05,
            "for": "5m",
            "severity": "critical",
        },
        {
            "name": "p95-ms-critical",
            "metric": "p95_ms",
            "above": 5000,
            "for": "5m",
            "severity": "critical",
        },
        {
            "name": "error-rate-warning",
            "metric": "error_rate",
            "above": 0.02,
            "for": "10m",
            "severity": "warning",
        },
        {
            "name": "p95-ms-warning",
            "metric": "p95_ms",
            "above": 2000,
            "for": "10m",
            "severity": "warning",
        },
    ]
    assert [rule.name for rule in runbook.alerts] == [
        rule["name"] for rule in imported.runbook["alerts"]
    ]
    # Troubleshooting commands never run in the flow: optional manual steps that keep them.
    trouble = next(p for p in runbook.phases if p.title == "Troubleshooting")
    assert all(s.kind == "manual" and s.optional for s in trouble.steps)
    assert "pm2 restart backend" in trouble.steps[0].description
    configure = next(s for s in runbook.steps if s.title.startswith("Configure Alerts: "))
    assert configure.kind == "manual"
    assert "Warning alerts: Dead letter queue items > 100" in configure.fields["items"]


def test_seed_summary_lists_what_to_review(seed):
    imported, _ = seed
    summary = imported.summary
    reasons = {(u.line, u.reason.split(":")[0]) for u in summary.uncertain}
    assert (396, "a crontab entry, not a command") in reasons
    assert (108, "SQL written as a shell line (meant for psql?)") in reasons
    assert (543, "expectation not checked") in reasons
    assert any(u.line == 244 and "tail -f" in u.reason for u in summary.uncertain)
    assert summary.placeholders["DOMAIN"] == "your-domain.com"
    text = "\n".join(summary.lines())
    assert text.startswith("imported deployment-runbook.md: 13 phases, ")
    assert "1 backup" in text and "deployment-runbook.md:396 set-up-materialized" in text


def test_seed_shell_code_is_kept_exactly_or_accounted_for(seed):
    imported, _ = seed
    steps = steps_of(imported.runbook)
    for language, opened, code in fences(SEED):
        if language not in SHELL:
            continue
        closed = opened + len(code) + 1
        mine = sorted((s for s in steps if opened <= source_line(s) <= closed), key=source_line)
        assert mine, f"the block at line {opened} made no step"
        runs = [s["run"] for s in mine if s["kind"] == "shell"]
        if len(mine) == 1 and runs:
            assert runs[0] == "\n".join(code) + "\n", f"block at line {opened} changed"
        for number, text in enumerate(code, opened + 1):
            if not text.strip():
                continue
            if any(text in run.splitlines() for run in runs):
                continue
            owner = max(
                (s for s in mine if source_line(s) <= number), key=source_line, default=mine[0]
            )
            said = text.strip().lstrip("#").strip().removeprefix("- ")
            if said == "or":  # the marker between alternatives
                assert "alternatives" in owner["description"]
                continue
            known = [shown(owner["description"]), *map(shown, owner.get("items", ()))]
            assert owner["kind"] != "shell" or any(said in k for k in known), (
                f"line {number} {text!r} is in no step"
            )
            if text.strip().startswith("#"):
                described = shown(
                    " ".join(
                        f"{s['title']} {s['description']} {s.get('items', '')} {s.get('run', '')}"
                        for s in mine
                    )
                )
                assert said.rstrip(":") in described, f"comment at line {number} was dropped"


def test_seed_yaml_is_readable():
    text = import_file(SEED).yaml
    assert text.startswith("# Imported from deployment-runbook.md")
    assert "    run: |\n      cd backend\n\n      # Install dependencies\n" in text
    assert "    command: [SET, maintenance_mode, 'true']\n" in text
    first = yaml.safe_load(text)["phases"][1]["steps"][0]
    assert list(first)[:3] == ["id", "title", "kind"]


# ---------------------------------------------------------------- other styles


def load(name: str):
    imported = import_file(DATA / name)
    return imported, parse_runbook(imported.yaml, name)


def test_numbered_lists_of_commands():
    imported, runbook = load("numbered-commands.md")
    assert runbook.name == "Release the billing worker"
    assert [p.title for p in runbook.phases] == ["Prepare", "Ship"]
    prepare, ship = runbook.phases
    assert [(s.kind, s.title) for s in prepare.steps] == [
        ("manual", "Announce the release in the team channel"),  # its one item
        ("shell", "Check the working copy is clean"),
        ("shell", "echo preparing > prepare.log"),
    ]
    assert prepare.steps[0].fields["items"] == ["Announce the release in the team channel."]
    assert prepare.steps[2].fields["run"] == "echo preparing > prepare.log\n"
    build, show, health, tell = ship.steps
    assert build.fields["run"] == 'mkdir -p dist\necho "worker <version>" > dist/VERSION\n'
    assert show.fields["run"] == "cat dist/VERSION\n"
    assert (health.kind, health.fields["url"], health.fields["token"], health.expect) == (
        "http",
        "${BASE_URL}/health",
        "${DEPLOY_TOKEN}",
        {"status": 200},
    )
    assert tell.kind == "notify"
    assert tell.fields["template"] == "Billing worker ${VERSION} is live as of ${now}"
    assert runbook.secrets == ("DEPLOY_TOKEN",)
    assert runbook.variables == {"BASE_URL": "", "VERSION": "[VERSION]"}
    assert runbook.rollback.criteria == (
        "Error rate > 2% for 5 minutes",
        "The invoice queue keeps growing",
    )
    assert [s.kind for s in runbook.rollback.steps] == ["shell", "manual"]
    assert runbook.rollback.steps[0].confirm  # rm -rf: the operator says yes first
    assert [a.name for a in runbook.alerts] == ["error-rate-warning"]
    assert imported.summary.unset == ["BASE_URL"]
    assert [(u.line, u.step) for u in imported.summary.uncertain] == [(18, "build-the-artefact")]


def test_console_page_keeps_commands_without_prompts_or_output():
    _, runbook = load("console-page.md")
    (phase,) = runbook.phases
    assert phase.title == "Upgrading the cache tier"
    kinds = [step.kind for step in phase.steps]
    assert kinds == ["redis", "http", "shell", "k8s", "k8s", "redis"]
    on, health, upgrade, restart, status, off = phase.steps
    assert on.fields["maintenance"] and off.fields["command"] == ["DEL", "maintenance_mode"]
    assert health.title == "Check the node answers before touching it"
    assert health.expect == {"json": {"status": "ok", "role": "cache"}}  # from its output
    assert upgrade.fields["run"] == (
        "export CACHE_VERSION=7.2\nsudo systemctl stop cache\n"
        'sudo apt-get install -y "cache=$CACHE_VERSION" \\\n  --no-install-recommends\n'
        "sudo systemctl start cache\n"
    )
    assert "Reading package lists... Done" in upgrade.description
    assert (restart.fields["action"], restart.fields["namespace"]) == ("restart", "infra")
    assert status.fields["action"] == "rollout_status"
    assert "CACHE_VERSION" not in runbook.variables  # set by the block itself
    assert runbook.secrets == ("REDIS_URL",)


def test_nested_headings_without_phases():
    _, runbook = load("nested-headings.md")
    assert [p.title for p in runbook.phases] == ["Build", "Publish"]
    assert [[s.title for s in p.steps] for p in runbook.phases] == [
        ["Prepare the output folder", "Render the pages"],
        ["Copy into place", "Check the result"],
    ]
    render = runbook.phases[0].steps[1]
    assert render.fields["run"].startswith("# Render the index\nprintf '<h1>%s</h1>\\n'")
    assert render.description.startswith("The title comes from `SITE_TITLE` when it is set.")
    assert runbook.description.startswith("Rebuilds the status page")


def test_nested_headings_md_flies_headless(tmp_path):
    shutil.copy(DATA / "nested-headings.md", tmp_path / "site.md")
    assert cockpit("validate", "site.md").returncode == 0
    plan = cockpit("plan", "site.md")
    assert plan.returncode == 0, plan.stderr
    assert "2.2 check-the-result (shell): Check the result" in plan.stdout
    done = cockpit("run", "site.md", "--headless", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published" in done.stdout
    assert (tmp_path / "public" / "index.html").read_text() == "<h1>Status</h1>\n"


def test_resume_a_md_runbook(tmp_path):
    (tmp_path / "flaky.md").write_text(
        "# Flaky\n\n## Go\n\n### Once\n```bash\ntest -e flag || { touch flag; exit 3; }\n```\n"
        "\n### Then\n```bash\necho second\n```\n"
    )
    first = cockpit("run", "flaky.md", "--headless", "--yes")
    assert first.returncode == 1, first.stdout + first.stderr
    resumed = cockpit("resume", "last", "--headless", "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "second" in resumed.stdout


# ---------------------------------------------------------------- rules, one by one


def book_of(markdown: str) -> dict:
    imported = import_markdown(markdown, "t.md")
    parse_runbook(imported.yaml, "t.yaml")
    return imported.runbook


def test_mixed_block_stays_one_shell_step_and_is_flagged():
    code = "cd app\ncurl http://127.0.0.1:9/health\nredis-cli DEL maintenance_mode"
    imported = import_markdown(f"# T\n## Go\n```bash\n{code}\n```\n", "t.md")
    (step,) = steps_of(imported.runbook)
    assert step["run"] == code + "\n"
    (doubt,) = imported.summary.uncertain
    assert (doubt.line, doubt.step) == (4, "go")
    assert "kept as one shell step: it mixes curl, redis-cli" in doubt.reason


def test_independent_lines_split_into_typed_and_shell_steps():
    book = book_of(
        "# T\n## Go\n```bash\n# Health\ncurl http://127.0.0.1:9/health\n"
        "ls -la | wc -l\nredis-cli GET release\n```\n"
    )
    assert [(s["kind"], s["title"]) for s in steps_of(book)] == [
        ("http", "Go: Health"),
        ("shell", "Go"),
        ("redis", "Go: redis-cli GET release"),
    ]
    assert steps_of(book)[1]["run"] == "ls -la | wc -l\n"


def test_unsafe_commands_stay_shell():
    for line in (
        "curl -k https://x.example",
        "curl http://h/x | jq .",
        "psql $DB -f x.sql",
        "kubectl delete pod x",
        "redis-cli -a pw SET a b",
        "curl $(cat url)",
    ):
        (step,) = steps_of(book_of(f"# T\n## Go\n```bash\n{line}\n```\n"))
        assert (step["kind"], step["run"]) == ("shell", line + "\n")


def test_variables_secrets_and_dollar_signs():
    book = book_of(
        "# T\n## Go\n```bash\nexport LOCAL=1\necho $LOCAL $HOME $API_TOKEN "
        "${BASE_URL} $PG_DATABASE_URL\n```\n```bash\n"
        "curl -X POST -H 'Content-Type: text/plain' -d 'five' "
        "https://your-shop.example/pay\ncurl -d 'costs $5' http://h/\n```\n"
        '```\nTemplate:\n"Costs $5 at [TIME]"\n```\n'
    )
    assert book["secrets"] == ["API_TOKEN", "PG_DATABASE_URL"]
    assert book["variables"] == {"BASE_URL": "", "SHOP": "your-shop.example"}
    pay, unknown, note = steps_of(book)[1:]
    assert (pay["body"], pay["url"]) == ("five", "https://${SHOP}/pay")
    assert unknown["run"] == "curl -d 'costs $5' http://h/\n"  # can't tell how $5 expands
    assert note["template"] == "Costs $$5 at ${now}"


def test_empty_and_plain_text_documents_still_validate():
    for text in ("", "just words\n", "# Only a title\n"):
        book = book_of(text)
        assert len(book["phases"]) == 1
        assert steps_of(book)[0]["kind"] == "manual"
    assert book_of("just words\n")["description"] == "just words"


def test_bad_files(tmp_path):
    with pytest.raises(ImportFailed, match=r"^nope\.md: no such file$"):
        import_file("nope.md")
    (tmp_path / "latin.md").write_bytes(b"# T\n\ncaf\xe9\n")
    with pytest.raises(ImportFailed, match=r"^latin\.md:3: not UTF-8 text"):
        import_file("latin.md")


# ---------------------------------------------------------------- the command


def test_cockpit_import_writes_yaml_that_validates(tmp_path):
    out = cockpit("import", SEED)
    assert out.returncode == 0
    assert yaml.safe_load(out.stdout)["runbook"] == "Deployment Runbook"
    assert out.stderr.startswith("imported deployment-runbook.md: 13 phases")
    assert "to review:" in out.stderr

    written = cockpit("import", SEED, "-o", "seed.yaml")
    assert (written.returncode, written.stdout) == (0, "")
    assert (tmp_path / "seed.yaml").read_text() == out.stdout
    checked = cockpit("validate", "seed.yaml", SEED)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count(": Deployment Runbook, 13 phases, 74 steps") == 2

    again = cockpit("import", SEED, "-o", "seed.yaml")
    assert again.returncode == 2
    assert again.stderr == "cockpit: seed.yaml exists: pass --force to overwrite it\n"
    assert cockpit("import", SEED, "-o", "seed.yaml", "--force").returncode == 0


def test_cockpit_import_bad_input_is_one_line(tmp_path):
    missing = cockpit("import", "missing.md")
    assert (missing.returncode, missing.stderr) == (2, "cockpit: missing.md: no such file\n")
    (tmp_path / "bad.md").write_bytes(b"\xff\xfe# T\n")
    bad = cockpit("import", "bad.md")
    assert bad.returncode == 2
    assert bad.stderr == ("cockpit: bad.md:1: not UTF-8 text: a Markdown runbook must be UTF-8\n")


# ---------------------------------------------------------------- any Markdown

# Control characters are refused before a Markdown runbook is imported.
WORDS = st.text(
    st.characters(blacklist_categories=("Cs",)).filter(lambda c: not find_control(c)), max_size=30
)
CODE = st.one_of(
    st.sampled_from(
        [
            "curl http://127.0.0.1/x",
            "# Expected: 200 OK",
            '# Should return: {"a": [1]}',
            "# Expected new tables:",
            "# - t1",
            "redis-cli SET maintenance_mode true",
            "kubectl set image deployment/a a=your-registry/a:<tag>",
            "kubectl rollout undo deployment/a --to-revision=2",
            "kubectl scale deploy/a --replicas=x",
            'psql $DATABASE_URL -c "SELECT 1"',
            'psql $DB -c "\\dt+"',
            "pg_dump $DATABASE_URL > b",
            "aws s3 cp b s3://your-backups/$(date +%Y%m%d)/",
            "pg_restore --list b",
            "# If using Docker",
            "# or",
            "# Or with Kubernetes",
            "$ echo hi",
            "$",
            "> more",
            "cd app",
            "export X=1",
            'echo "unclosed',
            "cat <<EOF",
            "EOF",
            "- item",
            "Template:",
            '"Hello [TIME] from [WHERE]"',
            "0 * * * * echo",
            "echo $TOKEN ${BASE_URL} `date`",
            "curl -d '{\"a\": \"$x\"}' -H 'Content-Type: application/json' http://h/$A",
            "\\",
            "- Error rate > 5% for 5 minutes",
            "# Critical:",
            "  indented",
            "tail -f log",
        ]
    ),
    WORDS,
)
BLOCK = st.one_of(
    st.builds(lambda level, text: "#" * level + " " + text, st.integers(1, 6), WORDS),
    st.builds(
        lambda lang, lines, tick: "\n".join([tick + lang, *lines, tick]),
        st.sampled_from(["bash", "console", "sh", "", "text", "shell"]),
        st.lists(CODE, max_size=8),
        st.sampled_from(["```", "~~~", "   ```"]),
    ),
    st.builds(
        lambda marker, text: f"{marker} {text}",
        st.sampled_from(["-", "- [ ]", "1.", "*", "  -", "- [x]"]),
        WORDS,
    ),
    st.sampled_from(
        [
            "---",
            "**Sign-Off**",
            "1. `echo hi`",
            "2. Run `make it`",
            "## Rollback Procedure",
            "### When to Rollback",
            "## Troubleshooting",
            "### Phase 1: Go (5 minutes)",
            "#### 1. Step (if needed)",
            "",
            "```",
        ]
    ),
    WORDS,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(BLOCK, max_size=30).map("\n".join))
def test_any_markdown_imports_into_a_valid_runbook(text):
    try:
        imported = import_markdown(text, "any.md")
    except RunbookInvalid as exc:  # an unclosed fence is refused, never guessed at
        assert all(p.message.startswith("unterminated code fence") for p in exc.problems)
        return
    runbook = parse_runbook(imported.yaml, "any.yaml")
    assert runbook.phases and all(phase.steps for phase in runbook.phases)
    lines = max(1, len(re.split(r"\r\n|\r|\n", text)))
    made = {step["id"]: step for step in steps_of(imported.runbook)}
    for step in (*runbook.steps, *runbook.rollback.steps):
        assert 1 <= int(step.description.rsplit(":", 1)[1]) <= lines
        for key in ("run", "query", "template", "items"):  # the YAML gives back exactly these
            assert step.fields.get(key) == made[step.id].get(key)
    assert sum(imported.summary.kinds.values()) == len(runbook.steps)
