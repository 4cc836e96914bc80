"""The state tree against a from-scratch reference build, and its proofs of presence and absence."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.encoding import decode, encode
from ledger.errors import MalformedInput, StoreError
from ledger.hashing import TAG_STATE_LEAF, TAG_STATE_NODE, tagged_hash
from ledger.statetree import (
    EMPTY,
    MemoryNodeStore,
    StateProof,
    StateTree,
    encode_internal,
    encode_leaf,
    verify_state_proof,
)

ZERO = bytes(32)


def bit(key: bytes, depth: int) -> int:
    return (int.from_bytes(key, "big") >> (255 - depth)) & 1


def reference_tree(
    state: dict[bytes, bytes], *, inline: bool = True
) -> tuple[bytes, dict[bytes, bytes]]:
    """Root and every stored node of the tree over `state`, built in one go from the sorted keys.

    `inline`: each leaf is held in its parent's stored form, [1, left, right] with the child a
    64-byte key + value hash, and stored on its own only as the root of a one-key tree. Without
    it, the older stored form: every leaf its own entry, named by hash in its parent.
    """
    nodes: dict[bytes, bytes] = {}

    def subtree(items: list[tuple[bytes, bytes]], depth: int) -> tuple[bytes, bytes]:
        """The subtree's hash, and the child reference its parent stores for it."""
        if not items:
            return ZERO, ZERO
        if len(items) == 1:
            key, value = items[0]
            node = tagged_hash(TAG_STATE_LEAF, key + value)
            if inline:
                return node, key + value
            nodes[node] = encode([0, key, value])
            return node, node
        left_hash, left = subtree([item for item in items if not bit(item[0], depth)], depth + 1)
        right_hash, right = subtree([item for item in items if bit(item[0], depth)], depth + 1)
        node = tagged_hash(TAG_STATE_NODE, left_hash + right_hash)
        nodes[node] = encode([1, left, right])
        return node, node

    root, child = subtree(sorted(state.items()), 0)
    if child != root:  # a lone leaf: no parent holds it, so it is stored as the root
        nodes[root] = encode([0, child[:32], child[32:]])
    return root, nodes


def build(state: dict[bytes, bytes]) -> tuple[StateTree, MemoryNodeStore]:
    store = MemoryNodeStore()
    root, writes = StateTree(store, EMPTY).update(state)
    store.apply(writes)
    return StateTree(store, root), store


# Random keys rarely share more than a few bits; these families force long shared prefixes
# (down to keys differing in the very last bit) and so chains of one-sided internal nodes.
def _family(prefix: bytes) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=1, max_size=1).map(lambda tail: prefix + tail)


keys = st.one_of(
    st.binary(min_size=32, max_size=32),
    _family(bytes(31)),
    _family(b"\xff" * 31),
    _family(bytes(15) + b"\x80" + bytes(15)),
    st.binary(min_size=1, max_size=1).map(lambda head: head + bytes(31)),
)
values = st.binary(min_size=32, max_size=32)


def sized_states(min_size: int) -> st.SearchStrategy[dict[bytes, bytes]]:
    # Draw the size first: left alone, hypothesis favours small dictionaries.
    return st.integers(min_size, 40).flatmap(
        lambda n: st.dictionaries(keys, values, min_size=n, max_size=n)
    )


states = sized_states(0)


def flip(data: bytes, at: int, mask: int) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]


@settings(deadline=None)
@given(
    ops=st.integers(0, 60).flatmap(
        lambda n: st.lists(
            st.tuples(keys, st.one_of(values, values, values, st.none())), min_size=n, max_size=n
        )
    ),
    data=st.data(),
)
def test_batches_match_the_reference_and_leave_no_orphans(
    ops: list[tuple[bytes, bytes | None]], data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(ops)), max_size=6)))
    store = MemoryNodeStore()
    root = EMPTY
    state: dict[bytes, bytes] = {}
    for start, end in zip([0, *cuts], [*cuts, len(ops)], strict=True):
        batch = dict(ops[start:end])
        before = dict(store.nodes)
        root, writes = StateTree(store, root).update(batch)
        assert store.nodes == before, "update must not write"
        store.apply(writes)
        for key, value in batch.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        expected_root, expected_nodes = reference_tree(state)
        assert root == expected_root
        assert store.nodes == expected_nodes
    stored_leaves = [node for node in store.nodes.values() if decode(node)[0] == 0]
    inline_leaves = [
        child
        for node in store.nodes.values()
        if decode(node)[0] == 1
        for child in decode(node)[1:]
        if len(child) == 64
    ]
    forks = [n for n in store.nodes.values() if decode(n)[0] == 1 and ZERO not in decode(n)[1:]]
    # Every leaf is held inline by its parent; only a lone leaf, the root, is stored on its own.
    assert len(stored_leaves) == (1 if len(state) == 1 else 0)
    assert len(inline_leaves) + len(stored_leaves) == len(state)
    # n - 1 internal nodes split two non-empty subtrees; the rest carry a shared prefix one bit
    # further down (a sparse tree has them: only single leaves are lifted, not paths).
    assert len(forks) == max(len(state) - 1, 0)


@settings(deadline=None)
@given(state=states, data=st.data())
def test_root_is_independent_of_order_and_batching(
    state: dict[bytes, bytes], data: st.DataObject
) -> None:
    stores = []
    for _ in range(2):
        items = data.draw(st.permutations(list(state.items())))
        cuts = sorted(data.draw(st.lists(st.integers(0, len(items)), max_size=5)))
        store = MemoryNodeStore()
        root = EMPTY
        for start, end in zip([0, *cuts], [*cuts, len(items)], strict=True):
            root, writes = StateTree(store, root).update(dict(items[start:end]))
            store.apply(writes)
        stores.append((root, store.nodes))
    assert stores[0] == stores[1]
    assert stores[0][0] == reference_tree(state)[0]


@settings(deadline=None)
@given(state=states, absent=st.lists(keys, max_size=10))
def test_present_keys_prove_present_and_absent_keys_absent(
    state: dict[bytes, bytes], absent: list[bytes]
) -> None:
    tree, _ = build(state)
    for key, value in state.items():
        assert tree.get(key) == value
        proof = tree.prove(key)
        assert proof.leaf == (key, value)
        assert verify_state_proof(tree.root, key, value, proof)
        assert not verify_state_proof(tree.root, key, None, proof)
        assert not verify_state_proof(tree.root, key, flip(value, 0, 1), proof)
        assert StateProof.from_wire(decode(encode(proof.to_wire()))) == proof
    for key in absent:
        if key in state:
            continue
        assert tree.get(key) is None
        proof = tree.prove(key)
        assert verify_state_proof(tree.root, key, None, proof)
        for value in state.values():
            assert not verify_state_proof(tree.root, key, value, proof)
        assert StateProof.from_wire(decode(encode(proof.to_wire()))) == proof


@settings(deadline=None)
@given(state=sized_states(1), data=st.data())
def test_any_altered_proof_fails(state: dict[bytes, bytes], data: st.DataObject) -> None:
    tree, _ = build(state)
    key = data.draw(st.one_of(st.sampled_from(sorted(state)), keys))
    value = state.get(key)
    proof = tree.prove(key)
    root = tree.root
    assert verify_state_proof(root, key, value, proof)
    siblings = proof.siblings

    def fails(altered: StateProof) -> None:
        assert not verify_state_proof(root, key, value, altered)

    if siblings:
        which = data.draw(st.integers(0, len(siblings) - 1))
        at = data.draw(st.integers(0, 31))
        mask = data.draw(st.integers(1, 255))
        bad = (*siblings[:which], flip(siblings[which], at, mask), *siblings[which + 1 :])
        fails(dataclasses.replace(proof, siblings=bad))
        fails(dataclasses.replace(proof, siblings=siblings[:which] + siblings[which + 1 :]))
    extra = data.draw(st.one_of(st.just(ZERO), values))
    at = data.draw(st.integers(0, len(siblings)))
    fails(dataclasses.replace(proof, siblings=(*siblings[:at], extra, *siblings[at:])))

    other_leaves = [leaf for leaf in [*state.items(), None] if leaf != proof.leaf]
    fails(dataclasses.replace(proof, leaf=data.draw(st.sampled_from(other_leaves))))
    forged = data.draw(st.tuples(keys, values).filter(lambda leaf: leaf != proof.leaf))
    fails(dataclasses.replace(proof, leaf=forged))

    mask = data.draw(st.integers(1, 255))
    assert not verify_state_proof(
        flip(root, data.draw(st.integers(0, 31)), mask), key, value, proof
    )
    if value is None:
        assert not verify_state_proof(root, key, data.draw(values), proof)
    else:
        # A presence proof is no proof of absence, nor of another value or another key.
        assert not verify_state_proof(root, key, None, proof)
        assert not verify_state_proof(root, key, flip(value, at % 32, mask), proof)
        assert not verify_state_proof(root, flip(key, at % 32, mask), value, proof)


def test_empty_tree() -> None:
    tree = StateTree(MemoryNodeStore(), EMPTY)
    key = bytes(range(32))
    assert tree.root == ZERO
    assert tree.get(key) is None
    proof = tree.prove(key)
    assert proof == StateProof(None, ())
    assert verify_state_proof(EMPTY, key, None, proof)
    assert not verify_state_proof(EMPTY, key, ZERO, proof)


def test_a_single_leaf_is_the_root() -> None:
    key, value = b"\x01" * 32, b"\x02" * 32
    tree, store = build({key: value})
    assert tree.root == tagged_hash(TAG_STATE_LEAF, key + value)
    assert len(store) == 1
    assert tree.prove(key) == StateProof((key, value), ())


def test_keys_differing_in_the_last_bit_need_256_siblings() -> None:
    a, b = bytes(32), bytes(31) + b"\x01"
    tree, store = build({a: b"\x0a" * 32, b: b"\x0b" * 32})
    proof = tree.prove(b)
    assert len(proof.siblings) == 256
    assert verify_state_proof(tree.root, b, b"\x0b" * 32, proof)
    assert StateProof.from_wire(decode(encode(proof.to_wire()))) == proof
    assert len(store) == 256  # the 256 internal nodes: both leaves inline in the deepest
    too_long = proof.to_wire()
    too_long[1] = [ZERO, *too_long[1]]
    with pytest.raises(MalformedInput):
        StateProof.from_wire(too_long)
    assert not verify_state_proof(
        tree.root, b, b"\x0b" * 32, StateProof(proof.leaf, (ZERO, *proof.siblings))
    )


def test_updating_a_value_and_deleting_every_key() -> None:
    state = {bytes([i]) * 32: bytes([i + 1]) * 32 for i in range(0, 200, 7)}
    tree, store = build(state)
    key = bytes([7]) * 32
    root, writes = tree.update({key: b"\xee" * 32})
    store.apply(writes)
    assert StateTree(store, root).get(key) == b"\xee" * 32
    assert root == reference_tree({**state, key: b"\xee" * 32})[0]
    unchanged_root, no_writes = StateTree(store, root).update({key: b"\xee" * 32})
    assert (unchanged_root, no_writes) == (root, {})
    root, writes = StateTree(store, root).update(dict.fromkeys(state))
    store.apply(writes)
    assert root == EMPTY
    assert store.nodes == {}


def test_node_encoding_is_the_canonical_encoding() -> None:
    a, b = bytes(range(32)), bytes(range(32, 64))
    assert encode_leaf(a, b) == encode([0, a, b])
    assert encode_internal(a, b) == encode([1, a, b])
    assert encode_internal(a + b, b) == encode([1, a + b, b])
    assert encode_internal(a, b + a) == encode([1, a, b + a])
    assert encode_internal(a + b, b + a) == encode([1, a + b, b + a])


def test_wire_format_bytes() -> None:
    key, value, sibling = b"\x11" * 32, b"\x22" * 32, b"\x33" * 32
    wire = encode(StateProof((key, value), (sibling,)).to_wire())
    bin32 = b"\xc4\x20"
    assert wire == b"\x92\x92" + bin32 + key + bin32 + value + b"\x91" + bin32 + sibling
    assert encode(StateProof(None, ()).to_wire()) == b"\x92\xc0\x90"
    long = encode(StateProof(None, (sibling,) * 16).to_wire())
    assert long[:5] == b"\x92\xc0\xdc\x00\x10"


@pytest.mark.parametrize(
    "wire",
    [
        None,
        b"",
        [],
        [None],
        [None, [], []],
        [None, None],
        [None, b"\x00" * 32],
        [[b"\x00" * 32], []],
        [[b"\x00" * 32, b"\x00" * 31], []],
        [[b"\x00" * 32, "00" * 32], []],
        [b"\x00" * 64, []],
        [None, [b"\x00" * 33]],
        [None, [None]],
        [None, [b"\x00" * 32] * 257],
    ],
)
def test_malformed_wire_proofs_are_refused(wire: Any) -> None:
    with pytest.raises(MalformedInput):
        StateProof.from_wire(wire)


JUNK: list[Any] = [None, b"", ZERO[:31], ZERO + b"\x00", "00" * 32, 0, [], ()]


@given(
    root=st.sampled_from([ZERO, *JUNK]),
    key=st.sampled_from([ZERO, *JUNK]),
    value=st.sampled_from([None, *JUNK]),
    proof=st.sampled_from(
        [
            StateProof(None, ()),
            StateProof(None, [ZERO]),  # type: ignore[arg-type]
            StateProof(None, (ZERO[:31],)),
            StateProof((ZERO,), ()),  # type: ignore[arg-type]
            StateProof([ZERO, ZERO], ()),  # type: ignore[arg-type]
            StateProof(("00" * 32, ZERO), ()),  # type: ignore[arg-type]
            StateProof(None, (ZERO,) * 257),
            *JUNK,
        ]
    ),
)
def test_bad_input_is_never_a_proof_and_never_raises(
    root: Any, key: Any, value: Any, proof: Any
) -> None:
    valid = root == ZERO and key == ZERO and value is None and proof == StateProof(None, ())
    assert verify_state_proof(root, key, value, proof) == valid


@pytest.mark.parametrize(
    "items", [{b"\x00" * 31: ZERO}, {ZERO: b"\x00" * 31}, {"k" * 32: ZERO}, {ZERO: "v" * 32}]
)
def test_malformed_updates_are_refused(items: Any) -> None:
    with pytest.raises(MalformedInput):
        StateTree(MemoryNodeStore(), EMPTY).update(items)


def test_a_missing_or_corrupt_node_is_a_store_error() -> None:
    tree, store = build({ZERO: ZERO, b"\xff" * 32: ZERO})
    store.nodes[tree.root] = b"\x93\x02" + store.nodes[tree.root][2:]
    with pytest.raises(StoreError):
        tree.get(ZERO)
    del store.nodes[tree.root]
    with pytest.raises(StoreError):
        tree.prove(ZERO)
