"""The state tree's fast paths (issue 21) against the code they replaced, kept here verbatim."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import StoreCorrupt
from ledger.hashing import TAG_STATE_LEAF, TAG_STATE_NODE, tagged_hash
from ledger.statetree import (
    EMPTY,
    MemoryNodeStore,
    NodeCache,
    NodeLoader,
    StateProof,
    StateTree,
    _bit,
    _Internal,
    _Leaf,
    _right_start,
    encode_internal,
    encode_leaf,
    state_leaf_hash,
    state_node_hash,
)
from tests.ledger.test_statetree import keys, values

# -- the tree before issue 21 (commit 02c3067): every read parsed and hashed, bytes bit tests,
# -- bisections with a key function, every leaf stored on its own. The fast path must give the
# -- same roots, the same proofs and the same errors (its stored form, leaves inline, is pinned
# -- against this one in test_statetree_inline.py).


def _slow_load(reader: MemoryNodeStore, node_hash: bytes) -> _Leaf | _Internal:
    encoded = reader.get_node(node_hash)
    if encoded is None:
        raise StoreCorrupt(f"state node {node_hash.hex()} is missing from the store")
    if len(encoded) == 70 and encoded[36:38] == b"\xc4\x20":
        header = encoded[:4]
        if header == b"\x93\x01\xc4\x20":
            internal = _Internal(encoded[4:36], encoded[38:])
            if tagged_hash(TAG_STATE_NODE, internal.left + internal.right) == node_hash:
                return internal
            raise StoreCorrupt(f"state node {node_hash.hex()} does not match its hash")
        if header == b"\x93\x00\xc4\x20":
            leaf = _Leaf(encoded[4:36], encoded[38:])
            if tagged_hash(TAG_STATE_LEAF, leaf.key + leaf.value_hash) == node_hash:
                return leaf
            raise StoreCorrupt(f"state node {node_hash.hex()} does not match its hash")
    raise StoreCorrupt(f"state node {node_hash.hex()} is not a canonical node encoding")


class SlowBatch:
    def __init__(self, reader: MemoryNodeStore) -> None:
        self._reader = reader
        self.created: dict[bytes, bytes] = {}
        self.replaced: dict[bytes, None] = {}

    def load(self, node_hash: bytes) -> _Leaf | _Internal:
        return _slow_load(self._reader, node_hash)

    def new_leaf(self, key: bytes, value_hash: bytes) -> bytes:
        node_hash = tagged_hash(TAG_STATE_LEAF, key + value_hash)
        self.created[node_hash] = encode_leaf(key, value_hash)
        return node_hash

    def new_internal(self, left: bytes, right: bytes) -> bytes:
        node_hash = tagged_hash(TAG_STATE_NODE, left + right)
        self.created[node_hash] = encode_internal(left, right)
        return node_hash

    def build(self, items: list[tuple[bytes, bytes]], lo: int, hi: int, depth: int) -> bytes:
        if lo == hi:
            return EMPTY
        if hi - lo == 1:
            return self.new_leaf(*items[lo])
        mid = bisect_left(items, 1, lo, hi, key=lambda item: _bit(item[0], depth))
        left = self.build(items, lo, mid, depth + 1)
        right = self.build(items, mid, hi, depth + 1)
        return self.new_internal(left, right)

    def update(
        self,
        node_hash: bytes,
        items: list[tuple[bytes, bytes | None]],
        lo: int,
        hi: int,
        depth: int,
    ) -> tuple[bytes, bool | None]:
        if lo == hi:
            return node_hash, None
        if node_hash == EMPTY:
            live = [(key, value) for key, value in items[lo:hi] if value is not None]
            return self.build(live, 0, len(live), depth), len(live) == 1
        node = self.load(node_hash)
        if isinstance(node, _Leaf):
            live = [(key, value) for key, value in items[lo:hi] if value is not None]
            at = bisect_left(items, node.key, lo, hi, key=lambda item: item[0])
            if at == hi or items[at][0] != node.key:
                live.insert(bisect_left(live, node.key, key=lambda item: item[0]), node)
            self.replaced[node_hash] = None
            return self.build(live, 0, len(live), depth), len(live) == 1
        mid = bisect_left(items, 1, lo, hi, key=lambda item: _bit(item[0], depth))
        left = self.update(node.left, items, lo, mid, depth + 1)
        right = self.update(node.right, items, mid, hi, depth + 1)
        if left[0] == node.left and right[0] == node.right:
            return node_hash, False
        self.replaced[node_hash] = None
        return self.join(left, right)

    def join(
        self, left: tuple[bytes, bool | None], right: tuple[bytes, bool | None]
    ) -> tuple[bytes, bool | None]:
        left_hash, right_hash = left[0], right[0]
        if left_hash == EMPTY and right_hash == EMPTY:
            return EMPTY, False
        if right_hash == EMPTY and self.is_leaf(left):
            return left_hash, True
        if left_hash == EMPTY and self.is_leaf(right):
            return right_hash, True
        return self.new_internal(left_hash, right_hash), False

    def is_leaf(self, subtree: tuple[bytes, bool | None]) -> bool:
        node_hash, known = subtree
        if known is not None:
            return known
        return isinstance(self.load(node_hash), _Leaf)

    def writes(self) -> dict[bytes, bytes | None]:
        writes: dict[bytes, bytes | None] = {
            node_hash: encoded
            for node_hash, encoded in self.created.items()
            if node_hash not in self.replaced
        }
        for node_hash in self.replaced:
            if node_hash not in self.created:
                writes[node_hash] = None
        return writes


def slow_update(
    store: MemoryNodeStore, root: bytes, items: Mapping[bytes, bytes | None]
) -> tuple[bytes, dict[bytes, bytes | None]]:
    checked = sorted(items.items(), key=lambda item: item[0])
    batch = SlowBatch(store)
    new_root, _ = batch.update(root, checked, 0, len(checked), 0)
    return new_root, batch.writes()


def slow_prove(store: MemoryNodeStore, root: bytes, key: bytes) -> StateProof:
    siblings: list[bytes] = []
    node_hash = root
    while node_hash != EMPTY:
        node = _slow_load(store, node_hash)
        if isinstance(node, _Leaf):
            return StateProof((node.key, node.value_hash), tuple(siblings))
        if _bit(key, len(siblings)):
            siblings.append(node.left)
            node_hash = node.right
        else:
            siblings.append(node.right)
            node_hash = node.left
    return StateProof(None, tuple(siblings))


# -- strategies: the random keys of test_statetree (families sharing long prefixes among them) ----
batches = st.integers(0, 30).flatmap(
    lambda n: st.dictionaries(
        keys, st.one_of(values, values, values, st.none()), min_size=n, max_size=n
    )
)


class CountingStore(MemoryNodeStore):
    """A MemoryNodeStore that counts the reads that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_node(self, node_hash: bytes) -> bytes | None:
        self.reads += 1
        return super().get_node(node_hash)


@settings(deadline=None, max_examples=80)
@given(blocks=st.lists(batches, min_size=1, max_size=6), probes=st.lists(keys, max_size=8))
def test_updates_and_proofs_equal_the_slow_path_write_for_write(
    blocks: list[dict[bytes, bytes | None]], probes: list[bytes]
) -> None:
    slow_store = MemoryNodeStore()
    fast_store = MemoryNodeStore()
    cached_store = MemoryNodeStore()
    cache = NodeCache(cached_store, 1_000)
    slow_root = fast_root = cached_root = EMPTY
    for items in blocks:
        slow_root, slow_writes = slow_update(slow_store, slow_root, items)
        fast_root, fast_writes = StateTree(fast_store, fast_root).update(items)
        cached_root, cached_writes = StateTree(cache, cached_root).update(items)
        # The same root, and through the cache the same writes in the same order: the same
        # LevelDB batch.
        assert fast_root == cached_root == slow_root
        assert list(fast_writes.items()) == list(cached_writes.items())
        slow_store.apply(slow_writes)
        fast_store.apply(fast_writes)
        cached_store.apply(cached_writes)
        cache.created(cached_writes)
        for key in [*list(items)[:6], *probes]:
            expected = slow_prove(slow_store, slow_root, key)
            assert StateTree(fast_store, fast_root).prove(key) == expected
            assert StateTree(cache, cached_root).prove(key) == expected
            leaf = expected.leaf
            value = leaf[1] if leaf is not None and leaf[0] == key else None
            assert StateTree(fast_store, fast_root).get(key) == value
            assert StateTree(cache, cached_root).get(key) == value
    assert fast_store.nodes == cached_store.nodes


@settings(deadline=None)
@given(a=values, b=values)
def test_node_hashes_are_the_tagged_hashes(a: bytes, b: bytes) -> None:
    assert state_leaf_hash(a, b) == tagged_hash(TAG_STATE_LEAF, a + b)
    assert state_node_hash(a, b) == tagged_hash(TAG_STATE_NODE, a + b)


@settings(deadline=None)
@given(key=keys, other=keys, depth=st.integers(0, 255))
def test_right_start_splits_where_the_bit_at_depth_is_set(
    key: bytes, other: bytes, depth: int
) -> None:
    start = _right_start(int.from_bytes(key, "big"), depth)
    # The first `depth` bits of `key`, then bit `depth` set, then zeros.
    assert all(_bit(start.to_bytes(32, "big"), d) == _bit(key, d) for d in range(depth))
    assert _bit(start.to_bytes(32, "big"), depth) == 1
    assert start & ((1 << (255 - depth)) - 1) == 0
    if all(_bit(other, d) == _bit(key, d) for d in range(depth)):
        assert (int.from_bytes(other, "big") >= start) == bool(_bit(other, depth))


def _two_leaf_store() -> tuple[CountingStore, bytes]:
    store = CountingStore()
    root, writes = StateTree(store, EMPTY).update({bytes(32): bytes(32), b"\xff" * 32: bytes(32)})
    store.apply(writes)
    return store, root


def test_the_cache_checks_a_stored_node_once_and_a_corrupt_one_on_every_read() -> None:
    store, root = _two_leaf_store()
    cache = NodeCache(store, 100)
    root_node = store.nodes[root]
    loader: NodeLoader = cache  # what StateTree reads through
    # Both leaves inline: [1, bin64, bin64].
    assert loader.load_node(root) == _Internal(root_node[4:68], root_node[70:])
    assert StateTree(cache, root).get(bytes(32)) == bytes(32)
    reads = store.reads
    assert StateTree(cache, root).get(bytes(32)) == bytes(32)
    assert store.reads == reads  # the second walk is served checked, from the cache

    # The root holds the leaf of 0xff.. inline, and names the node over 0x00.. and 0x40.. by
    # hash; that node holds both their leaves. An altered leaf is an altered node.
    corrupt_store = CountingStore()
    corrupt_root, writes = StateTree(corrupt_store, EMPTY).update(
        {bytes(32): bytes(32), b"\x40" + bytes(31): bytes(32), b"\xff" * 32: bytes(32)}
    )
    corrupt_store.apply(writes)
    lower = _Internal(bytes(32) + bytes(32), b"\x40" + bytes(31) + bytes(32))
    lower_hash = state_node_hash(*(state_leaf_hash(c[:32], c[32:]) for c in lower))
    encoded = corrupt_store.nodes[lower_hash]
    corrupt_store.nodes[lower_hash] = encoded[:-1] + bytes([encoded[-1] ^ 1])
    corrupt = NodeCache(corrupt_store, 100)
    for _ in range(3):  # not kept: the altered node fails every read, not only the first
        with pytest.raises(StoreCorrupt, match="does not match its hash"):
            StateTree(corrupt, corrupt_root).prove(bytes(32))
    assert StateTree(corrupt, corrupt_root).get(b"\xff" * 32) == bytes(32)
    assert len(corrupt) == 1  # the root, hashing to its name, with the sound leaf inline


def test_nodes_a_commit_made_are_kept_unhashed_and_dropped_ones_leave() -> None:
    store = CountingStore()
    cache = NodeCache(store, 100)
    root, writes = StateTree(cache, EMPTY).update({bytes(32): bytes(32), b"\xff" * 32: bytes(32)})
    store.apply(writes)
    cache.created(writes)
    assert StateTree(cache, root).get(b"\xff" * 32) == bytes(32)
    assert store.reads == 0  # made by this process: served without a read or a hash
    assert cache.get_node(root) == store.nodes[root]

    new_root, more = StateTree(cache, root).update({b"\xff" * 32: None})
    store.apply(more)
    cache.created(more)
    assert StateTree(cache, new_root).get(bytes(32)) == bytes(32)
    with pytest.raises(StoreCorrupt, match="missing"):  # a dropped node is gone, as from the store
        StateTree(cache, root).get(b"\xff" * 32)


def test_the_cache_starts_again_empty_past_its_size() -> None:
    store = MemoryNodeStore()
    root, writes = StateTree(store, EMPTY).update(
        {bytes([i]) + bytes(31): bytes(32) for i in range(8)}
    )
    store.apply(writes)
    cache = NodeCache(store, 4)
    for i in range(8):
        assert StateTree(cache, root).get(bytes([i]) + bytes(31)) == bytes(32)
        assert len(cache) <= 4
    cache.created(writes)  # full: a commit's nodes wait for room rather than clearing it
    assert len(cache) <= 4
