"""Public statistics are published per closed quarter, frozen at a stated height (issue 12, item 2).

Block times are chosen by the test (TestNetwork.commit_block(time_ms=...)): no clock, no waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ledger import authoring
from ledger.errors import LedgerError, MalformedInput, StatisticsNotPublished
from ledger.genesis import Parameters
from ledger.stats import (
    MIN_PUBLIC_CELL,
    Figures,
    PublicCell,
    Published,
    Quarter,
    freeze_ms,
    latest_due,
    publish_quarter,
)
from ledger.store import Store, keys
from node.reports import live_rows, pair_stats, public_stats
from tests.helpers import TestNetwork, day_ms, erase, poke

Q1 = Quarter(2026, 1)
Q2 = Quarter(2026, 2)


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, ms: int = 0) -> int:
    moment = datetime(year, month, day, hour, minute, tzinfo=UTC)
    return int(moment.timestamp() * 1000) + ms


def issue_on(net: TestNetwork, day: date, exporting: str = "BE", importing: str = "AE") -> Any:
    return net.issue(
        exporting=exporting,
        importing=importing,
        issued_on=day.isoformat(),
        expires_on=(day + timedelta(days=150)).isoformat(),
        hs_code="7102.10",
    )


def answer(store: Store, year: int, quarter: int | None) -> str:
    """What GET /v1/public/stats answers, as text: the figures, or the error and its message."""
    try:
        return json.dumps(public_stats(store, year, quarter), sort_keys=True)
    except LedgerError as exc:
        return f"{exc.code}: {exc.message}"


def test_the_freeze_time_is_the_quarter_end_plus_the_stated_days() -> None:
    assert Q1.end() == date(2026, 4, 1) and Quarter(2026, 4).end() == date(2027, 1, 1)
    assert freeze_ms(Q1, 30) == _ms(2026, 5, 1)
    assert latest_due(_ms(2026, 5, 1) - 1, 30) == Quarter(2025, 4)
    assert latest_due(_ms(2026, 5, 1), 30) == Q1
    assert latest_due(_ms(2027, 1, 31), 30) == Quarter(2026, 4)
    assert latest_due(_ms(2027, 1, 30, 23, 59), 30) == Quarter(2026, 3)


def test_an_open_quarter_does_not_move_when_one_certificate_is_final(
    network: TestNetwork, store: Store
) -> None:
    day = date(2026, 5, 10)
    issued = [issue_on(network, day) for _ in range(5)]
    network.commit_block(store, [i.event for i in issued], time_ms=day_ms(day, 9))
    before = answer(store, 2026, 2), answer(store, 2026, None)
    one = issue_on(network, day)
    network.commit_block(store, [one.event], time_ms=day_ms(day, 10))
    network.commit_block(store, [network.confirm(one)], time_ms=day_ms(day, 11))
    assert (answer(store, 2026, 2), answer(store, 2026, None)) == before
    # The open quarter is refused, saying when it will be published; live figures are elsewhere.
    with pytest.raises(StatisticsNotPublished) as refused:
        public_stats(store, 2026, 2)
    assert refused.value.publishes_on == "2026-07-31"
    assert "/v1/stats" in refused.value.message
    live = {
        (r["role"], r["hs_code"]): r for r in live_rows(store, 2026, 2) if r["participant"] == "BE"
    }
    assert live[("exporter", "7102.10")]["certificates"] == 6
    assert pair_stats(store, 2026, 2)["rows"] == live_rows(store, 2026, 2)


def test_a_closed_quarter_is_published_at_its_freeze_height(
    make_store: Callable[..., Store],
) -> None:
    # A network that records certificates up to a month after their date of issue, so that one
    # dated in the closed quarter can still arrive in the block that freezes it.
    network = TestNetwork(parameters=Parameters(max_backdating_days=31, event_times_from_height=0))
    store = make_store(network)
    march = date(2026, 3, 20)
    issued = [issue_on(network, march) for _ in range(4)] + [issue_on(network, march, "IN", "RU")]
    network.commit_block(store, [i.event for i in issued], time_ms=day_ms(march))
    network.commit_block(store, [network.confirm(i) for i in issued[:3]], time_ms=day_ms(march, 13))
    # After the quarter's end but before its freeze: not yet published.
    network.commit_block(store, [], time_ms=_ms(2026, 4, 15))
    network.commit_block(store, [], time_ms=_ms(2026, 5, 1) - 1)
    with pytest.raises(StatisticsNotPublished) as refused:
        public_stats(store, 2026, 1)
    assert refused.value.publishes_on == "2026-05-01"
    assert store.height == 4
    # The first block at or after 2026-05-01 00:00 UTC freezes it, with the figures of that block.
    late = issue_on(network, date(2026, 3, 31))  # dated into Q1 and recorded in this very block
    network.commit_block(store, [late.event], time_ms=_ms(2026, 5, 1))
    published = public_stats(store, 2026, 1)
    assert published["frozen_at"] == 5 and published["frozen_on"] == "2026-05-01"
    assert published["revised_at"] == [] and published["as_of_height"] == 5
    assert published["next_publication_on"] == "2026-07-31"
    rows = {(r["participant"], r["role"]): r for r in published["rows"]}
    be_export = rows[("BE", "exporter")]
    assert be_export["certificates"] == 5 and not be_export.get("suppressed")
    expected = sum(i.event.body.facts.carats for i in issued[:4]) + late.event.body.facts.carats
    assert be_export["carats"] == f"{expected // 100}.{expected % 100:02d}"
    assert rows[("AE", "importer")]["certificates"] == 3
    # One certificate per cell: its count only, never its carats or value.
    assert rows[("IN", "exporter")] | {} == {
        "participant": "IN",
        "role": "exporter",
        "hs_code": "7102.10",
        "certificates": 1,
        "carats": None,
        "value_usd": None,
        "suppressed": True,
    }
    # The year view lists the published quarter's rows, each naming its quarter.
    year = public_stats(store, 2026, None)
    assert [q["published"] for q in year["quarters"]] == [True, False, False, False]
    assert year["quarters"][1]["publishes_on"] == "2026-07-31"
    assert {r["quarter"] for r in year["rows"]} == {1}
    assert len(year["rows"]) == len(published["rows"])


def test_revisions_wait_for_the_next_publication_and_for_enough_changes(
    network: TestNetwork, store: Store
) -> None:
    march = date(2026, 3, 20)
    issued = [issue_on(network, march) for _ in range(6)]
    network.commit_block(store, [i.event for i in issued], time_ms=day_ms(march))
    network.commit_block(store, [], time_ms=_ms(2026, 5, 1, 1))  # Q1 frozen here, at height 2
    frozen = answer(store, 2026, 1)
    # Late confirmations and a void change Q1 after its freeze: nothing moves until Q2's freeze.
    network.commit_block(store, [network.confirm(issued[0])], time_ms=_ms(2026, 5, 2))
    network.commit_block(store, [network.void(issued[5])], time_ms=_ms(2026, 5, 3))
    assert answer(store, 2026, 1) == frozen
    # Q2's publication brings revisions, but each of Q1's cells changed by one certificate only
    # (one void, one confirmation): a revision would give it away, so both wait.
    network.commit_block(store, [], time_ms=_ms(2026, 7, 31))
    at_q2 = public_stats(store, 2026, 1)
    assert at_q2["revised_at"] == [] and at_q2["rows"] == json.loads(frozen)["rows"]
    assert public_stats(store, 2026, 2)["frozen_at"] == 5
    # Three more confirmations: the import cell now has 3 changes since it was published (none:
    # 0 before), the export cell still one; Q3's publication revises the import cell only.
    events = [network.confirm(i) for i in issued[1:3]]
    network.commit_block(store, events, time_ms=_ms(2026, 8, 1))
    network.commit_block(store, [], time_ms=_ms(2026, 10, 31))
    revised = public_stats(store, 2026, 1)
    assert revised["revised_at"] == [7] and revised["as_of_height"] == 7
    rows = {(r["participant"], r["role"]): r for r in revised["rows"]}
    assert rows[("AE", "importer")]["certificates"] == 3
    assert rows[("BE", "exporter")]["certificates"] == 6  # the void still waits
    # The live figures have it all.
    live = {(r["participant"], r["role"]): r for r in live_rows(store, 2026, 1)}
    assert live[("BE", "exporter")]["certificates"] == 5


def test_frozen_figures_are_the_same_on_every_node(
    network: TestNetwork, make_store: Callable[..., Store]
) -> None:
    stores = [make_store(network, name) for name in ("one", "two")]
    march = date(2026, 3, 20)
    importers = ("AE",) * 6 + ("IN", "RU", "IN")
    issued = [issue_on(network, march, "BE", imp) for imp in importers]
    plan: list[tuple[list[Any], int]] = [
        ([i.event for i in issued], day_ms(march)),
        ([network.confirm(i) for i in issued[:2] + issued[6:8]], day_ms(march, 14)),
        ([], _ms(2026, 5, 1, 0, 0, 5)),
        ([network.confirm(i) for i in issued[2:6]], _ms(2026, 5, 2)),
        ([], _ms(2026, 7, 31, 0, 1)),
    ]
    for events, time_ms in plan:
        execution = network.execute(stores[0], events, time_ms=time_ms)
        certificate = network.commit_certificate_bytes(execution.header)
        for store in stores:
            store.commit(execution, certificate)
    one, two = (dict(s.kv.items(keys.P_PUB)) for s in stores)
    assert one == two and one
    assert answer(stores[0], 2026, 1) == answer(stores[1], 2026, 1)
    assert json.loads(answer(stores[0], 2026, 1))["revised_at"] == [5]


def test_the_freeze_delay_is_a_network_parameter(
    make_network: Callable[..., TestNetwork], make_store: Callable[..., Store]
) -> None:
    net = make_network(parameters=Parameters(stats_freeze_days=10))
    store = make_store(net)
    march = date(2026, 3, 20)
    net.commit_block(store, [issue_on(net, march).event], time_ms=day_ms(march))
    net.commit_block(store, [], time_ms=_ms(2026, 4, 11))
    assert public_stats(store, 2026, 1)["frozen_at"] == 2
    with pytest.raises(MalformedInput, match="stats_freeze_days"):
        Parameters.from_json({"stats_freeze_days": 0})
    with pytest.raises(MalformedInput, match="stats_freeze_days"):
        Parameters.from_json({"stats_freeze_days": 366})


def test_a_revision_takes_a_cell_only_with_enough_changes() -> None:
    cell = PublicCell("e", "BE", "7102.10")
    old = Published(Figures(5, 500, 5000), 5, 3)
    one_more = {cell: Figures(6, 600, 6000)}
    writes, waiting = publish_quarter(
        first=False, height=9, live=one_more, changed={cell: 6}, published={cell: old}
    )
    assert writes == {} and waiting
    writes, waiting = publish_quarter(
        first=False,
        height=9,
        live={cell: Figures(8, 800, 8000)},
        changed={cell: 5 + MIN_PUBLIC_CELL},
        published={cell: old},
    )
    assert writes == {cell: Published(Figures(8, 800, 8000), 8, 9)} and not waiting
    writes, waiting = publish_quarter(
        first=True, height=2, live=one_more, changed={cell: 1}, published={}
    )
    assert writes == {cell: Published(Figures(6, 600, 6000), 1, 2)} and not waiting


def test_issue_helper_is_dated_as_asked(network: TestNetwork) -> None:
    issuance: authoring.Issuance = issue_on(network, date(2026, 3, 31))
    assert issuance.event.body.facts.issued_on == date(2026, 3, 31)


def _published_chain(net: TestNetwork, store: Store) -> None:
    march = date(2026, 3, 20)
    issued = [issue_on(net, march) for _ in range(6)] + [issue_on(net, march, "IN", "RU")]
    net.commit_block(store, [i.event for i in issued], time_ms=day_ms(march))
    net.commit_block(store, [], time_ms=_ms(2026, 5, 1))  # Q1 frozen
    net.commit_block(store, [net.confirm(i) for i in issued[:4]], time_ms=_ms(2026, 5, 2))
    net.commit_block(store, [net.void(issued[5])], time_ms=_ms(2026, 5, 3))  # waits
    net.commit_block(store, [], time_ms=_ms(2026, 7, 31))  # Q2 frozen, Q1's imports revised


def test_the_audit_rebuilds_the_published_statistics(network: TestNetwork, store: Store) -> None:
    from ledger.audit import verify_chain

    _published_chain(network, store)
    assert public_stats(store, 2026, 1)["revised_at"] == [5]
    report = verify_chain(store, network.genesis)
    assert report.ok, report.fault


@pytest.mark.parametrize("what", ["cell", "changes", "dirty", "publication", "stray"])
def test_the_audit_finds_forged_public_statistics(
    network: TestNetwork, store: Store, what: str
) -> None:
    from ledger.audit import verify_chain
    from ledger.encoding import encode

    _published_chain(network, store)
    cell = PublicCell("e", "BE", "7102.10")
    if what == "cell":  # a published figure made smaller
        poke(store, keys.public_cell(Q1, cell), encode(Published(Figures(6, 1, 1), 7, 2).to_wire()))
    elif what == "changes":
        poke(store, keys.public_touch(Q1, cell), encode(99))
    elif what == "dirty":
        erase(store, keys.public_dirty(Q1))
    elif what == "publication":
        erase(store, keys.publication(5))
    else:
        poke(store, keys.public_cell(Q1, PublicCell("i", "ZZ", "7102.10")), encode([3, 3, 3, 3, 3]))
    report = verify_chain(store, network.genesis)
    assert not report.ok and "public statistics" in (report.fault or ""), report.fault
