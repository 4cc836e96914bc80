"""The state tree keeps no leaves of its own in the store (issue 21): each leaf is held inline by
its parent, against the tree that stored every leaf on its own (test_statetree_fast's)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.encoding import decode, encode
from ledger.errors import StoreCorrupt
from ledger.statetree import (
    EMPTY,
    MemoryNodeStore,
    NodeCache,
    StateTree,
    _decode,
    _Internal,
    _Leaf,
    _load,
    _parse,
    child_hash,
    encode_internal,
    encode_leaf,
    state_leaf_hash,
    state_node_hash,
    stored_nodes_fault,
)
from tests.ledger.test_statetree import keys, reference_tree, values
from tests.ledger.test_statetree_fast import batches, slow_prove, slow_update


def _apply(state: dict[bytes, bytes], items: dict[bytes, bytes | None]) -> None:
    for key, value in items.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value


def _stored_leaves(store: MemoryNodeStore) -> list[bytes]:
    return [h for h, encoded in store.nodes.items() if decode(encoded)[0] == 0]


def _reachable(store: MemoryNodeStore, root: bytes) -> set[bytes]:
    """The stored entries a walk from `root` reads, each checked against its hash."""
    seen: set[bytes] = set()
    pending = [root] if root != EMPTY else []
    while pending:
        node_hash = pending.pop()
        seen.add(node_hash)
        node = _load(store, node_hash)
        if isinstance(node, _Internal):
            pending.extend(c for c in (node.left, node.right) if len(c) == 32 and c != EMPTY)
    return seen


@settings(deadline=None, max_examples=80)
@given(blocks=st.lists(batches, min_size=1, max_size=6), probes=st.lists(keys, max_size=8))
def test_roots_and_proofs_equal_the_tree_that_stored_its_leaves(
    blocks: list[dict[bytes, bytes | None]], probes: list[bytes]
) -> None:
    old, new = MemoryNodeStore(), MemoryNodeStore()
    old_root = new_root = EMPTY
    state: dict[bytes, bytes] = {}
    for items in blocks:
        old_root, old_writes = slow_update(old, old_root, items)
        old.apply(old_writes)
        new_root, new_writes = StateTree(new, new_root).update(items)
        new.apply(new_writes)
        _apply(state, items)
        assert new_root == old_root
        for key in [*list(items)[:6], *probes]:
            proof = slow_prove(old, old_root, key)
            assert StateTree(new, new_root).prove(key) == proof
            assert StateTree(new, new_root).get(key) == state.get(key)
        # No leaf is stored on its own but the root of a one-key tree; each saved entry is one
        # the older form stored.
        assert _stored_leaves(new) == ([new_root] if len(state) == 1 else [])
        assert len(old) - len(new) == (len(state) if len(state) > 1 else 0)
        assert new.nodes == reference_tree(state)[1]
        assert old.nodes == reference_tree(state, inline=False)[1]
        assert _reachable(new, new_root) == set(new.nodes)


@settings(deadline=None, max_examples=80)
@given(
    before=st.lists(batches, min_size=1, max_size=4),
    after=st.lists(batches, min_size=1, max_size=4),
    probes=st.lists(keys, max_size=6),
    cached=st.booleans(),
)
def test_a_store_of_the_older_form_serves_updates_and_proves(
    before: list[dict[bytes, bytes | None]],
    after: list[dict[bytes, bytes | None]],
    probes: list[bytes],
    cached: bool,
) -> None:
    """A store the older code wrote (leaves on their own) is read as it is; updates write the new
    form beside it, and the leaves they replace are deleted as before."""
    reference = MemoryNodeStore()  # the older code throughout
    mixed = MemoryNodeStore()  # the older code, then this one
    root = EMPTY
    state: dict[bytes, bytes] = {}
    for items in before:
        root, writes = slow_update(mixed, root, items)
        mixed.apply(writes)
        reference.apply(writes)
        _apply(state, items)
    reference_root = root
    cache = NodeCache(mixed, 1_000)
    reader = cache if cached else mixed
    for items in after:
        reference_root, writes = slow_update(reference, reference_root, items)
        reference.apply(writes)
        root, writes = StateTree(reader, root).update(items)
        mixed.apply(writes)
        cache.created(writes)
        _apply(state, items)
        assert root == reference_root
        for key in [*list(items)[:6], *probes]:
            assert StateTree(reader, root).prove(key) == slow_prove(reference, root, key)
            assert StateTree(reader, root).get(key) == state.get(key)
        # Nothing unreachable is left (a replaced leaf entry is deleted), nothing reachable is
        # missing, and the audit's check takes the mix for the tree the state implies.
        assert _reachable(mixed, root) == set(mixed.nodes)
        assert stored_nodes_fault(reference_tree(state)[1], mixed.nodes.items()) is None
        assert stored_nodes_fault(reference_tree(state)[1], reference.nodes.items()) is None


def test_an_update_moves_an_older_leaf_inline_and_deletes_its_entry() -> None:
    a, b = bytes(32), b"\xff" * 32
    store = MemoryNodeStore()
    root, writes = slow_update(store, EMPTY, {a: b"\x01" * 32, b: b"\x02" * 32})
    store.apply(writes)
    assert len(store) == 3  # the older form: the root and its two leaves
    # Setting a value it already has leaves the root's hash as it is, in the new form.
    same_root, writes = StateTree(store, root).update({a: b"\x01" * 32})
    store.apply(writes)
    assert same_root == root
    assert writes == {
        root: encode_internal(a + b"\x01" * 32, state_leaf_hash(b, b"\x02" * 32)),
        state_leaf_hash(a, b"\x01" * 32): None,
    }
    new_root, writes = StateTree(store, root).update({b: b"\x03" * 32})
    store.apply(writes)
    assert list(store.nodes.items()) == [
        (new_root, encode_internal(a + b"\x01" * 32, b + b"\x03" * 32))
    ]


def test_a_tree_of_one_key_stores_its_leaf_as_the_root_and_drops_it_when_it_grows() -> None:
    a, b = bytes(32), b"\x80" + bytes(31)
    store = MemoryNodeStore()
    root, writes = StateTree(store, EMPTY).update({a: b"\x01" * 32, b: b"\x02" * 32})
    store.apply(writes)
    assert list(store.nodes.values()) == [encode_internal(a + b"\x01" * 32, b + b"\x02" * 32)]
    alone, writes = StateTree(store, root).update({b: None})
    store.apply(writes)
    assert alone == state_leaf_hash(a, b"\x01" * 32)
    assert writes == {alone: encode_leaf(a, b"\x01" * 32), root: None}
    assert StateTree(store, alone).get(a) == b"\x01" * 32
    assert StateTree(store, alone).update({a: b"\x01" * 32}) == (alone, {})
    again, writes = StateTree(store, alone).update({b: b"\x02" * 32})
    assert again == root
    assert writes == {root: store_form(a, b), alone: None}


def store_form(a: bytes, b: bytes) -> bytes:
    return encode_internal(a + b"\x01" * 32, b + b"\x02" * 32)


children = st.one_of(
    st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64), st.just(EMPTY)
)


@settings(deadline=None)
@given(left=children, right=children)
def test_the_stored_form_is_canonical_and_hashes_to_the_node(left: bytes, right: bytes) -> None:
    encoded = encode_internal(left, right)
    assert encoded == encode([1, left, right])
    assert len(encoded) in (70, 102, 134)
    assert _parse(encoded) == _Internal(left, right)
    node_hash = state_node_hash(child_hash(left), child_hash(right))
    assert _decode(node_hash, encoded) == _Internal(left, right)
    cache = NodeCache(MemoryNodeStore(), 10)
    cache.created({node_hash: encoded})
    assert cache.load_node(node_hash) == _Internal(left, right)
    # Any one byte altered is caught: not the layout, or not the node its name says.
    for at in range(len(encoded)):
        altered = encoded[:at] + bytes([encoded[at] ^ 0x01]) + encoded[at + 1 :]
        with pytest.raises(StoreCorrupt):
            _decode(node_hash, altered)


@settings(deadline=None)
@given(key=values, value=values)
def test_a_stored_leaf_keeps_its_form(key: bytes, value: bytes) -> None:
    assert _parse(encode_leaf(key, value)) == _Leaf(key, value)
    assert _decode(state_leaf_hash(key, value), encode_leaf(key, value)) == _Leaf(key, value)


@pytest.mark.parametrize(
    "encoded",
    [
        b"\x93\x01\xc4\x40" + bytes(64) + b"\xc4\x20" + bytes(31),  # the right child cut short
        b"\x93\x01\xc4\x41" + bytes(65) + b"\xc4\x20" + bytes(32),  # a 65-byte child
        b"\x93\x01\xc4\x20" + bytes(32) + b"\xc4\x40" + bytes(32),  # a bin64 of 32 bytes
        b"\x93\x00\xc4\x40" + bytes(64) + b"\xc4\x20" + bytes(32),  # a leaf is 32 + 32 bytes
        b"\x93\x02\xc4\x20" + bytes(32) + b"\xc4\x20" + bytes(32),
        b"\x93\x01\xc4\x20" + bytes(32) + b"\xc4\x20" + bytes(32) + b"\x00",
    ],
)
def test_other_layouts_are_not_nodes(encoded: bytes) -> None:
    assert _parse(encoded) is None
    with pytest.raises(StoreCorrupt, match="not a canonical node encoding"):
        _decode(bytes(32), encoded)


def test_the_audit_check_names_what_differs() -> None:
    state = {bytes([i]) * 32: bytes([i + 1]) * 32 for i in range(0, 250, 9)}
    expected = reference_tree(state)[1]
    older = reference_tree(state, inline=False)[1]
    assert stored_nodes_fault(expected, expected.items()) is None
    assert stored_nodes_fault(expected, older.items()) is None
    leaf = next(h for h, encoded in older.items() if decode(encoded)[0] == 0)
    internal = next(iter(expected))

    def without(nodes: dict[bytes, bytes], gone: bytes) -> list[tuple[bytes, bytes]]:
        return [(h, e) for h, e in nodes.items() if h != gone]

    assert stored_nodes_fault(expected, without(older, leaf)) == (
        "1 state tree leaves are missing from the store"
    )
    stray = encode_leaf(b"\x07" * 32, b"\x07" * 32)
    assert stored_nodes_fault(
        expected, [*expected.items(), (state_leaf_hash(b"\x07" * 32, b"\x07" * 32), stray)]
    ) == ("1 stored state tree leaves are not in the state the chain implies")
    assert stored_nodes_fault(expected, without(expected, internal)) == (
        "1 state tree nodes are missing from the store"
    )
    altered = expected[internal][:-1] + bytes([expected[internal][-1] ^ 1])
    fault = stored_nodes_fault(expected, [*without(expected, internal), (internal, altered)])
    assert fault == f"the stored state tree node {internal.hex()[:16]} is not one the state implies"
    # An internal node the state does not hold at all, even one that hashes to its name.
    other = encode_internal(b"\x05" * 32, EMPTY)
    other_hash = state_node_hash(b"\x05" * 32, EMPTY)
    assert "is not one the state implies" in str(
        stored_nodes_fault(expected, [*expected.items(), (other_hash, other)])
    )


def test_a_full_cache_keeps_a_node_rewritten_in_the_new_form_in_that_form() -> None:
    """A node the cache holds in the older form, rewritten under its hash with its leaves
    inline (their entries deleted), must not be served from the cache in the older form."""
    a, b = bytes(32), b"\xff" * 32
    store = MemoryNodeStore()
    root, writes = slow_update(store, EMPTY, {a: b"\x01" * 32, b: b"\x02" * 32})
    store.apply(writes)
    cache = NodeCache(store, 2)
    assert StateTree(cache, root).get(a) == b"\x01" * 32
    assert len(cache) == 2  # full: the root in the older form, and the leaf of `a`
    same_root, writes = StateTree(cache, root).update({a: b"\x01" * 32})
    store.apply(writes)
    cache.created(writes)
    assert same_root == root and state_leaf_hash(a, b"\x01" * 32) not in store.nodes
    assert cache.get_node(root) == store.nodes[root]
    assert StateTree(cache, root).prove(a) == StateTree(store, root).prove(a)
