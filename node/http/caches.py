"""The public routes' caches: serialised answers by head, and final blocks' headers and trees."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ledger.block import leaf_event_id
from ledger.errors import InvalidProof
from ledger.merkle import MerkleTree, UpperTree
from ledger.proofs import FinalHeader, StoreBlocks
from ledger.store import Store


class PublicCache:
    """Answers that depend only on final blocks, keyed by the head they were built on."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, int], PublicAnswer] = OrderedDict()

    def get(self, key: tuple[str, int]) -> PublicAnswer | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: tuple[str, int], value: PublicAnswer) -> None:
        self.items[key] = value
        while len(self.items) > self.size:
            self.items.popitem(last=False)


@dataclass(frozen=True)
class PublicAnswer:
    """A serialised public answer: status, JSON body, and the certificate's digest (hex) if any."""

    status: int
    body: bytes
    digest: str | None

    def with_digest_check(self, claimed: str) -> bytes:
        """The body with "digest_matches" first, spliced in without parsing the JSON again."""
        matches = b"true" if claimed == self.digest else b"false"
        return b'{"digest_matches": ' + matches + b", " + self.body[1:]


class _FinalBlock:
    """One final block as proofs need it: its final header and its events' Merkle tree."""

    def __init__(self, final: FinalHeader, leaves: list[bytes]) -> None:
        self.final = final
        self.leaves = leaves
        self._ids: bytes | None = None
        self._tree: MerkleTree | None = None

    def index_of(self, event_id: bytes) -> int:
        if self._ids is None:
            self._ids = _ids(self.leaves)
        index = _index_in(self._ids, event_id)
        if index is None:
            raise _no_event(self.final.header.height, event_id)
        return index

    def path(self, index: int) -> tuple[bytes, ...]:
        """PATH(index) of RFC 9162 2.1.3.1; the block's tree is hashed at the first call."""
        if self._tree is None:
            self._tree = MerkleTree(self.leaves)
        return tuple(self._tree.path(index))

    @property
    def hashed(self) -> MerkleTree | None:
        """The block's tree if a path was asked of it (so it was hashed), else None."""
        return self._tree


def _ids(leaves: list[bytes]) -> bytes:
    return b"".join(leaf_event_id(leaf) for leaf in leaves)


def _index_in(ids: bytes, event_id: bytes) -> int | None:
    """Where `event_id` is among a block's ids (32 bytes each), found on a 32-byte boundary."""
    start = 0
    while (found := ids.find(event_id, start)) >= 0:
        if found % 32 == 0:
            return found // 32
        start = found + 1
    return None


def _no_event(height: int, event_id: bytes) -> InvalidProof:
    return InvalidProof(f"block {height} holds no event {event_id.hex()}")


@dataclass(frozen=True)
class _UpperBlock:
    """A block that left the cache of whole trees: its final header and the upper levels of its
    tree (a few KiB for 2,000 events), so a path hashes one 64-leaf subtree, not the block."""

    final: FinalHeader
    upper: UpperTree


#: Leaves of the subtrees an upper tree keeps no hashes below (2**6 = 64).
SUBTREE_LEVELS = 6


class BlockCache:
    """Final headers and Merkle trees of final blocks, so a public proof is not rebuilt from scratch.

    Recomputing one inclusion path hashes the whole block (4,000 hashes for 2,000 events) and
    reading a header decodes the block's leaves; a final block never changes, so both are kept:
    whole for the `size` blocks read last, and for the `upper_size` before those the header and
    the tree's levels from its 64-leaf subtrees up (a path then reads the block's leaves and
    hashes one subtree, not the block). A height is in one of the two, never both: it enters
    the second only when it leaves the first, and a height in the second is served from it.
    """

    def __init__(self, store: Store, size: int = 256, upper_size: int = 16_384) -> None:
        self.store = store
        self.size = size
        self.upper_size = upper_size
        self.blocks: OrderedDict[int, _FinalBlock] = OrderedDict()
        self.uppers: OrderedDict[int, _UpperBlock] = OrderedDict()

    def _block(self, height: int) -> _FinalBlock:
        found = self.blocks.get(height)
        if found is not None:
            self.blocks.move_to_end(height)
            return found
        final = StoreBlocks(self.store).final_header(height)
        found = _FinalBlock(final, self._leaves(height, final))
        self.blocks[height] = found
        while len(self.blocks) > self.size:
            left_height, left = self.blocks.popitem(last=False)
            if left.hashed is not None:  # a block only its header was read of keeps nothing
                self.uppers[left_height] = _UpperBlock(
                    left.final, UpperTree(left.hashed, SUBTREE_LEVELS)
                )
                while len(self.uppers) > self.upper_size:
                    self.uppers.popitem(last=False)
        return found

    def _leaves(self, height: int, final: FinalHeader) -> list[bytes]:
        leaves = self.store.event_leaves(height)
        if len(leaves) != final.header.event_count:
            raise InvalidProof(f"the store holds block {height}'s events incompletely")
        return leaves

    def final_header(self, height: int) -> FinalHeader:
        upper = self.uppers.get(height)
        if upper is not None:
            self.uppers.move_to_end(height)
            return upper.final
        return self._block(height).final

    def inclusion(self, height: int, event_id: bytes) -> tuple[int, tuple[bytes, ...]]:
        upper = self.uppers.get(height)
        if upper is not None:
            self.uppers.move_to_end(height)
            leaves = self._leaves(height, upper.final)
            index = _index_in(_ids(leaves), event_id)
            if index is None:
                raise _no_event(height, event_id)
            return index, tuple(upper.upper.path(index, leaves))
        block = self._block(height)
        index = block.index_of(event_id)
        return index, block.path(index)


class VerifyCache:
    """Proof checks keyed by (number, height): a final block never changes the answer."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, int], tuple[int, bytes]] = OrderedDict()

    def get(self, key: tuple[str, int]) -> tuple[int, bytes] | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: tuple[str, int], value: tuple[int, bytes]) -> None:
        self.items[key] = value
        while len(self.items) > self.size:
            self.items.popitem(last=False)
