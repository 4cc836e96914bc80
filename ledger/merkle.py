"""The Merkle tree of RFC 9162 section 2.1 over the events of one block: roots and inclusion proofs."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import MalformedInput
from ledger.hashing import sha256

HASH_SIZE = 32

#: Root of the tree with no leaves (RFC 9162 2.1.1: the hash of the empty string).
EMPTY_ROOT = sha256(b"")

# A leaf and a node can never hash alike, so a proof cannot pass an inner node off as an event.
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

# RFC 9162 trees are indexed by 64-bit integers; nothing larger is a tree anyone can hold.
_MAX_SIZE = 2**64


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return sha256(_LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return sha256(_NODE_PREFIX + left + right)


def _parent_level(level: list[bytes]) -> list[bytes]:
    # Pairing left to right and lifting a lone last node unchanged builds exactly the RFC's tree
    # (split at the largest power of two below n) without recursion.
    parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 2.1.1 over the raw leaf data."""
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(data) for data in leaves]
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


class MerkleTree:
    """The levels of one tree, hashed once, for the inclusion paths of many of its leaves.

    Each level is kept as its hashes concatenated (32 bytes each), the leaves' hashes first and
    the root last: a final block's tree is hashed once however many proofs it serves.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        level = [leaf_hash(data) for data in leaves]
        self._levels = [b"".join(level)]
        while len(level) > 1:
            level = _parent_level(level)
            self._levels.append(b"".join(level))

    @property
    def root(self) -> bytes:
        return self._levels[-1] if self.size else EMPTY_ROOT

    def path(self, index: int) -> list[bytes]:
        """PATH(index, D[n]) of RFC 9162 2.1.3.1: sibling hashes from the leaf's level up.

        Raises MalformedInput when index is not a leaf of the tree.
        """
        _check_index(index, self.size)
        return _siblings(self._levels, index)


class UpperTree:
    """A tree's levels from the roots of its aligned 2**k-leaf subtrees up, without the rest.

    RFC 9162's tree pairs aligned subtrees on their own: node j of level k covers leaves
    [j * 2**k, (j + 1) * 2**k) whatever the size (a lone last node rises within the last,
    partial subtree). So the path of a leaf is the path inside its subtree, hashed again from
    that subtree's 2**k leaves, then the path of the subtree's root among the kept levels. Kept:
    about 2 * n / 2**k hashes instead of 2 * n.
    """

    def __init__(self, tree: MerkleTree, k: int) -> None:
        self.size = tree.size
        self.k = k
        # A tree of at most 2**k leaves is one subtree: nothing above it to keep.
        self._levels = tree._levels[k:] if len(tree._levels) > k + 1 else []

    def path(self, index: int, leaves: Sequence[bytes]) -> list[bytes]:
        """PATH(index, D[n]) from the tree's leaves (only the subtree holding `index` is read).

        Raises MalformedInput when index is not a leaf of the tree or `leaves` is not its size.
        """
        _check_index(index, self.size)
        if len(leaves) != self.size:
            raise MalformedInput(f"{len(leaves)} leaves given for a tree of {self.size}")
        subtree = index >> self.k
        start = subtree << self.k
        proof = MerkleTree(leaves[start : start + (1 << self.k)]).path(index - start)
        return proof + _siblings(self._levels, subtree)


def _check_index(index: int, size: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise MalformedInput(f"leaf index {index!r} is not in a tree of {size} leaves")


def _siblings(levels: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes of node `index` of levels[0] (each level its hashes end to end), one
    a level, up to the level below the root."""
    proof: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        # A lone last node has no sibling at this level: it rises unchanged and adds nothing.
        if sibling * HASH_SIZE < len(level):
            proof.append(level[sibling * HASH_SIZE : (sibling + 1) * HASH_SIZE])
        index >>= 1
    return proof


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 2.1.3.1: sibling hashes from the leaf's level up to the root.

    Raises MalformedInput when index is not a leaf of the tree.
    """
    return MerkleTree(leaves).path(index)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_SIZE


def verify_inclusion(
    leaf_data: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: whether leaf_data is leaf `index` of the tree of `size` leaves with `root`.

    Never raises: input of the wrong type or shape is simply not a proof. The tree size is not
    bound by the root alone (a proof for a size can verify for another size whose tree has the
    same shape along this path), so callers take `size` from an authenticated header.
    """
    if not isinstance(leaf_data, bytes) or not _is_hash(root):
        return False
    if not _is_index(index) or not _is_index(size) or index >= size:
        return False
    # bytes and str are sequences too; a proof is a sequence of hashes, nothing else.
    if not isinstance(proof, Sequence) or isinstance(proof, bytes | bytearray | str):
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    fn = index
    sn = size - 1
    r = leaf_hash(leaf_data)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # Climb past the levels where this node was the lone last one: no sibling there.
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
