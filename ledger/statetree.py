"""The authenticated certificate state: a sparse Merkle tree proving both presence and absence."""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, Protocol, cast

from ledger.errors import MalformedInput, StoreCorrupt
from ledger.hashing import TAG_STATE_LEAF, TAG_STATE_NODE, tagged

KEY_SIZE = 32
HASH_SIZE = 32
KEY_BITS = 8 * KEY_SIZE

#: The hash of an empty subtree, and so the root of the empty tree. No SHA-256 output is all zeros
#: in practice, so it can never be mistaken for a real node.
EMPTY = bytes(HASH_SIZE)

# Two distinct keys share at most 255 leading bits, so no leaf sits deeper than 256.
MAX_PROOF_SIBLINGS = KEY_BITS


class NodeReader(Protocol):
    """Where the tree's nodes live: node hash -> canonical encoding, or None when not stored."""

    def get_node(self, node_hash: bytes) -> bytes | None: ...


class _Leaf(NamedTuple):
    key: bytes
    value_hash: bytes


class _Internal(NamedTuple):
    """An internal node's children, each a child reference: a 32-byte hash (of an internal
    node, of a leaf stored on its own by older code, or EMPTY), or a 64-byte leaf held inline,
    its key then its value hash (`child_hash` names it)."""

    left: bytes
    right: bytes


#: A node as the tree reads it: decoded, and checked against the hash that names it.
StateNode = _Leaf | _Internal


class NodeLoader(NodeReader, Protocol):
    """A NodeReader that also hands out nodes already decoded and checked against their hash
    (a `NodeCache`, or a reader that keeps one): the tree then reads through it."""

    def load_node(self, node_hash: bytes) -> StateNode: ...


# The tagged messages (ledger.hashing.tagged) of a leaf and of an internal node start with these;
# hashing the concatenation here, not through tagged_hash, saves two calls a node on the hottest
# path of block execution (the tests pin the two together).
_LEAF_PREFIX = tagged(TAG_STATE_LEAF, b"")
_NODE_PREFIX = tagged(TAG_STATE_NODE, b"")
_sha256 = hashlib.sha256


def state_leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    return _sha256(_LEAF_PREFIX + key + value_hash).digest()


def state_node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE_PREFIX + left + right).digest()


def _bit(key: bytes, depth: int) -> int:
    """Bit `depth` of the key, most significant bit of byte 0 first; 0 goes left."""
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1


def _right_start(key: int, depth: int) -> int:
    """The smallest key (as an integer) that shares `key`'s first `depth` bits and has bit
    `depth` set: in keys sorted under one depth-`depth` node, the first one that goes right."""
    shift = KEY_BITS - 1 - depth
    return ((key >> shift) | 1) << shift


def _common_prefix_bits(a: bytes, b: bytes) -> int:
    return KEY_BITS - (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_length()


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


# A stored node is the canonical msgpack (ledger.encoding) of [0, key, value_hash] for a leaf, or
# [1, left, right] for an internal node, where each child is a 32-byte bin (the child's hash) or a
# 64-byte bin (a leaf held inline: its key then its value hash). So an internal node takes one of
# three fixed layouts, 70, 102 or 134 bytes, and a leaf one of 70. Building and reading them
# directly gives the same bytes as the general encoder without its checks, which otherwise take
# most of a batch update's time; the tests pin the two together.
#
# Leaves are held inline by their parent, never stored on their own, except the root of a tree of
# one key (it has no parent) and the leaves of a store written before inline leaves, which the
# tree still follows by hash (docs/architecture.md, "The state tree in the store").
_BIN32 = b"\xc4\x20"
_BIN64 = b"\xc4\x40"
_LEAF_HEADER = b"\x93\x00" + _BIN32
_INTERNAL_KIND = b"\x93\x01"
_INTERNAL_HEADER = _INTERNAL_KIND + _BIN32
_NODE_SIZE = 4 + HASH_SIZE + 2 + HASH_SIZE
_INLINE_SIZE = KEY_SIZE + HASH_SIZE
_INTERNAL_SIZES = frozenset({_NODE_SIZE, _NODE_SIZE + HASH_SIZE, _NODE_SIZE + 2 * HASH_SIZE})


def child_hash(child: bytes) -> bytes:
    """The hash of the subtree a child reference names: the reference itself, or the hash of the
    leaf held inline."""
    if len(child) == HASH_SIZE:
        return child
    return _sha256(_LEAF_PREFIX + child).digest()


def encode_leaf(key: bytes, value_hash: bytes) -> bytes:
    """The stored form of a leaf on its own: the canonical encoding of [0, key, value_hash]."""
    return _LEAF_HEADER + key + _BIN32 + value_hash


def encode_internal(left: bytes, right: bytes) -> bytes:
    """The stored form of an internal node: the canonical encoding of [1, left, right], each
    child a 32-byte hash or a 64-byte inline leaf (key, value hash)."""
    return (
        _INTERNAL_KIND
        + (_BIN32 if len(left) == HASH_SIZE else _BIN64)
        + left
        + (_BIN32 if len(right) == HASH_SIZE else _BIN64)
        + right
    )


def _encode_node(node: StateNode) -> bytes:
    if isinstance(node, _Leaf):
        return encode_leaf(node.key, node.value_hash)
    return encode_internal(node.left, node.right)


def _load(reader: NodeReader, node_hash: bytes) -> _Leaf | _Internal:
    return _decode(node_hash, _stored(reader, node_hash))


def _stored(reader: NodeReader, node_hash: bytes) -> bytes:
    encoded = reader.get_node(node_hash)
    if encoded is None:
        raise StoreCorrupt(f"state node {node_hash.hex()} is missing from the store")
    return encoded


def _parse(encoded: bytes) -> _Leaf | _Internal | None:
    """The node in one of the stored layouts, unchecked; None for any other bytes."""
    size = len(encoded)
    if size == _NODE_SIZE and encoded[36:38] == _BIN32:
        header = encoded[:4]
        if header == _INTERNAL_HEADER:
            return _Internal(encoded[4:36], encoded[38:])
        if header == _LEAF_HEADER:
            return _Leaf(encoded[4:36], encoded[38:])
        return None
    if size not in _INTERNAL_SIZES or encoded[:2] != _INTERNAL_KIND:
        return None
    tag = encoded[2:4]
    if tag == _BIN32:
        split = 4 + HASH_SIZE
    elif tag == _BIN64:
        split = 4 + _INLINE_SIZE
    else:
        return None
    right_size = size - split - 2
    tag = encoded[split : split + 2]
    if (tag == _BIN32 and right_size == HASH_SIZE) or (
        tag == _BIN64 and right_size == _INLINE_SIZE
    ):
        return _Internal(encoded[4:split], encoded[split + 2 :])
    return None


def _decode(node_hash: bytes, encoded: bytes) -> _Leaf | _Internal:
    # A misshapen or altered node means a corrupt store, not a bad request. A node is named by
    # its hash, so one whose bytes do not hash to its name is caught here, on every read: an
    # inline leaf is part of its parent's bytes, so hashing the parent checks it too.
    node = _parse(encoded)
    if node is None:
        raise StoreCorrupt(f"state node {node_hash.hex()} is not a canonical node encoding")
    if isinstance(node, _Leaf):
        if state_leaf_hash(node.key, node.value_hash) == node_hash:
            return node
    elif state_node_hash(child_hash(node.left), child_hash(node.right)) == node_hash:
        return node
    raise StoreCorrupt(f"state node {node_hash.hex()} does not match its hash")


def stored_nodes_fault(
    expected: Mapping[bytes, bytes], stored: Iterable[tuple[bytes, bytes]]
) -> str | None:
    """Why the `stored` (node hash, bytes) entries are not the tree `expected` holds (the nodes
    this code writes for it, as a MemoryNodeStore has them), or None when they are.

    A store written before inline leaves holds the same tree in the older form: internal nodes
    naming leaf children by hash, and those leaves on their own. So an entry that differs from
    the expected one must still decode to a node hashing to its name (the same node, in the
    other form), every child it names by hash must be stored, and a leaf that the expected tree
    holds inline must be named by one of those nodes: nothing stored is unreachable, nothing
    reachable is missing.
    """
    count = 0
    named: set[bytes] = set()  # leaves the older-form nodes name by hash
    own_leaves: set[bytes] = set()
    for node_hash, encoded in stored:
        want = expected.get(node_hash)
        if want == encoded:
            count += 1
            continue
        try:
            node = _decode(node_hash, encoded)
        except StoreCorrupt:
            return f"the stored state tree node {node_hash.hex()[:16]} is not one the state implies"
        if want is not None and isinstance(node, _Internal):
            count += 1
            for child in node:
                if len(child) == HASH_SIZE and child != EMPTY and child not in expected:
                    named.add(child)
        elif want is None and isinstance(node, _Leaf):
            own_leaves.add(node_hash)
        else:
            return f"the stored state tree node {node_hash.hex()[:16]} is not one the state implies"
    if count != len(expected):
        return f"{len(expected) - count} state tree nodes are missing from the store"
    if missing := named - own_leaves:
        return f"{len(missing)} state tree leaves are missing from the store"
    if stray := own_leaves - named:
        return f"{len(stray)} stored state tree leaves are not in the state the chain implies"
    return None


class NodeCache:
    """State tree nodes by hash, each checked against its hash once.

    `_load` hashes a node again on every read, so that a node whose stored bytes do not hash to
    its name is caught. Here that happens once: on the node's first read from `reader` (a
    corrupt node fails it, is not kept, and fails again on every later read), or not at all for
    a node this process made itself (`created`: it was named by hashing its contents). A node is
    named by its contents, so a kept one never goes stale; one the tree no longer reaches is
    dropped when a commit removes it from the store, as the store drops it. The encodings are
    kept, not decoded nodes: bytes are no work for the cyclic garbage collector, where 200,000
    tuples (a NamedTuple is never untracked) are traversed by every full collection. Past `size`
    nodes the cache starts again empty (cheaper than an LRU).
    """

    def __init__(self, reader: NodeReader, size: int) -> None:
        self._reader = reader
        self.size = size
        self._nodes: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def load_node(self, node_hash: bytes) -> StateNode:
        encoded = self._nodes.get(node_hash)
        if encoded is not None:  # checked when it entered: one of the layouts, by its length
            size = len(encoded)
            if size == 70:  # byte 1 is the kind, 1 internal
                if encoded[1]:
                    return tuple.__new__(_Internal, (encoded[4:36], encoded[38:]))
                return tuple.__new__(_Leaf, (encoded[4:36], encoded[38:]))
            if size == 134 or encoded[3] == 0x40:  # the left child inline
                return tuple.__new__(_Internal, (encoded[4:68], encoded[70:]))
            return tuple.__new__(_Internal, (encoded[4:36], encoded[38:]))
        encoded = _stored(self._reader, node_hash)
        node = _decode(node_hash, encoded)  # so `encoded` is canonical and hashes to its name
        if len(self._nodes) >= self.size:
            self._nodes.clear()
        self._nodes[node_hash] = encoded
        return node

    def get_node(self, node_hash: bytes) -> bytes | None:
        encoded = self._nodes.get(node_hash)
        return self._reader.get_node(node_hash) if encoded is None else encoded

    def created(self, writes: Mapping[bytes, bytes | None]) -> None:
        """The store took `writes` (an update's, made by this process): new nodes enter while
        there is room, dropped ones leave, and a kept node the store now holds in another form
        (a node of the older form, its leaves moved inline) is kept in the new one, whose leaf
        entries the same writes delete."""
        nodes = self._nodes
        for node_hash, encoded in writes.items():
            if encoded is None:
                nodes.pop(node_hash, None)
            elif (node_hash in nodes or len(nodes) < self.size) and len(encoded) in _INTERNAL_SIZES:
                nodes[node_hash] = encoded


def _loader(reader: NodeReader) -> Callable[[bytes], StateNode]:
    # Not isinstance() against a runtime-checkable NodeLoader: on Python 3.11 that check costs
    # 20 to 40 µs, paid by every StateTree, so by every public lookup.
    load_node = getattr(reader, "load_node", None)
    if load_node is not None:
        return cast(Callable[[bytes], StateNode], load_node)
    return partial(_load, reader)


@dataclass(frozen=True)
class StateProof:
    """The path to a key in the state tree, checked by `verify_state_proof` against a root.

    `leaf` is the (key, value_hash) of the leaf where the key's path ends, or None when it ends at
    an empty subtree. Proving absence, that leaf may hold another key sharing the path.

    `siblings` run from the root downward: siblings[d] is the hash of the child, at depth d + 1,
    of the depth-d node on the path that the path does not enter (the placeholder, 32 zero bytes,
    when that child is empty). So len(siblings) is the depth where the path ends.
    """

    leaf: tuple[bytes, bytes] | None
    siblings: tuple[bytes, ...]

    def to_wire(self) -> list[Any]:
        """[leaf, siblings]: leaf is nil or [key, value_hash]; siblings an array of 32-byte bins."""
        leaf = None if self.leaf is None else [self.leaf[0], self.leaf[1]]
        return [leaf, list(self.siblings)]

    @classmethod
    def from_wire(cls, obj: object) -> StateProof:
        """The inverse of `to_wire` on decoded msgpack; raises MalformedInput on any other shape."""
        if not isinstance(obj, list | tuple) or len(obj) != 2:
            raise MalformedInput("a state proof is an array [leaf, siblings]")
        wire_leaf, wire_siblings = obj
        leaf: tuple[bytes, bytes] | None = None
        if wire_leaf is not None:
            if not isinstance(wire_leaf, list | tuple) or len(wire_leaf) != 2:
                raise MalformedInput("a state proof leaf is nil or an array [key, value_hash]")
            key, value_hash = wire_leaf
            if not _is_hash(key) or not _is_hash(value_hash):
                raise MalformedInput("a state proof leaf holds two 32-byte strings")
            leaf = (key, value_hash)
        if not isinstance(wire_siblings, list | tuple):
            raise MalformedInput("state proof siblings are an array")
        if len(wire_siblings) > MAX_PROOF_SIBLINGS:
            raise MalformedInput(f"a state proof has at most {MAX_PROOF_SIBLINGS} siblings")
        if not all(_is_hash(sibling) for sibling in wire_siblings):
            raise MalformedInput("every state proof sibling is a 32-byte string")
        return cls(leaf, tuple(wire_siblings))


def verify_state_proof(
    root: bytes, key: bytes, value_hash: bytes | None, proof: StateProof
) -> bool:
    """Whether `proof` shows that, under `root`, `key` maps to `value_hash` (None: is absent).

    Never raises: anything of the wrong type or shape is simply not a proof.
    """
    if not _is_hash(root) or not _is_hash(key):
        return False
    if value_hash is not None and not _is_hash(value_hash):
        return False
    if not isinstance(proof, StateProof):
        return False
    leaf, siblings = proof.leaf, proof.siblings
    if not isinstance(siblings, tuple) or len(siblings) > MAX_PROOF_SIBLINGS:
        return False
    if not all(_is_hash(sibling) for sibling in siblings):
        return False
    depth = len(siblings)
    if leaf is None:
        if value_hash is not None:
            return False
        node = EMPTY
    else:
        if not isinstance(leaf, tuple) or len(leaf) != 2:
            return False
        leaf_key, leaf_value = leaf
        if not _is_hash(leaf_key) or not _is_hash(leaf_value):
            return False
        if value_hash is not None:
            if leaf_key != key or leaf_value != value_hash:
                return False
        # The only leaf under this path's subtree holds another key: so this key is not there.
        elif leaf_key == key or _common_prefix_bits(leaf_key, key) < depth:
            return False
        node = state_leaf_hash(leaf_key, leaf_value)
    for d in range(depth - 1, -1, -1):
        sibling = siblings[d]
        node = state_node_hash(sibling, node) if _bit(key, d) else state_node_hash(node, sibling)
    return node == root


class _Batch:
    """One update's work: the nodes it creates and the stored nodes it takes out of the tree.

    Subtrees are passed as child references (see `_Internal`): a leaf made or met here is its
    64-byte inline form, stored only as part of its parent.

    Items are sorted by key, so the keys under one subtree form a contiguous range and each
    touched node is read and rebuilt once for the whole batch, whatever its size. The keys are
    also kept as integers: a node's range then splits where its first right-going key starts
    (`_right_start`), found by one bisection in C rather than a key function per probe.
    """

    def __init__(
        self, load: Callable[[bytes], StateNode], keys: list[bytes], values: list[bytes | None]
    ) -> None:
        self._load = load
        self.keys = keys
        self.ints = [int.from_bytes(key, "big") for key in keys]
        self.values = values
        self._deletes = None in values
        self.created: dict[bytes, bytes] = {}
        # Ordered (the writes then come out in the same order on every node), with each stored
        # node as it was read: one made again under the same hash is rewritten only if its
        # stored form changes (a store of the older form: its leaves now go inline).
        self.replaced: dict[bytes, StateNode] = {}

    def new_leaf(self, key: bytes, value_hash: bytes) -> bytes:
        return key + value_hash

    def new_internal(self, left: bytes, right: bytes) -> bytes:
        if len(left) == 32 and len(right) == 32:  # children by hash: the usual case, alone
            node_hash = _sha256(_NODE_PREFIX + left + right).digest()
            self.created[node_hash] = _INTERNAL_HEADER + left + _BIN32 + right
            return node_hash
        if len(left) == HASH_SIZE:
            left_hash, left_part = left, _BIN32 + left
        else:
            left_hash, left_part = _sha256(_LEAF_PREFIX + left).digest(), _BIN64 + left
        if len(right) == HASH_SIZE:
            right_hash, right_part = right, _BIN32 + right
        else:
            right_hash, right_part = _sha256(_LEAF_PREFIX + right).digest(), _BIN64 + right
        node_hash = _sha256(_NODE_PREFIX + left_hash + right_hash).digest()
        self.created[node_hash] = _INTERNAL_KIND + left_part + right_part
        return node_hash

    def build(
        self, keys: list[bytes], ints: list[int], values: list[bytes], lo: int, hi: int, depth: int
    ) -> bytes:
        """A fresh subtree holding keys[lo:hi] and their values, keys sharing `depth` bits."""
        count = hi - lo
        if count == 0:
            return EMPTY
        if count == 1:
            return self.new_leaf(keys[lo], values[lo])
        if count == 2:
            return self._pair(keys, ints, values, lo, depth)
        mid = bisect_left(ints, _right_start(ints[lo], depth), lo, hi)
        left = self.build(keys, ints, values, lo, mid, depth + 1)
        right = self.build(keys, ints, values, mid, hi, depth + 1)
        # Two or more keys are below, so even with one side empty this node must stay.
        return self.new_internal(left, right)

    def _pair(
        self, keys: list[bytes], ints: list[int], values: list[bytes], lo: int, depth: int
    ) -> bytes:
        """`build` of two keys without recursing: their two leaves under the node at the first
        bit where the keys differ, then one node a level up to `depth`, its other side empty
        (the nodes made, and so the writes, in the order the recursion makes them)."""
        first = ints[lo]
        split = KEY_BITS - (first ^ ints[lo + 1]).bit_length()
        left = self.new_leaf(keys[lo], values[lo])
        node = self.new_internal(left, self.new_leaf(keys[lo + 1], values[lo + 1]))
        for d in range(split - 1, depth - 1, -1):
            if (first >> (KEY_BITS - 1 - d)) & 1:
                node = self.new_internal(EMPTY, node)
            else:
                node = self.new_internal(node, EMPTY)
        return node

    def _live(self, lo: int, hi: int) -> tuple[list[bytes], list[int], list[bytes]]:
        """The keys of items[lo:hi] that are set, not deleted, with their integers and values."""
        if not self._deletes:
            return self.keys[lo:hi], self.ints[lo:hi], cast(list[bytes], self.values[lo:hi])
        keys: list[bytes] = []
        ints: list[int] = []
        values: list[bytes] = []
        for i in range(lo, hi):
            value = self.values[i]
            if value is not None:
                keys.append(self.keys[i])
                ints.append(self.ints[i])
                values.append(value)
        return keys, ints, values

    def update(self, node_hash: bytes, lo: int, hi: int, depth: int) -> tuple[bytes, bool | None]:
        """Apply items[lo:hi] (never empty) to the subtree `node_hash` (a child reference) at
        `depth`.

        Returns the new subtree's child reference and whether it is a leaf (None: unknown, the
        subtree was not touched), which the parent needs to lift a lone leaf after deletions.
        """
        if node_hash == EMPTY:
            keys, ints, values = self._live(lo, hi)
            return self.build(keys, ints, values, 0, len(keys), depth), len(keys) == 1
        if len(node_hash) == _INLINE_SIZE:  # a leaf held inline by the parent: nothing stored
            return self.leaf(node_hash[:KEY_SIZE], node_hash[KEY_SIZE:], lo, hi, depth)
        node = self._load(node_hash)
        if isinstance(node, _Leaf):
            # A stored leaf (the root, or the older form) leaves the store; if it comes back
            # unchanged, here or deeper, being both replaced and created it is neither written
            # nor deleted (or, made inline, the stored one goes).
            self.replaced[node_hash] = node
            return self.leaf(node.key, node.value_hash, lo, hi, depth)
        mid = bisect_left(self.ints, _right_start(self.ints[lo], depth), lo, hi)
        # An untouched side is kept as it is, without a call.
        left = self.update(node.left, lo, mid, depth + 1) if lo < mid else (node.left, None)
        right = self.update(node.right, mid, hi, depth + 1) if mid < hi else (node.right, None)
        left_hash, right_hash = left[0], right[0]
        if left_hash == node.left and right_hash == node.right:
            return node_hash, False
        self.replaced[node_hash] = node
        if left_hash != EMPTY and right_hash != EMPTY:  # join's usual case, without the call
            return self.new_internal(left_hash, right_hash), False
        return self.join(left, right)

    def leaf(
        self, key: bytes, value_hash: bytes, lo: int, hi: int, depth: int
    ) -> tuple[bytes, bool]:
        """`update` of the subtree that is the one leaf (key, value_hash)."""
        keys, ints, values = self._live(lo, hi)
        at = bisect_left(self.keys, key, lo, hi)
        if at == hi or self.keys[at] != key:
            where = bisect_left(keys, key)
            keys.insert(where, key)
            ints.insert(where, int.from_bytes(key, "big"))
            values.insert(where, value_hash)
        return self.build(keys, ints, values, 0, len(keys), depth), len(keys) == 1

    def join(
        self, left: tuple[bytes, bool | None], right: tuple[bytes, bool | None]
    ) -> tuple[bytes, bool | None]:
        left_hash, right_hash = left[0], right[0]
        if left_hash == EMPTY and right_hash == EMPTY:
            return EMPTY, False
        # A deletion can leave one leaf alone beside an empty subtree: it moves up in its place,
        # keeping each leaf as high as it can be (and the tree's shape a function of its keys).
        if right_hash == EMPTY and self.is_leaf(left):
            return left_hash, True
        if left_hash == EMPTY and self.is_leaf(right):
            return right_hash, True
        return self.new_internal(left_hash, right_hash), False

    def is_leaf(self, subtree: tuple[bytes, bool | None]) -> bool:
        node_hash, known = subtree
        if known is not None:
            return known
        if len(node_hash) == _INLINE_SIZE:
            return True
        return isinstance(self._load(node_hash), _Leaf)

    def root(self, child: bytes) -> bytes:
        """The root hash for the new tree's top child reference: a leaf alone is stored on its
        own, as nothing holds it inline."""
        if len(child) == HASH_SIZE:
            return child
        root = _sha256(_LEAF_PREFIX + child).digest()
        self.created[root] = _LEAF_HEADER + child[:KEY_SIZE] + _BIN32 + child[KEY_SIZE:]
        return root

    def writes(self) -> dict[bytes, bytes | None]:
        # Every node is reachable at most once in a tree, so a hash both created and replaced
        # is a node that stays where it was or only moved: the store already holds it, and
        # rewrites it only when it is made in another form (its leaves inline).
        replaced = self.replaced
        writes: dict[bytes, bytes | None] = {
            node_hash: encoded
            for node_hash, encoded in self.created.items()
            if node_hash not in replaced or _encode_node(replaced[node_hash]) != encoded
        }
        for node_hash in replaced:
            if node_hash not in self.created:
                writes[node_hash] = None
        return writes


def _check_items(items: Mapping[bytes, bytes | None]) -> tuple[list[bytes], list[bytes | None]]:
    """The keys in order and their values, once every key and value hash has been checked."""
    for key, value_hash in items.items():
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise MalformedInput(f"a state key is {KEY_SIZE} bytes")
        if value_hash is not None and not _is_hash(value_hash):
            raise MalformedInput(f"a state value hash is {HASH_SIZE} bytes")
    keys = sorted(items)
    return keys, [items[key] for key in keys]


class StateTree:
    """A read-only view of the state tree with root `root`, whose nodes `reader` holds.

    `update` computes a successor without writing anything: the caller stores its writes in the
    same batch as the block, then opens a new StateTree on the new root. A reader that is a
    `NodeLoader` (the node's cache) hands out nodes it has checked already; any other has each
    node it returns checked against its hash as it is read.
    """

    def __init__(self, reader: NodeReader, root: bytes) -> None:
        if not _is_hash(root):
            raise MalformedInput(f"a state root is {HASH_SIZE} bytes")
        self._reader = reader
        self._load = _loader(reader)
        self._root = root

    @property
    def root(self) -> bytes:
        return self._root

    def get(self, key: bytes) -> bytes | None:
        """The value hash stored under `key`, or None when the key is absent."""
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise MalformedInput(f"a state key is {KEY_SIZE} bytes")
        load = self._load
        path = int.from_bytes(key, "big")
        shift = KEY_BITS - 1
        node_hash = self._root
        while node_hash != EMPTY:
            node = load(node_hash)
            if isinstance(node, _Leaf):
                return node.value_hash if node.key == key else None
            node_hash = node.right if (path >> shift) & 1 else node.left
            if len(node_hash) == 64:  # a leaf, held inline (_INLINE_SIZE)
                return node_hash[KEY_SIZE:] if node_hash[:KEY_SIZE] == key else None
            shift -= 1
        return None

    def prove(self, key: bytes) -> StateProof:
        """A proof that `key` holds its current value, or is absent: see `verify_state_proof`."""
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise MalformedInput(f"a state key is {KEY_SIZE} bytes")
        load = self._load
        path = int.from_bytes(key, "big")
        shift = KEY_BITS - 1
        siblings: list[bytes] = []
        node_hash = self._root
        while node_hash != EMPTY:
            node = load(node_hash)
            if isinstance(node, _Leaf):
                return StateProof((node.key, node.value_hash), tuple(siblings))
            if (path >> shift) & 1:
                sibling, node_hash = node.left, node.right
            else:
                sibling, node_hash = node.right, node.left
            siblings.append(sibling if len(sibling) == HASH_SIZE else child_hash(sibling))
            if len(node_hash) == 64:  # a leaf, held inline (_INLINE_SIZE)
                leaf = (node_hash[:KEY_SIZE], node_hash[KEY_SIZE:])
                return StateProof(leaf, tuple(siblings))
            shift -= 1
        return StateProof(None, tuple(siblings))

    def update(
        self, items: Mapping[bytes, bytes | None]
    ) -> tuple[bytes, dict[bytes, bytes | None]]:
        """Set each key to its value hash (None deletes the key) in one batch.

        Returns the new root and the store writes taking this tree to it: node hash -> encoding,
        or None for a node no longer reachable. Nodes made and dropped within the batch never
        appear. This tree is left unchanged.
        """
        keys, values = _check_items(items)
        if not keys:
            return self._root, {}
        batch = _Batch(self._load, keys, values)
        top, _ = batch.update(self._root, 0, len(keys), 0)
        new_root = batch.root(top)
        return new_root, batch.writes()


class MemoryNodeStore:
    """A dict of nodes, for tests and the simulation."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self.nodes.get(node_hash)

    def apply(self, writes: Mapping[bytes, bytes | None]) -> None:
        for node_hash, encoded in writes.items():
            if encoded is None:
                self.nodes.pop(node_hash, None)
            else:
                self.nodes[node_hash] = encoded

    def __len__(self) -> int:
        return len(self.nodes)
