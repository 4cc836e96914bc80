"""The LevelDB store: reopening, locking, genesis binding, indexes and pagination."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.consensus.messages import CommitCertificate
from ledger.encoding import decode
from ledger.errors import StoreError, StoreLocked
from ledger.genesis import Parameters
from ledger.records import IMPORT_CONFIRMED, IMPORT_REJECTED, ISSUED, VOIDED, CertificateRecord
from ledger.store import Store, index_keys
from tests.helpers import ISSUED_ON, TestNetwork, compact, day_ms


def _chain(net: TestNetwork, store: Store) -> list[Any]:
    a, b, c = net.issue(), net.issue(exporting="AE", importing="IN"), net.issue()
    net.commit_block(store, [a.event, b.event])
    net.commit_block(store, [c.event, net.confirm(a)])
    net.commit_block(store, [net.void(c)])
    return [a, b, c]


def test_reopen_at_the_last_block(network: TestNetwork, tmp_path: Path) -> None:
    store = network.open_store(tmp_path / "db")
    issuances = _chain(network, store)
    head, root = store.head, store.state_root
    records = {i.event.number: store.get_certificate(i.event.number) for i in issuances}
    store.close()

    again = network.open_store(tmp_path / "db")
    try:
        assert again.height == 3
        assert again.head == head and again.state_root == root
        for number, record in records.items():
            assert again.get_certificate(number) == record
        for height in (1, 2, 3):
            block = again.block(height)
            assert block is not None and block.header == again.header(height)
            for index, event in enumerate(block.events):
                stored = again.event(event.event_id)
                assert stored is not None and (stored.height, stored.index) == (height, index)
            raw = again.commit_certificate_bytes(height)
            assert raw is not None
            certificate = CommitCertificate.from_wire(decode(raw))
            assert certificate.value == block.header.hash
            certificate.verify(network.chain_id, [v.node_key for v in network.genesis.validators])
        # And it carries on from there.
        network.commit_block(again, [network.issue().event])
        assert again.height == 4 and again.header(4).prev_hash == head.hash  # type: ignore[union-attr]
    finally:
        again.close()


def test_an_empty_store_has_no_head(network: TestNetwork, store: Store) -> None:
    assert store.head is None and store.height == 0 and store.state_root == bytes(32)
    assert store.header(1) is None and store.block(1) is None and store.event_ids(1) == []
    assert store.get_certificate("BE-2026-000001") is None
    assert list(store.certificates()) == []


def test_a_second_opener_is_locked_out(network: TestNetwork, tmp_path: Path) -> None:
    first = network.open_store(tmp_path / "db")
    try:
        with pytest.raises(StoreLocked) as caught:
            network.open_store(tmp_path / "db")
        assert "in use" in caught.value.message
    finally:
        first.close()
    network.open_store(tmp_path / "db").close()  # free again once closed


def test_another_genesis_is_refused(network: TestNetwork, tmp_path: Path) -> None:
    store = network.open_store(tmp_path / "db")
    network.commit_block(store, [network.issue().event])
    store.close()
    other = TestNetwork(seed="another network")
    with pytest.raises(StoreError, match="another genesis") as caught:
        other.open_store(tmp_path / "db")
    assert not isinstance(caught.value, StoreLocked)
    # The refusal leaves the store closed and intact for its own network.
    again = network.open_store(tmp_path / "db")
    assert again.height == 1
    again.close()


def test_blocks_are_stored_in_order_only(network: TestNetwork, store: Store) -> None:
    execution = network.execute(store, [network.issue().event])
    store.commit(execution, b"")
    with pytest.raises(StoreError, match="cannot store block 1 on top of 1"):
        store.commit(execution, b"")


def test_local_notes(network: TestNetwork, store: Store) -> None:
    assert store.refused(bytes(32)) is None
    store.note_refused(bytes(32), "signer_not_allowed", "only the importer confirms")
    assert store.refused(bytes(32)) == ("signer_not_allowed", "only the importer confirms")
    assert store.signer_state() is None
    store.put_signer_state(b"\x93\x01\x02\x03")
    assert store.signer_state() == b"\x93\x01\x02\x03"


def test_the_blocks_behind_the_votes_last_until_their_height_is_final(
    network: TestNetwork, store: Store
) -> None:
    # Left by a crash at an earlier height, and of the height being voted in.
    store.put_signer_state(b"\x90", {b"\x01" * 32: b"old"}, at=0)
    store.put_signer_state(b"\x91", {b"\x02" * 32: b"one", b"\x03" * 32: b"two"}, at=1)
    assert store.signer_state() == b"\x91"
    assert store.signed_blocks(1) == [(b"\x02" * 32, b"one"), (b"\x03" * 32, b"two")]
    assert store.signed_blocks(2) == []
    network.commit_block(store, [network.issue().event])
    assert store.signed_blocks(0) == [] and store.signed_blocks(1) == []
    assert store.signer_state() == b"\x91"


def _index_of(store: Store) -> set[bytes]:
    return set(store.iter_index())


def _implied_index(store: Store) -> set[bytes]:
    return {key for record in store.iter_records() for key in index_keys(record)}


def test_the_status_index_follows_each_transition(network: TestNetwork, store: Store) -> None:
    net = network
    confirmed, rejected, voided = net.issue(), net.issue(), net.issue()
    net.commit_block(store, [confirmed.event, rejected.event, voided.event])
    numbers = [i.event.number for i in (confirmed, rejected, voided)]

    def by_status(status: str) -> list[str]:
        return [r.number for r in store.certificates(status=status)]

    assert by_status(ISSUED) == numbers
    net.commit_block(store, [net.confirm(confirmed)])
    assert by_status(ISSUED) == numbers[1:]
    assert by_status(IMPORT_CONFIRMED) == numbers[:1]
    net.commit_block(store, [net.reject(rejected, "wrong parcel count"), net.void(voided)])
    assert by_status(ISSUED) == []
    assert by_status(IMPORT_REJECTED) == numbers[1:2]
    assert by_status(VOIDED) == numbers[2:]
    # No stale entry is left behind: the index is exactly what the records imply.
    assert _index_of(store) == _implied_index(store)
    assert len(_index_of(store)) == 4 * 3


# -- queries and pagination over a larger chain -------------------------------------------


@pytest.fixture(scope="module")
def query_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[Any]]]:
    # Issue dates spread over 11 days, all recorded on the last of them.
    net = TestNetwork(parameters=Parameters(max_backdating_days=10))
    net.now_ms = day_ms(ISSUED_ON + timedelta(days=10), hour=9)
    store = net.open_store(tmp_path_factory.mktemp("query") / "db")
    codes = ["BE", "AE", "IN", "RU"]
    issuances = []
    for i in range(48):
        exporting = codes[i % 4]
        importing = codes[(i + 1 + i // 4) % 4] if (i // 4) % 4 != 3 else codes[(i + 2) % 4]
        day = ISSUED_ON + timedelta(days=(i * 7) % 11)
        issuances.append(
            net.issue(
                exporting=exporting,
                importing=importing,
                issued_on=day.isoformat(),
                expires_on=(day + timedelta(days=90)).isoformat(),
            )
        )
    net.commit_block(store, [i.event for i in issuances[:24]])
    net.commit_block(store, [i.event for i in issuances[24:]])
    decisions = []
    for i, issuance in enumerate(issuances):
        if i % 3 == 0:
            decisions.append(net.confirm(issuance))
        elif i % 5 == 0:
            decisions.append(net.reject(issuance, "seal broken"))
        elif i % 7 == 0:
            decisions.append(net.void(issuance, "lost"))
    net.commit_block(store, decisions)
    yield store, issuances
    store.close()


def _expected(store: Store, **query: Any) -> list[str]:
    def keep(r: CertificateRecord) -> bool:
        f = r.facts
        return (
            (not query.get("exporting") or f.exporting_participant == query["exporting"])
            and (not query.get("importing") or f.importing_participant == query["importing"])
            and (not query.get("status") or r.status == query["status"])
            and (not query.get("date_from") or f.issued_on.isoformat() >= query["date_from"])
            and (not query.get("date_to") or f.issued_on.isoformat() <= query["date_to"])
        )

    chosen = sorted((r.facts.issued_on, r.number) for r in store.iter_records() if keep(r))
    return [number for _, number in chosen]


def _all_pages(store: Store, limit: int, **query: Any) -> list[str]:
    out: list[str] = []
    cursor = None
    for _ in range(200):
        page = list(store.certificates(cursor=cursor, limit=limit, **query))
        assert len(page) <= limit
        if not page:
            return out
        out += [r.number for r in page]
        last = page[-1]
        cursor = f"{last.facts.issued_on.isoformat()}/{last.number}"
    raise AssertionError("pagination does not end")


def test_the_query_fixture_covers_every_status(query_store: tuple[Store, list[Any]]) -> None:
    store, issuances = query_store
    statuses = {r.status for r in store.iter_records()}
    assert statuses == {ISSUED, IMPORT_CONFIRMED, IMPORT_REJECTED, VOIDED}
    assert len(list(store.certificates(limit=1000))) == len(issuances)


dates = st.sampled_from([None, *[(ISSUED_ON + timedelta(days=d)).isoformat() for d in range(12)]])


@settings(max_examples=150, deadline=None)
@given(
    exporting=st.sampled_from([None, "BE", "AE", "IN", "RU", "EU"]),
    importing=st.sampled_from([None, "BE", "AE", "IN", "RU"]),
    status=st.sampled_from([None, ISSUED, IMPORT_CONFIRMED, IMPORT_REJECTED, VOIDED]),
    date_from=dates,
    date_to=dates,
    limit=st.integers(1, 13),
)
def test_queries_and_pages_agree_with_a_plain_filter(
    query_store: tuple[Store, list[Any]],
    exporting: str | None,
    importing: str | None,
    status: str | None,
    date_from: str | None,
    date_to: str | None,
    limit: int,
) -> None:
    store, _ = query_store
    query = {
        "exporting": exporting,
        "importing": importing,
        "status": status,
        "date_from": date_from,
        "date_to": date_to,
    }
    expected = _expected(store, **query)
    assert [r.number for r in store.certificates(limit=10_000, **query)] == expected
    assert _all_pages(store, limit, **query) == expected


def test_the_index_is_what_the_records_imply(query_store: tuple[Store, list[Any]]) -> None:
    store, _ = query_store
    assert _index_of(store) == _implied_index(store)


def _modes(path: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in [path, *path.iterdir()]}


def test_the_data_directory_is_private(
    network: TestNetwork, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Carats and values are in the LevelDB files: no other local user may read them (issue 12)."""
    path = tmp_path / "data"
    store = Store(path, network.genesis)
    network.commit_block(store, [network.issue().event])
    store.close()
    assert _modes(path)["data"] == 0o700
    assert all(mode == 0o600 for name, mode in _modes(path).items() if name != "data")
    # A directory left open by an older version (or by hand) is closed on open, and said so.
    os.chmod(path, 0o755)
    for file in path.iterdir():
        os.chmod(file, 0o644)
    with caplog.at_level(logging.WARNING, logger="kpledger.store"):
        store = Store(path, network.genesis)
    assert "open to other local users" in caplog.text
    # The files LevelDB makes from now on are private too (umask), through many blocks.
    for _ in range(30):
        network.commit_block(store, [network.issue().event for _ in range(20)])
    compact(store)
    store.close()
    modes = _modes(path)
    assert modes.pop("data") == 0o700
    assert len(modes) > 3 and set(modes.values()) == {0o600}, modes
