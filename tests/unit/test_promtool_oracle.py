"""cockpit's alert states against Prometheus's: ``promtool test rules`` (2.42) is the
oracle, on shared vectors (tests/promtool_oracle.py) and on the rule file that
``cockpit alerts --prometheus-rules`` writes."""

from __future__ import annotations

import pytest
from promtool_oracle import PROMTOOL, VECTORS, Vector, cockpit_states, compare

from cockpit.metrics import AlertState

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_alert_states_agree_with_promtool_at_every_instant(vector: Vector, tmp_path):
    verdict = compare(vector, tmp_path)
    assert not verdict.disagree, (
        f"{vector.name} ({vector.shows}): promtool disagrees at minutes "
        f"{sorted(verdict.disagree)}; cockpit said {[s.value for s in verdict.states]}\n"
        f"{verdict.output}"
    )


def vector(name: str) -> Vector:
    (found,) = (v for v in VECTORS if v.name == name)
    return found


def firing_spells(states: list[AlertState]) -> int:
    return sum(
        1
        for before, now in zip([AlertState.INACTIVE, *states], states, strict=False)
        if now is AlertState.FIRING and before is not AlertState.FIRING
    )


def test_the_vectors_cover_what_they_claim(tmp_path):
    """Pending reset by a gap, resolve on NaN, two cycles, keep_firing_for, for: 0: each
    vector shows what it is named for, so agreeing on it means something."""
    spells = {v.name: firing_spells(cockpit_states(v)) for v in VECTORS}
    assert spells == {
        "pending-reset-by-gap": 2,
        "true-8-of-10": 0,
        "resolve-on-nan": 1,
        "two-cycles": 2,
        "keep-firing-for": 2,
        "for-zero": 3,
        "p95-histogram": 2,
    }
    assert "pending" in {s.value for s in cockpit_states(vector("true-8-of-10"))}
    held = cockpit_states(vector("keep-firing-for"))
    assert held[3:5] == [AlertState.FIRING] * 2  # load 1, then NaN: kept firing
    assert AlertState.PENDING not in cockpit_states(vector("for-zero"))


@pytest.mark.parametrize("policy", ["pause", "fail"])
@pytest.mark.parametrize(
    "name", ["pending-reset-by-gap", "true-8-of-10", "resolve-on-nan", "two-cycles"]
)
def test_pause_and_fail_are_not_prometheus(name, policy, tmp_path):
    """The vectors with no data tell the non-Prometheus choices apart."""
    assert compare(vector(name).with_policy(policy), tmp_path).disagree


def test_the_oracle_notices_one_wrong_instant(tmp_path):
    """promtool is asked about every instant: one state changed by hand is caught there."""
    chosen = vector("two-cycles")
    states = cockpit_states(chosen)
    states[6] = AlertState.FIRING if states[6] is not AlertState.FIRING else AlertState.INACTIVE
    assert compare(chosen, tmp_path, states).disagree == {6}
