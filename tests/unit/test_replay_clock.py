"""``cockpit.replay`` without an app: ``--at`` and ``--speed`` as the operator writes them,
and the virtual clock."""

from __future__ import annotations

from datetime import datetime

import pytest

from cockpit.replay import Playhead, parse_at, parse_speed


def test_at_and_speed_are_read_as_the_operator_writes_them():
    start = datetime(2026, 12, 3, 14, 31, 50).timestamp()
    end = start + 3600
    assert parse_at("14:32:07", start, end) == start + 17.999  # by the end of that second
    assert parse_at("14:31:50", start, end) == start + 0.999
    assert parse_at("14:31", start, end) == start  # the minute the run started in
    assert parse_at("15:00", start, end) == start + 28 * 60 + 10
    assert parse_at("2026-12-03T14:40:00", start, end) == start + 8 * 60 + 10
    with pytest.raises(ValueError, match=r"^--at 16:00: the run was flown 14:31:50-15:31:50"):
        parse_at("16:00", start, end)
    with pytest.raises(ValueError, match="expected HH:MM, HH:MM:SS or an ISO date"):
        parse_at("noon", start, end)
    assert parse_speed("10x") == parse_speed("10") == 10
    with pytest.raises(ValueError, match="expected a speed"):
        parse_speed("fast")


def test_the_playhead_moves_at_its_speed_and_stops_at_the_end():
    now = [0.0]
    head = Playhead(100.0, 200.0, 10, real=lambda: now[0])
    head.play()
    now[0] = 2.0
    assert head.now() == 120.0
    head.pause()
    now[0] = 5.0
    assert head.now() == 120.0
    assert head.faster(1) == 20
    head.play()
    now[0] = 100.0
    assert head.now() == 200.0
