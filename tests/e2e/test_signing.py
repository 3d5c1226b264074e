"""Four eyes that can not be faked (issue 20): approvals, sign-offs and a protected
run's start and end signed with OpenSSH keys (the machine's real ssh-keygen and
ssh-agent), checked against an allowed_signers file; two Unix accounts made for the
test, a key each, the run's own account with its key, and a key nobody allows."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import textwrap
import threading
from pathlib import Path

import pytest
import redis
from helpers import cockpit, cockpit_process, until, wait_for

from cockpit import chain, signing
from cockpit.identity import Identity, account
from cockpit.journal import Journal

PRODUCTION = ("--env", "production", "--confirm-env", "production")  # protected, name typed
ME = account()  # who runs the tests: flies the runs here


def keygen(folder, name: str) -> tuple[str, str]:
    """A new ed25519 key pair in ``folder``: (private key path, public key line)."""
    path = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path], check=True
    )
    return str(path), (folder / f"{name}.pub").read_text().strip()


def fingerprint_of(public: str, folder) -> str:
    path = folder / "one.pub"
    path.write_text(public + "\n")
    done = subprocess.run(["ssh-keygen", "-l", "-f", path], capture_output=True, text=True)
    return done.stdout.split()[1]


@pytest.fixture
def keys(accounts, tmp_path):
    """A key for the run's account, for alice and bob, and mallory's (not allowed); the
    allowed_signers file listing the first three for their accounts."""
    alice, bob = accounts
    folder = tmp_path / "keys"
    folder.mkdir()
    made = {who: keygen(folder, who) for who in ("me", "alice", "bob", "mallory")}
    allowed = folder / "allowed_signers"
    allowed.write_text(
        "".join(
            f'{name} namespaces="cockpit" {" ".join(made[who][1].split()[:2])}\n'
            for who, name in (("me", ME), ("alice", alice.name), ("bob", bob.name))
        )
    )
    return made, allowed


def config(tmp_path, allowed, key: str, name: str, redis_url: str | None = None) -> str:
    """A config whose signing key is ``key``; team mode with ``redis_url``."""
    path = tmp_path / f"{name}.toml"
    team = (
        'redis_url = "env:TEAM_REDIS"\nlock_ttl = "2s"\nheartbeat = "0.5s"\n' if redis_url else ""
    )
    path.write_text(
        textwrap.dedent(f"""\
        [team]
        allowed_signers = "{allowed}"
        signing_key = "{key}"
        """)
        + team
        + '[environments.production]\nconfirm = true\nlabel = "PRODUCTION"\n'
    )
    return str(path)


def test_a_signature_verifies_for_its_account_only(keys, accounts, tmp_path):
    made, allowed = keys
    alice, bob = accounts
    data = signing.message("approve", run="r", step="s")
    signature = signing.Signer(made["alice"][0]).sign(data)
    assert signing.fingerprint(signature) == fingerprint_of(made["alice"][1], tmp_path)
    assert signing.check(allowed, alice.name, data, signature).ok
    other = signing.check(allowed, bob.name, data, signature)
    assert not other.ok and f"is not one {allowed} allows for {bob.name}" in other.problem
    changed = signing.message("approve", run="r", step="t")
    assert not signing.check(allowed, alice.name, changed, signature).ok
    unknown = signing.Signer(made["mallory"][0]).sign(data)
    assert not signing.check(allowed, alice.name, data, unknown).ok


def test_signing_through_the_agent(keys, tmp_path, monkeypatch):
    made, allowed = keys
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", socket_path], stdout=subprocess.DEVNULL)
    try:
        wait_for(socket_path.exists, "the agent's socket")
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        subprocess.run(["ssh-add", "-q", made["me"][0]], check=True, capture_output=True)
        data = signing.message("end", run="r", head="abc")
        signature = signing.Signer().sign(data)  # no key file: the agent's key
        assert signing.check(allowed, ME, data, signature).ok
        subprocess.run(["ssh-add", "-D"], check=True, capture_output=True)
        with pytest.raises(signing.SigningError, match="holds no key"):
            signing.Signer().sign(data)
    finally:
        agent.terminate()
        agent.wait()
    monkeypatch.delenv("SSH_AUTH_SOCK")
    with pytest.raises(signing.SigningError, match="SSH_AUTH_SOCK is not set"):
        signing.Signer().ready()


def guarded(tmp_path) -> Path:
    """A runbook whose one step waits for three approvals."""
    book = tmp_path / "guarded.yaml"
    book.write_text(
        "runbook: Guarded\nphases:\n  - id: p\n    steps:\n"
        "      - {id: migrate, run: 'echo migrated', approve: 3}\n"
    )
    return book


def test_signed_approvals_sign_offs_and_a_protected_run(
    keys, accounts, tmp_path, redis_url, monkeypatch
):
    made, allowed = keys
    alice, bob = accounts
    monkeypatch.setenv("TEAM_REDIS", redis_url)
    mine = config(tmp_path, allowed, made["me"][0], "me", redis_url)
    hers = config(tmp_path, allowed, made["alice"][0], "alice", redis_url)
    his = config(tmp_path, allowed, made["bob"][0], "bob", redis_url)
    forger = config(tmp_path, allowed, made["mallory"][0], "mallory", redis_url)
    book = guarded(tmp_path)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    seen: list[str] = []
    listening = client.pubsub()
    listening.psubscribe("cockpit:approve:*")

    def capture() -> None:  # what anyone with the Redis password can read
        try:
            for message in listening.listen():
                if message["type"] == "pmessage" and not message["channel"].endswith(":reply"):
                    seen.append(message["data"])
        except (redis.ConnectionError, ValueError):
            return  # closed at the test's end

    threading.Thread(target=capture, daemon=True).start()
    run = cockpit_process("run", "--headless", book, *PRODUCTION, env={"COCKPIT_CONFIG": mine})
    journal = Journal(tmp_path / "data" / "cockpit" / "journal.sqlite3")
    try:
        run_id = wait_for(
            lambda: json.loads(client.get("cockpit:lock:production") or "null"), "the lock"
        )["run_id"]
        wait_for(
            lambda: any(r["status"] == "waiting-confirm" for r in journal.steps(run_id)),
            "the step to wait for approval",
        )

        def approve(cfg: str, who=None):
            env = {"COCKPIT_CONFIG": cfg, **(who.via_sudo if who else {})}
            return cockpit("approve", run_id, "migrate", env=env)

        own = approve(mine)
        assert own.returncode == 2 and f"{ME} flies run {run_id}" in own.stderr
        borrowed = approve(mine, alice)  # the run's own key, claiming alice's account
        assert borrowed.returncode == 2
        assert f"allows for {alice.name}, or the signature does not match" in borrowed.stderr
        forged = approve(forger, alice)  # mallory's key, claiming alice's account
        assert forged.returncode == 2
        assert f"allows for {alice.name}, or the signature does not match" in forged.stderr
        unsigned = json.dumps(
            {"step": "migrate", "by": "alice", "account": alice.name, "host": "x", "nonce": "n1"}
        )
        client.publish(f"cockpit:approve:{run_id}", unsigned)  # straight on Redis
        first = approve(hers, alice)
        assert first.returncode == 0, first.stderr
        assert f"as {alice.name} (tester) (1 of 2)" in first.stdout
        wait_for(lambda: len(seen) >= 5, "the approvals published")
        client.publish(f"cockpit:approve:{run_id}", seen[-1])  # alice's, replayed
        wait_for(
            lambda: sum(e["type"] == "ApprovalRefused" for e in journal.events(run_id)) == 5,
            "the replay refused",
        )
        second = approve(his, bob)
        assert second.returncode == 0, second.stderr
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
        listening.close()
        client.close()
    assert run.returncode == 0, err
    assert "migrate | migrated" in out
    events = journal.events(run_id)
    refused = [e["data"]["reason"] for e in events if e["type"] == "ApprovalRefused"]
    assert refused[0].startswith(f"{ME} flies run {run_id}")
    assert "allows for" in refused[1] and "allows for" in refused[2]
    assert refused[3] == "unsigned: this run takes only approvals signed with an SSH key"
    assert refused[4] == "its nonce was used already: a replay"
    keys_refused = [e["data"]["fingerprint"] for e in events if e["type"] == "ApprovalRefused"]
    assert keys_refused[1:3] == [
        fingerprint_of(made["me"][1], tmp_path),
        fingerprint_of(made["mallory"][1], tmp_path),
    ]
    approved = [
        (e["data"]["account"], e["data"]["fingerprint"], e["data"]["verified"])
        for e in events
        if e["type"] == "StepApproved"
    ]
    assert approved == [
        (alice.name, fingerprint_of(made["alice"][1], tmp_path), True),
        (bob.name, fingerprint_of(made["bob"][1], tmp_path), True),
    ]
    sealed = [e["data"]["purpose"] for e in events if e["type"] == "RecordSigned"]
    assert sealed == ["start", "end"]

    signed = cockpit(
        "signoff", run_id, "--role", "verifier", env={"COCKPIT_CONFIG": his, **bob.via_sudo}
    )
    assert signed.returncode == 0, signed.stderr
    verified = cockpit("verify", run_id, env={"COCKPIT_CONFIG": mine})
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the two approvals, the run's start and end, the verifier's sign-off
    assert verified.stdout.endswith("; 5 signatures verified\n"), verified.stdout
    report = cockpit("report", run_id, env={"COCKPIT_CONFIG": mine}).stdout
    host = socket.gethostname()
    key = fingerprint_of(made["alice"][1], tmp_path)
    assert f"approved by {alice.name} (tester) on {host} (1 of 2); key {key}, verified" in report
    assert "5 signatures verified" in report
    bobs = fingerprint_of(made["bob"][1], tmp_path)
    assert f"- **Verifier**: {bob.name} (tester), " in report
    assert f" on {host}, key {bobs}\n" in report

    # the record rewritten with its hashes made again: the signature shows it
    journal.close()
    db = sqlite3.connect(tmp_path / "data" / "cockpit" / "journal.sqlite3")
    last, before = db.execute(
        "SELECT id, seq, at, type, data FROM events WHERE run_id = ? ORDER BY id DESC LIMIT 2",
        (run_id,),
    ).fetchall()
    previous = db.execute("SELECT hash FROM events WHERE id = ?", (before[0],)).fetchone()[0]
    data = json.loads(last[4])
    data["signed"]["account"] = alice.name  # the verifier's signature, claimed for alice
    text = chain.data_text(data)
    forged = chain.digest(run_id, last[1], last[3], last[2], None, text, previous)
    db.execute("UPDATE events SET data = ?, hash = ? WHERE id = ?", (text, forged, last[0]))
    db.commit()
    db.close()
    broken = cockpit("verify", run_id, env={"COCKPIT_CONFIG": mine})
    assert broken.returncode == 1
    assert "(SignedOff, " in broken.stdout
    assert f"its signature by {alice.name} does not verify: key " in broken.stdout


def test_team_mode_works_as_a_redis_acl_user_kept_to_its_keys_and_channels(
    redis_url, tmp_path, monkeypatch
):
    """A bastion's Redis user may reach only cockpit's keys and channels: team mode
    needs nothing else (issue 20: ACL users)."""
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command(
        *("ACL", "SETUSER", "cockpit-team", "reset", "resetchannels", "on", ">team-s3cret"),
        *("~cockpit:*", "&cockpit:*", "+@all", "-@admin", "-@dangerous"),
    )
    admin.acl_log_reset()
    assert redis_url.startswith("unix://")
    monkeypatch.setenv("TEAM_REDIS", f"unix://cockpit-team:team-s3cret@{redis_url[7:]}")
    (tmp_path / "cockpit.toml").write_text('[team]\nredis_url = "env:TEAM_REDIS"\n')
    book = tmp_path / "quick.yaml"
    book.write_text(
        "runbook: Quick\nphases:\n  - id: p\n    steps:\n      - {id: s, run: 'echo hi'}\n"
    )
    done = cockpit("run", "--headless", book)
    assert done.returncode == 0, done.stderr
    assert "live events not published" not in done.stderr
    # nothing the user was refused (but the client library's CLIENT SETINFO on connect,
    # an admin command it does without)
    assert [entry for entry in admin.acl_log() if entry["object"] != "client"] == []
    assert admin.keys("cockpit:info:*")  # the run's description was published
    monkeypatch.setenv("TEAM_REDIS", f"unix://cockpit-team:wrong@{redis_url[7:]}")
    refused = cockpit("run", "--headless", book)
    assert refused.returncode == 2
    assert refused.stderr.startswith("cockpit: team mode: Redis unreachable: ")
    assert "wrong" not in refused.stderr
    admin.acl_deluser("cockpit-team")
    admin.close()


def test_with_signing_on_a_sign_off_without_a_key_is_refused_in_one_line(
    make_engine, journal, keys, accounts, tmp_path
):
    _, allowed = keys
    _, bob = accounts
    engine = make_engine(
        "runbook: R\nphases:\n  - id: p\n    steps:\n      - {id: s, run: 'true'}\n"
    )
    asyncio.run(engine.run())
    nokey = config(tmp_path, allowed, str(tmp_path / "no-such-key"), "nokey")
    done = cockpit(
        "signoff",
        engine.run_id,
        "--role",
        "verifier",
        "--journal",
        journal.path,
        env={"COCKPIT_CONFIG": nokey, **bob.via_sudo},
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"cockpit: signing with {tmp_path / 'no-such-key'}: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert journal.signoffs(engine.run_id) == []  # nothing recorded unsigned
    assert chain.verify(journal, engine.run_id).ok


def test_a_run_whose_end_could_not_be_signed_says_so(keys, tmp_path, monkeypatch):
    """The agent went away during the run: it ends anyway, and its record says the end
    is not signed, and why."""
    _, allowed = keys
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    agentless = config(tmp_path, allowed, "", "agentless")  # the agent's key: none here
    book = tmp_path / "quick.yaml"
    book.write_text("runbook: Q\nphases:\n  - id: p\n    steps:\n      - {id: s, run: 'true'}\n")
    journal = tmp_path / "j.sqlite3"
    env = {"COCKPIT_CONFIG": agentless}
    done = cockpit("run", "--headless", book, "--journal", journal, env=env)
    assert done.returncode == 0, done.stderr
    protected = cockpit("run", "--headless", book, *PRODUCTION, "--journal", journal, env=env)
    assert protected.returncode == 2
    assert protected.stderr == (
        "cockpit: signing: no key: set [team] signing_key, or start ssh-agent and add your "
        "key (SSH_AUTH_SOCK is not set)\n"
    )
    [run] = Journal(journal).runs()  # the protected run did not start
    verified = cockpit("verify", run["id"], "--journal", journal, env=env)
    assert verified.returncode == 0
    assert verified.stdout.endswith(
        "; NOT signed: the run's end (signing: no key: set [team] signing_key, or start "
        "ssh-agent and add your key (SSH_AUTH_SOCK is not set))\n"
    )


def test_a_resumed_run_refuses_an_approval_it_took_before(
    keys, accounts, tmp_path, redis_url, monkeypatch
):
    made, allowed = keys
    alice, _ = accounts
    monkeypatch.setenv("TEAM_REDIS", redis_url)
    mine = config(tmp_path, allowed, made["me"][0], "me", redis_url)
    hers = config(tmp_path, allowed, made["alice"][0], "alice", redis_url)
    book = guarded(tmp_path)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    listening = client.pubsub()
    listening.psubscribe("cockpit:approve:*")
    journal = Journal(tmp_path / "data" / "cockpit" / "journal.sqlite3")

    def fly(*args: str) -> subprocess.Popen:
        return cockpit_process(*args, env={"COCKPIT_CONFIG": mine})

    def waits(times: int) -> bool:
        return sum(e["type"] == "StepWaiting" for e in journal.events(run_id)) == times

    first = fly("run", "--headless", str(book))
    second = None
    try:
        run_id = wait_for(
            lambda: json.loads(client.get("cockpit:lock:local") or "null"), "the lock"
        )["run_id"]
        wait_for(lambda: waits(1), "the step to wait for approval")
        approved = cockpit(
            "approve", run_id, "migrate", env={"COCKPIT_CONFIG": hers, **alice.via_sudo}
        )
        assert approved.returncode == 0, approved.stderr
        taken = None
        while taken is None:
            message = listening.get_message(timeout=5)
            assert message is not None, "alice's approval was not seen on Redis"
            if message["type"] == "pmessage" and not message["channel"].endswith(":reply"):
                taken = message["data"]
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate()
        wait_for(lambda: client.get("cockpit:lock:local") is None, "the dead run's lock to expire")
        second = fly("resume", run_id, "--headless")
        wait_for(lambda: waits(2), "the resumed step to wait for approval again")
        wait_for(
            lambda: client.pubsub_numsub(f"cockpit:approve:{run_id}")[0][1] == 1, "the listener"
        )
        client.publish(f"cockpit:approve:{run_id}", taken)  # alice's approval, replayed
        wait_for(
            lambda: any(e["type"] == "ApprovalRefused" for e in journal.events(run_id)),
            "the replay judged",
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        listening.close()
        client.close()
    [refused] = [e["data"] for e in journal.events(run_id) if e["type"] == "ApprovalRefused"]
    assert (refused["account"], refused["reason"]) == (
        alice.name,
        "its nonce was used already: a replay",
    )
    journal.close()


async def test_the_watch_screen_signs_its_approval(
    keys, accounts, tmp_path, redis_url, monkeypatch
):

    from cockpit.app import WatchApp
    from cockpit.config import Team
    from cockpit.watching import find_watched

    made, allowed = keys
    alice, _ = accounts
    monkeypatch.setenv("TEAM_REDIS", redis_url)
    mine = config(tmp_path, allowed, made["me"][0], "me", redis_url)
    book = tmp_path / "guarded.yaml"
    book.write_text(
        "runbook: Guarded\nphases:\n  - id: p\n    steps:\n"
        "      - {id: migrate, run: 'echo migrated', approve: 2}\n"
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    journal = Journal(tmp_path / "data" / "cockpit" / "journal.sqlite3")
    run = cockpit_process("run", "--headless", book, env={"COCKPIT_CONFIG": mine})
    try:
        run_id = wait_for(
            lambda: json.loads(client.get("cockpit:lock:local") or "null"), "the lock"
        )["run_id"]
        wait_for(
            lambda: any(r["status"] == "waiting-confirm" for r in journal.steps(run_id)),
            "the step to wait for approval",
        )
        settings = Team("env:TEAM_REDIS", 2.0, 0.5)
        watched = await find_watched(settings, journal, run_id, ["local"])
        her = Identity(alice.name, socket.gethostname(), "Alice")
        app = WatchApp(settings, watched, her, signing.Signer(made["alice"][0]))
        async with app.run_test(size=(120, 34)) as pilot:
            await until(pilot, lambda: app.screen.view.approvable == "migrate", "the prompt")
            await pilot.press("A")
            await until(pilot, lambda: run.poll() is not None, "the approved run to end")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
        client.close()
    assert run.returncode == 0
    [approved] = [e["data"] for e in journal.events(run_id) if e["type"] == "StepApproved"]
    assert approved["account"] == alice.name and approved["verified"] is True
    assert approved["fingerprint"] == fingerprint_of(made["alice"][1], tmp_path)
    journal.close()
