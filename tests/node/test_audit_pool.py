"""The audit's worker processes: the same verdict as one process, every fault found the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.audit import AuditReport, first_bad_signature, verify_chain
from ledger.encoding import decode, encode
from ledger.hashing import TAG_EVENT
from ledger.keys import SigningKey
from ledger.store import Store, keys
from node.audit_pool import ProcessPool, verify_chain_parallel
from tests.helpers import TestNetwork, poke


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
    key = SigningKey.from_seed(bytes(32))
    good = (key.public_bytes, b"payload", key.sign(TAG_EVENT, b"payload"))
    bad = (key.public_bytes, b"payloae", good[2])
    with ProcessPool(2) as pool:
        assert pool.workers == 2
        for checks, first_bad in (([good, good], -1), ([good, bad, bad], 1), ([], -1)):
            assert pool.submit(checks).result() == first_bad_signature(checks) == first_bad


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        ProcessPool(0)
