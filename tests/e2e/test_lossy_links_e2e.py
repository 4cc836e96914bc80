"""End-to-end: liveness over slow, lossy peer links (issue 13 item 4).

Four nodes, every peer link through a proxy (tests/e2e/lossy_proxy.py) that delays each chunk
200 ms one way, holds 10% of chunks 0.2 to 1 s longer and resets 1% of connections. Under a
steady 50 events/s for 20 s, at least 90% of the accepted events must be final within 10 s of
their acceptance while the load goes on, and every one of them final in the end. This is the
issue's behavioural target, not a benchmark: scripts/bench_wan.py measures the figures (p50 to
p99 near 4 to 8 s on the shared 2-core machine, docs/performance.md); the bound is the issue's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.genesis import Parameters
from tests.e2e.lossy_proxy import LinkProfile, share_within, steady_load, wan_network

pytestmark = pytest.mark.slow

#: The genesis defaults, which docs/operations.md sets for links of up to about 250 ms one way.
WAN_TIMEOUTS = Parameters(timeout_propose_ms=1000, timeout_vote_ms=500, timeout_delta_ms=500)


def test_events_are_final_within_10_s_over_slow_lossy_links(tmp_path: Path) -> None:
    profile = LinkProfile(delay_s=0.2, hold_fraction=0.1, reset_fraction=0.01)
    net, fleet = wan_network(tmp_path / "net", profile, seed=13, parameters=WAN_TIMEOUTS)
    try:
        net.lift_rate_limits()
        net.start()
        tracked = steady_load(net, rate=50, duration=20, settle_s=45)
        links = fleet.stats()
    finally:
        net.close()
        fleet.close()
    accepted = [r for r in tracked if r.accepted is not None]
    assert len(accepted) == len(tracked), [r.status for r in tracked if r.accepted is None][:5]
    # The links were as bad as they were meant to be.
    assert links.held > 0 and links.chunks > 1000
    never = [r.event_id for r in accepted if r.final is None]
    assert not never, f"{len(never)} accepted events never final, e.g. {never[:3]}"
    assert all(r.status == "final" for r in accepted)
    share = share_within(tracked, 10.0)
    assert share >= 0.9, f"only {share:.0%} of the events final within 10 s of acceptance"
