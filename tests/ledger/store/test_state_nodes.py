"""A store whose state tree the older code wrote (every leaf its own `s/` entry, named by hash in
its parent) keeps working: it is served, proved, updated, audited and scrubbed as it is, and the
updates write the new form (leaves inline in their parents, docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.audit import verify_chain
from ledger.errors import StoreCorrupt
from ledger.proofs import build_certificate_proof, verify_certificate_proof
from ledger.scrub import scrub
from ledger.statetree import (
    EMPTY,
    _decode,
    _Internal,
    _Leaf,
    child_hash,
    encode_internal,
    encode_leaf,
)
from ledger.store import Store, keys
from tests.helpers import TestNetwork, erase, poke


def nodes(store: Store) -> dict[bytes, _Leaf | _Internal]:
    return {h: _decode(h, e) for h, e in store.readers.state_nodes.entries()}


def to_older_form(store: Store) -> int:
    """Rewrite the store's state tree as the older code stored it; the leaves it split out."""
    split = 0
    for node_hash, node in nodes(store).items():
        if not isinstance(node, _Internal):
            continue
        children = []
        for child in (node.left, node.right):
            if len(child) == 64:
                poke(store, keys.state_node(child_hash(child)), encode_leaf(child[:32], child[32:]))
                split += 1
            children.append(child_hash(child))
        poke(store, keys.state_node(node_hash), encode_internal(*children))
    return split


def stored_leaves(store: Store) -> set[bytes]:
    return {h for h, node in nodes(store).items() if isinstance(node, _Leaf)}


def reachable_leaves(store: Store) -> set[bytes]:
    """The leaves the tree names by hash (the older form's), from the head's state root."""
    found: set[bytes] = set()
    pending = [store.state_root]
    every = nodes(store)
    while pending:
        node = every[pending.pop()]
        if isinstance(node, _Internal):
            for child in (node.left, node.right):
                if len(child) == 32 and child != EMPTY:
                    if isinstance(every[child], _Leaf):
                        found.add(child)
                    else:
                        pending.append(child)
    return found


def test_a_store_of_the_older_form_serves_updates_audits_and_scrubs(tmp_path: Path) -> None:
    net = TestNetwork()
    store = Store(tmp_path / "data", net.genesis)
    try:
        issued = [net.issue(exporting="BE", importing="AE") for _ in range(60)]
        net.commit_block(store, [i.event for i in issued[:30]])
        net.commit_block(store, [i.event for i in issued[30:]])
        assert stored_leaves(store) == set()  # this code: every leaf inline
        assert to_older_form(store) == 60
        assert len(stored_leaves(store)) == 60

        def check(numbers: list[str]) -> None:
            for number in numbers:
                store.served_certificate(number)
                verify_certificate_proof(build_certificate_proof(store, number), net.genesis)
            assert verify_chain(store, net.genesis).ok
            assert scrub(store).ok

        numbers = [i.event.body.number for i in issued]
        check(numbers)
        # Updates through the older nodes: confirmations and voids change 20 leaves, 10 new
        # certificates add leaves; the replaced leaf entries go, the untouched ones stay.
        more = [net.issue(exporting="BE", importing="AE") for _ in range(10)]
        changed = [net.confirm(i) for i in issued[:10]] + [net.void(i) for i in issued[10:20]]
        net.commit_block(store, changed + [i.event for i in more])
        check(numbers + [i.event.body.number for i in more])
        left = stored_leaves(store)
        assert 0 < len(left) <= 40
        assert left == reachable_leaves(store)  # none of them unreachable
    finally:
        store.close()


def test_a_leaf_entry_of_the_older_form_missing_is_caught(tmp_path: Path) -> None:
    net = TestNetwork()
    store = Store(tmp_path / "data", net.genesis)
    try:
        issued = [net.issue(exporting="BE", importing="AE") for _ in range(20)]
        net.commit_block(store, [i.event for i in issued])
        to_older_form(store)
        gone = sorted(stored_leaves(store))[0]
        erase(store, keys.state_node(gone))
        numbers = [i.event.body.number for i in issued]
        with pytest.raises(StoreCorrupt, match="missing from the store"):
            for number in numbers:
                store.served_certificate(number)
        report = verify_chain(store, net.genesis)
        assert not report.ok and report.fault is not None
        assert "leaves are missing" in report.fault
        assert not scrub(store).ok
    finally:
        store.close()


def test_an_inline_leaf_altered_is_caught(tmp_path: Path) -> None:
    net = TestNetwork()
    store = Store(tmp_path / "data", net.genesis)
    try:
        issued = [net.issue(exporting="BE", importing="AE") for _ in range(20)]
        net.commit_block(store, [i.event for i in issued])
        holder = next(
            h for h, n in nodes(store).items() if isinstance(n, _Internal) and len(n.right) == 64
        )
        encoded = store.readers.state_nodes.get_node(holder)
        assert encoded is not None
        # The last byte is the inline leaf's value hash: the node no longer hashes to its name.
        poke(store, keys.state_node(holder), encoded[:-1] + bytes([encoded[-1] ^ 1]))
        with pytest.raises(StoreCorrupt, match="does not match its hash"):
            for i in issued:
                store.served_certificate(i.event.body.number)
        report = verify_chain(store, net.genesis)
        assert not report.ok and report.fault is not None and "state tree node" in report.fault
        scrubbed = scrub(store)
        assert not scrubbed.ok and any("does not match its hash" in p for p in scrubbed.problems)
    finally:
        store.close()
