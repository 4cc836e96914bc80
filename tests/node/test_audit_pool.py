"""The audit's worker processes: the same verdict as one process, every fault found the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.audit import AuditReport, check_events, verify_chain
from ledger.encoding import decode, encode
from ledger.errors import AuditWorkerLost
from ledger.store import Store, keys
from node.audit_pool import ProcessPool, StateProcess, verify_chain_parallel
from tests.helpers import TestNetwork, erase, poke
from tests.ledger.test_audit import _LYING_ROOT_AT_2, _lying_root_then


def _chain(net: TestNetwork, store: Store) -> None:
    a, b = net.issue(), net.issue(exporting="IN", importing="RU")
    net.commit_block(store, [a.event, b.event])
    net.commit_block(store, [net.confirm(a), net.issue().event])
    net.commit_block(store, [net.void(b, "stolen")])


def test_workers_agree_with_one_process(tmp_path: Path) -> None:
    net = TestNetwork()
    store = net.open_store(tmp_path / "db")
    try:
        _chain(net, store)
        assert verify_chain_parallel(store, net.genesis, workers=2) == AuditReport(True, 3, 5)
        event_id = store.event_ids(2)[1]
        height, index, encoded = decode(store.kv.get(keys.event(event_id)))
        flipped = encoded[:-1] + bytes([encoded[-1] ^ 1])  # the signature's last byte
        poke(store, keys.event(event_id), encode([height, index, flipped]))
        one = verify_chain(store, net.genesis)
        two = verify_chain_parallel(store, net.genesis, workers=2)
        assert one == two
        assert not one.ok and (one.height_checked, one.events_checked) == (1, 2)
    finally:
        store.close()


def test_the_pool_runs_the_cores_check_in_other_processes() -> None:
    net = TestNetwork()
    events = [net.issue().event for _ in range(3)]
    good = [e.encoded for e in events]
    key = net.members[events[0].signer].authority.public_bytes
    altered = good[1][:-1] + bytes([good[1][-1] ^ 1])  # the signature's last byte
    loose = b"\x92" + good[2][1:-66] + b"\xc5\x00\x40" + good[2][-64:]  # bin16 for bin8
    keys: list[bytes | None] = [key, key, key]
    with ProcessPool(2) as pool:
        assert pool.workers == 2
        for encoded, verdict in (
            (good, (None, -1)),
            ([good[0], altered, altered], (None, 1)),
            (
                [good[0], good[1], loose],
                ((2, "the bytes are not the canonical encoding of their content"), -1),
            ),
            ([], (None, -1)),
        ):
            assert pool.submit(encoded, keys).result() == check_events(encoded, keys) == verdict


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        ProcessPool(0)


def test_the_state_process_finds_a_lying_root_as_one_process_does(tmp_path: Path) -> None:
    net = TestNetwork()
    store = net.open_store(tmp_path / "db")
    try:
        _lying_root_then(net, store, 6)
        expected = AuditReport(False, 1, 1, _LYING_ROOT_AT_2)
        assert verify_chain(store, net.genesis) == expected
        assert verify_chain_parallel(store, net.genesis, workers=2) == expected
        erase(store, keys.block(5))  # a later fault, found while block 2's root is out
        assert verify_chain_parallel(store, net.genesis, workers=2) == expected
    finally:
        store.close()


def test_the_state_process_compares_the_stored_nodes(tmp_path: Path) -> None:
    net = TestNetwork()
    store = net.open_store(tmp_path / "db")
    try:
        _chain(net, store)
        with StateProcess() as state:
            assert verify_chain(store, net.genesis, state=state) == AuditReport(True, 3, 5)
        key, node = next(iter(store.kv.items(keys.P_NODE)))
        poke(store, key, node[:-1] + bytes([node[-1] ^ 1]))
        one = verify_chain(store, net.genesis)
        assert not one.ok and one.fault is not None and "state tree node" in one.fault
        assert verify_chain_parallel(store, net.genesis, workers=2) == one
        erase(store, key)
        one = verify_chain(store, net.genesis)
        assert one.fault == "1 state tree nodes are missing from the store"
        assert verify_chain_parallel(store, net.genesis, workers=2) == one
    finally:
        store.close()


def test_a_killed_state_process_fails_the_audit(tmp_path: Path) -> None:
    net = TestNetwork()
    store = net.open_store(tmp_path / "db")
    try:
        _chain(net, store)
        with StateProcess() as state:

            def kill(height: int, head: int) -> None:
                state.process.kill()
                state.process.join()

            with pytest.raises(AuditWorkerLost, match="state tree process ended"):
                verify_chain(store, net.genesis, state=state, progress=kill)
    finally:
        store.close()


def test_a_killed_signature_worker_fails_the_audit(tmp_path: Path) -> None:
    net = TestNetwork()
    store = net.open_store(tmp_path / "db")
    try:
        _chain(net, store)
        with ProcessPool(1) as pool:
            assert pool.submit([], []).result() == (None, -1)  # the worker is up
            for process in list(pool._executor._processes.values()):  # type: ignore[union-attr]
                process.kill()
                process.join()
            with pytest.raises(AuditWorkerLost, match="signature worker process ended"):
                verify_chain(store, net.genesis, pool=pool)
    finally:
        store.close()
