"""The portal's tables of certificates (node/http/portal.py `_rows`): the inbox lists the
certificates awaiting a decision, never historical records (docs/history.md), which the search
shows marked as such."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ledger.records import ISSUED
from ledger.store import Store
from node.http.portal import _rows
from tests.helpers import TestNetwork


@dataclass
class _Node:
    store: Store
    reader: None = None


def test_the_inbox_leaves_historical_records_out(tmp_path: Path) -> None:
    net = TestNetwork()
    store = Store(tmp_path / "chain", net.genesis)
    try:
        _check(net, store)
    finally:
        store.close()


def _check(net: TestNetwork, store: Store) -> None:
    old = net.historical("expired", issued_on=date(2019, 5, 6))  # stored as issued, expired
    # Dated after the genesis date less 90 days: read, and left out as historical.
    recent = net.historical("expired", issued_on=date(2025, 12, 1))
    live = net.issue()
    net.commit_block(store, [old.event, recent.event, live.event])
    node = _Node(store)
    words = lambda text, **_: text  # noqa: E731
    inbox = _rows(node, words, live_only=True, importing="AE", status=ISSUED)  # type: ignore[arg-type]
    assert [r["number"] for r in inbox] == [live.event.number]
    every = _rows(node, words, importing="AE", status=ISSUED)  # type: ignore[arg-type]
    assert {r["number"] for r in every} == {e.event.number for e in (old, recent, live)}
    assert all(r.get("historical") is (r["number"] != live.event.number or None) for r in every)
