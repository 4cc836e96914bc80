"""The store over MemoryKV: the same bytes as over LevelDB, and everything that reads a store
(the readers, the audit, the scrub, proof building) working over either backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ledger.audit import verify_chain
from ledger.errors import StoreCorrupt, StoreError
from ledger.events import Event
from ledger.proofs import build_certificate_proof, verify_certificate_proof
from ledger.records import IMPORT_CONFIRMED, VOIDED
from ledger.scrub import scrub
from ledger.store import MemoryKV, Store, keys
from tests.helpers import TestNetwork, erase, poke


def memory_store(net: TestNetwork) -> tuple[Store, MemoryKV]:
    kv = MemoryKV()
    return Store("memory", net.genesis, kv=kv), kv


def blocks_of_every_kind(net: TestNetwork) -> tuple[list[list[Event]], list[str]]:
    """Four blocks: issues, a confirmation, a rejection, voids and a replacement."""
    a, b, c = net.issue(), net.issue(exporting="IN", importing="RU"), net.issue()
    d = net.issue(exporting="RU", importing="BE")
    e = net.issue(exporting="RU", importing="BE", replaces=d.event.number)
    blocks = [
        [a.event, b.event, c.event, d.event],
        [net.confirm(a), net.reject(c, "seal broken")],
        [net.void(b, "stolen"), net.void(d, "replaced")],
        [e.event],
    ]
    return blocks, [i.event.number for i in (a, b, c, d, e)]


def commit_to_all(net: TestNetwork, stores: Sequence[Store], blocks: list[list[Event]]) -> None:
    """Each block executed once and committed, with the same commit certificate, to each store."""
    for events in blocks:
        execution = net.execute(stores[0], events)
        certificate = net.commit_certificate_bytes(execution.header)
        for store in stores:
            store.commit(execution, certificate)


@pytest.fixture
def chain(network: TestNetwork) -> tuple[TestNetwork, Store, MemoryKV, list[str]]:
    store, kv = memory_store(network)
    blocks, numbers = blocks_of_every_kind(network)
    commit_to_all(network, [store], blocks)
    return network, store, kv, numbers


def test_both_backends_hold_the_same_bytes(network: TestNetwork, tmp_path: Path) -> None:
    memory, _ = memory_store(network)
    disk = network.open_store(tmp_path / "db")
    try:
        blocks, _ = blocks_of_every_kind(network)
        commit_to_all(network, [memory, disk], blocks)
        held = list(memory.kv.items())
        assert held == list(disk.kv.items())
        families = {key[:2] for key, _ in held}
        assert {b"m/", b"b/", b"c/", b"h/", b"e/", b"n/", b"s/", b"x/", b"t/", b"p/"} <= families
    finally:
        disk.close()


def test_one_synced_batch_per_final_block(network: TestNetwork) -> None:
    store, kv = memory_store(network)
    assert kv.synced_batches == 1  # the genesis binding
    blocks, _ = blocks_of_every_kind(network)
    for height, events in enumerate(blocks, start=1):
        network.commit_block(store, events)
        assert kv.synced_batches == 1 + height
        assert store.readers.blocks.head_height() == height


def test_the_readers_read_what_the_store_wrote(
    chain: tuple[TestNetwork, Store, MemoryKV, list[str]],
) -> None:
    _, store, _, numbers = chain
    read = store.readers
    assert read.blocks.head_height() == store.height == 4
    for height in range(1, 5):
        header = read.blocks.header(height)
        assert header is not None and read.blocks.height_of(header.hash) == height
        assert read.blocks.indexed_at(header.hash, height)
        assert not read.blocks.indexed_at(header.hash, height + 1)
        assert len(read.blocks.event_leaves(height)) == header.event_count
        for index, event_id in enumerate(store.event_ids(height)):
            stored = read.events.get(event_id)
            assert stored is not None and (stored.height, stored.index) == (height, index)
    assert read.blocks.header(5) is None and read.blocks.commit_certificate_bytes(5) is None
    assert read.events.count() == 9 == len(list(read.events.entries()))
    assert [n for n, _ in read.certificates.entries()] == sorted(numbers)
    statuses = {r.number: r.status for r in read.certificates.records()}
    assert statuses[numbers[0]] == IMPORT_CONFIRMED and statuses[numbers[1]] == VOIDED
    assert set(read.indexes.keys()) == {
        k for r in read.certificates.records() for k in keys.index_keys(r)
    }
    assert read.governance.registry() == store.registry()
    assert read.governance.last_active("BE") is not None
    assert read.state_nodes.get_node(store.state_root) is not None
    assert read.local.signer_state() is None and list(read.local.pending()) == []
    first = store.certificates(exporting="BE", limit=100)
    assert [r.facts.exporting_participant for r in first] == ["BE", "BE"]


def test_the_audit_the_scrub_and_proofs_work_over_memory(
    chain: tuple[TestNetwork, Store, MemoryKV, list[str]],
) -> None:
    net, store, _, numbers = chain
    report = verify_chain(store, net.genesis)
    assert report.ok and (report.height_checked, report.events_checked) == (4, 9), report.fault
    assert scrub(store).ok
    for number in numbers:
        proof = build_certificate_proof(store, number)
        assert verify_certificate_proof(proof, net.genesis, number).status in {
            "issued",
            "import_confirmed",
            "import_rejected",
            "voided",
        }


def test_a_record_altered_in_memory_is_found_by_the_audit_and_the_scrub(
    chain: tuple[TestNetwork, Store, MemoryKV, list[str]],
) -> None:
    net, store, _, numbers = chain
    key = keys.certificate(numbers[0])
    original = store.kv.get(key)
    assert original is not None
    erase(store, key)
    with pytest.raises(StoreCorrupt, match="missing from the store"):
        store.served_certificate(numbers[0])
    report = verify_chain(store, net.genesis)
    assert not report.ok and f"the record of {numbers[0]} is missing" in (report.fault or "")
    assert not scrub(store).ok
    poke(store, key, original)
    assert verify_chain(store, net.genesis).ok and scrub(store).ok


def test_a_memory_store_refuses_another_genesis(network: TestNetwork) -> None:
    kv = MemoryKV()
    Store("memory", network.genesis, kv=kv)
    other = TestNetwork(chain_id="kp-other")
    with pytest.raises(StoreError, match="another genesis"):
        Store("memory", other.genesis, kv=kv)
