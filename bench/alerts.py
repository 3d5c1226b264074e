"""Alert timings against Prometheus: cockpit's alert states on the shared vectors
(tests/promtool_oracle.py), checked by ``promtool test rules`` (Prometheus 2.42) at
every evaluation instant, for each ``no_data`` choice.

Prints a Markdown table: per vector, the instants at which promtool agrees with cockpit
out of the instants asked about, for ``resolve`` (the default, as Prometheus), and the
two choices that are not Prometheus (``pause``, ``fail``). Nothing is asserted here
(tests/unit/test_promtool_oracle.py asserts the default agrees everywhere).

Run from the project root: ``python -m bench.alerts`` (needs promtool on the PATH).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.promtool_oracle import PROMTOOL, VECTORS, compare

POLICIES = ("resolve", "pause", "fail")


def main() -> None:
    if PROMTOOL is None:
        raise SystemExit("bench.alerts: promtool is not on the PATH (Debian's prometheus)")
    started = time.perf_counter()
    totals = dict.fromkeys(POLICIES, 0)
    instants = 0
    print("| vector | what it shows | " + " | ".join(f"`{p}`" for p in POLICIES) + " |")
    print("|---|---|" + "---:|" * len(POLICIES))
    with tempfile.TemporaryDirectory(prefix="cockpit-alerts-") as scratch:
        for vector in VECTORS:
            cells = []
            for policy in POLICIES:
                verdict = compare(vector.with_policy(policy), Path(scratch) / vector.name / policy)
                totals[policy] += verdict.agree
                cells.append(f"{verdict.agree}/{len(verdict.states)}")
            instants += vector.instants
            print(f"| {vector.name} | {vector.shows} | " + " | ".join(cells) + " |")
    print("| **all** | | " + " | ".join(f"**{totals[p]}/{instants}**" for p in POLICIES) + " |")
    print(
        f"\n(promtool {len(VECTORS) * len(POLICIES)} runs, {time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
