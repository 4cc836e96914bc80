"""node/health.py: each reason a node is not fit to serve, judged from what it observed."""

from __future__ import annotations

from node.health import MAX_BLOCKS_BEHIND, Health
from node.metrics import Metrics


def codes(health: Health, height: int) -> list[str]:
    return [p.code for p in health.problems(height)]


def test_a_node_with_nothing_observed_is_healthy() -> None:
    health = Health(Metrics(), max_drift_ms=10_000)
    assert codes(health, 0) == []
    assert health.can_write and health.clock_offset_ms() is None


def test_behind_and_too_few_peers() -> None:
    health = Health(Metrics(), max_drift_ms=10_000)
    health.observe_peers({"a": 100, "b": 100 + MAX_BLOCKS_BEHIND + 1}, up=2, needed=2)
    assert codes(health, 100) == ["behind_peers"]
    assert codes(health, 100 + 1) == []  # within the tolerance
    health.observe_peers({"a": 101}, up=1, needed=2)
    assert codes(health, 101) == ["too_few_peers"]
    assert "reaches 1 peers, needs 2" in health.problems(101)[0].message


def test_the_clock_offset_is_the_median_of_the_peers() -> None:
    health = Health(Metrics(), max_drift_ms=10_000)
    # One peer's clock far off does not make this node's clock off.
    health.observe_clock("a", 1_000_000 + 900_000, 1_000_000)
    health.observe_clock("b", 1_000_000 + 100, 1_000_000)
    health.observe_clock("c", 1_000_000 - 50, 1_000_000)
    assert health.clock_offset_ms() == -100
    assert codes(health, 0) == []
    # Every peer 30 s ahead: this node is 30 s behind.
    for peer in "abc":
        health.observe_clock(peer, 1_030_000, 1_000_000)
    assert health.clock_offset_ms() == -30_000
    [problem] = health.problems(0)
    assert problem.code == "clock_skew" and "30000 ms behind" in problem.message


def test_write_failures_and_corruption_stop_new_work() -> None:
    metrics = Metrics()
    health = Health(metrics, max_drift_ms=10_000)
    health.write_failed("No space left on device")
    assert not health.can_write and codes(health, 0) == ["store_write_failed"]
    health.write_succeeded()
    assert health.can_write and codes(health, 0) == []
    health.store_corrupt("block checksum mismatch")
    assert not health.can_write and codes(health, 0) == ["store_corrupt"]
    assert b"kpledger_store_corrupt 1.0" in metrics.render()
    assert b"kpledger_store_write_failures_total 1.0" in metrics.render()
