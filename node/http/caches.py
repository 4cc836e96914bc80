"""The public routes' caches: serialised answers by head, and final blocks' headers and trees."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ledger.block import leaf_event_id
from ledger.errors import InvalidProof
from ledger.merkle import MerkleTree
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
            self._ids = b"".join(leaf_event_id(leaf) for leaf in self.leaves)
        start = 0
        while (found := self._ids.find(event_id, start)) >= 0:
            if found % 32 == 0:
                return found // 32
            start = found + 1
        raise InvalidProof(f"block {self.final.header.height} holds no event {event_id.hex()}")

    def path(self, index: int) -> tuple[bytes, ...]:
        """PATH(index) of RFC 9162 2.1.3.1; the block's tree is hashed at the first call."""
        if self._tree is None:
            self._tree = MerkleTree(self.leaves)
        return tuple(self._tree.path(index))


class BlockCache:
    """Final headers and Merkle trees of final blocks, so a public proof is not rebuilt from scratch.

    Recomputing one inclusion path hashes the whole block (4,000 hashes for 2,000 events) and
    reading a header decodes the block's leaves; a final block never changes, so both are kept.
    """

    def __init__(self, store: Store, size: int = 256) -> None:
        self.store = store
        self.size = size
        self.blocks: OrderedDict[int, _FinalBlock] = OrderedDict()

    def _block(self, height: int) -> _FinalBlock:
        found = self.blocks.get(height)
        if found is not None:
            self.blocks.move_to_end(height)
            return found
        final = StoreBlocks(self.store).final_header(height)
        found = _FinalBlock(final, self.store.event_leaves(height))
        if len(found.leaves) != final.header.event_count:
            raise InvalidProof(f"the store holds block {height}'s events incompletely")
        self.blocks[height] = found
        while len(self.blocks) > self.size:
            self.blocks.popitem(last=False)
        return found

    def final_header(self, height: int) -> FinalHeader:
        return self._block(height).final

    def inclusion(self, height: int, event_id: bytes) -> tuple[int, tuple[bytes, ...]]:
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
