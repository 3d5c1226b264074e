"""How a run stopped, told from its journal rows (the resumed run's note)."""

from __future__ import annotations

import os
import time
from datetime import datetime

from cockpit.stopped import clock, how_it_stopped, hung_up

NOW = datetime(2026, 12, 3, 14, 40, 0).timestamp()


def at(hms: str, day: int = 3) -> float:
    hour, minute, second = map(int, hms.split(":"))
    return datetime(2026, 12, day, hour, minute, second).timestamp()


def run(status: str, finished: float | None = None, message: str = "") -> dict:
    return {
        "status": status,
        "started_at": at("14:30:00"),
        "finished_at": finished,
        "message": message,
    }


def step(step_id: str, status: str, finished: float | None = None, path: str | None = None):
    return {"step_id": step_id, "status": status, "finished_at": finished, "output_path": path}


def test_a_clock_says_the_day_only_when_it_is_not_today():
    assert clock(at("14:32:05"), now=NOW) == "14:32:05"
    assert clock(at("23:59:59", day=2), now=NOW) == "2026-12-02 23:59:59"


def test_a_hangup_says_when():
    assert hung_up() == f"the terminal hung up at {clock(time.time())}"


def test_a_paused_run_says_when_after_which_step_and_why():
    steps = [
        step("first", "ok", at("14:31:00")),
        step("ticking", "ok", at("14:32:07")),
        step("next", "pending"),
    ]
    said = how_it_stopped(
        run("paused", at("14:32:07"), "the terminal hung up at 14:32:05; 2 ok, 1 pending"),
        steps,
        at("14:32:07"),
    )
    today = clock(at("14:32:07"))  # the date shows when the test runs another day
    assert said == (
        f"paused at {today} after step 'ticking': the terminal hung up at 14:32:05; 2 ok, 1 pending"
    )
    failed = how_it_stopped(run("failed", at("14:31:00"), "1 failed"), steps[:1], None)
    assert failed == f"failed at {clock(at('14:31:00'))} after step 'first': 1 failed"


def test_a_dead_process_is_last_heard_from_in_its_journal_or_its_running_step_s_file(tmp_path):
    log = tmp_path / "middle.log"
    log.write_text("middle 1\n")
    os.utime(log, (at("14:33:09"), at("14:33:09")))
    steps = [step("first", "ok", at("14:31:00")), step("middle", "running", None, str(log))]
    said = how_it_stopped(run("running"), steps, at("14:33:00"))
    assert said == (
        f"the cockpit process died while step 'middle' ran; last heard from at "
        f"{clock(at('14:33:09'))}"
    )
    between = how_it_stopped(run("running"), steps[:1], at("14:33:00"))
    assert between == (
        f"the cockpit process died between steps; last heard from at {clock(at('14:33:00'))}"
    )
