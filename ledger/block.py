"""Blocks and headers: the hash chain, the events' Merkle root and the certificate state root."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ledger.encoding import decode, encode
from ledger.errors import InvalidBlock, MalformedInput
from ledger.events import Event
from ledger.events import event_leaf as event_leaf  # defined beside Event, which keeps its leaf
from ledger.hashing import TAG_HEADER, tagged_hash
from ledger.merkle import merkle_root

HEADER_VERSION = 1

#: More than any header's encoding takes: 12 fields, a chain id of at most 64 characters (up to
#: 256 bytes of UTF-8), five 32-byte hashes and four 64-bit integers come to under 600 bytes.
HEADER_WIRE_MAX = 1024


def block_wire_bound(max_block_events: int, max_block_bytes: int) -> int:
    """The largest encoding of a block the parameters allow (validate_block enforces both limits).

    The events' encodings take at most `max_block_bytes`; each adds a bin header of at most 5
    bytes, and the block's two array headers at most 10 more.
    """
    return HEADER_WIRE_MAX + 10 + 5 * max_block_events + max_block_bytes


def decode_event_leaf(leaf: bytes) -> tuple[bytes, str, str]:
    """The event id, type and subject an event leaf holds (the inverse of event_leaf)."""
    fields = decode(leaf)
    if not isinstance(fields, list) or len(fields) != 3:
        raise MalformedInput("an event leaf is [event_id, type, number]")
    event_id, event_type, number = fields
    if not isinstance(event_id, bytes) or len(event_id) != 32:
        raise MalformedInput("an event leaf's id is 32 bytes")
    if not isinstance(event_type, str) or not isinstance(number, str):
        raise MalformedInput("an event leaf's type and number are text")
    return event_id, event_type, number


#: How every event leaf's encoding starts: an array of 3, then a bin 8 of 32 bytes (the id).
_LEAF_ID_PREFIX = b"\x93\xc4\x20"


def leaf_event_id(leaf: bytes) -> bytes:
    """The event id of an event leaf, read without decoding the rest (a final block's index)."""
    if leaf[:3] == _LEAF_ID_PREFIX and len(leaf) >= 35:
        return leaf[3:35]
    return decode_event_leaf(leaf)[0]


def events_root(events: Sequence[Event]) -> bytes:
    return merkle_root([e.leaf for e in events])


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    prev_hash: bytes  # hash of the previous header; of the genesis for height 1
    time_ms: int
    proposer: int  # index in the validator set in force at this height
    events_root: bytes
    event_count: int
    state_root: bytes
    validators_hash: bytes  # the validator set that signs this block
    #: The set that signs the next block: how a light client follows validator changes.
    next_validators_hash: bytes
    #: The participant register (keys, status, restrictions, parameters) after this block.
    registry_hash: bytes

    def to_wire(self) -> list[Any]:
        return [
            HEADER_VERSION,
            self.chain_id,
            self.height,
            self.prev_hash,
            self.time_ms,
            self.proposer,
            self.events_root,
            self.event_count,
            self.state_root,
            self.validators_hash,
            self.next_validators_hash,
            self.registry_hash,
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> Header:
        if not isinstance(obj, list) or len(obj) != 12 or obj[0] != HEADER_VERSION:
            raise MalformedInput(
                "a header is [1, chain_id, height, prev_hash, time_ms, proposer, "
                "events_root, event_count, state_root, validators_hash, next_validators_hash, "
                "registry_hash]"
            )
        (
            _,
            chain_id,
            height,
            prev,
            time_ms,
            proposer,
            root,
            count,
            state_root,
            vhash,
            nvhash,
            rhash,
        ) = obj
        for name, value in (
            ("height", height),
            ("time_ms", time_ms),
            ("proposer", proposer),
            ("event_count", count),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MalformedInput(f"header {name}: must be a non-negative integer")
        for name, value in (
            ("prev_hash", prev),
            ("events_root", root),
            ("state_root", state_root),
            ("validators_hash", vhash),
            ("next_validators_hash", nvhash),
            ("registry_hash", rhash),
        ):
            if not isinstance(value, bytes) or len(value) != 32:
                raise MalformedInput(f"header {name}: must be 32 bytes")
        if not isinstance(chain_id, str) or height < 1:
            raise MalformedInput("header: bad chain id or height")
        return cls(
            chain_id, height, prev, time_ms, proposer, root, count, state_root, vhash, nvhash, rhash
        )

    @cached_property
    def encoded(self) -> bytes:
        return encode(self.to_wire())

    @cached_property
    def hash(self) -> bytes:
        return tagged_hash(TAG_HEADER, self.encoded)

    @classmethod
    def decode(cls, data: bytes) -> Header:
        return cls.from_wire(decode(data))

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "hash": self.hash.hex(),
            "prev_hash": self.prev_hash.hex(),
            "time_ms": self.time_ms,
            "proposer": self.proposer,
            "events_root": self.events_root.hex(),
            "event_count": self.event_count,
            "state_root": self.state_root.hex(),
            "validators_hash": self.validators_hash.hex(),
            "next_validators_hash": self.next_validators_hash.hex(),
            "registry_hash": self.registry_hash.hex(),
            "encoded": self.encoded.hex(),
        }


@dataclass(frozen=True)
class Block:
    header: Header
    events: tuple[Event, ...]

    def to_wire(self) -> list[Any]:
        return [self.header.to_wire(), [e.encoded for e in self.events]]

    def encode(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes, *, max_events: int = 100_000) -> Block:
        obj = decode(data)
        if not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[1], list):
            raise MalformedInput("a block is [header, events]")
        if len(obj[1]) > max_events:
            raise InvalidBlock(f"a block holds at most {max_events} events")
        header = Header.from_wire(obj[0])
        events = []
        for raw in obj[1]:
            if not isinstance(raw, bytes):
                raise MalformedInput("block events are canonical event encodings")
            events.append(Event.decode(raw))
        block = cls(header, tuple(events))
        block.check_body()
        return block

    def check_body(self) -> None:
        """The header's count and Merkle root describe exactly these events, none repeated."""
        if self.header.event_count != len(self.events):
            raise InvalidBlock("the header's event count does not match the block")
        ids = {e.event_id for e in self.events}
        if len(ids) != len(self.events):
            raise InvalidBlock("an event appears twice in the block")
        if events_root(self.events) != self.header.events_root:
            raise InvalidBlock("the events do not match the header's Merkle root")


def check_link(header: Header, prev: Header | None, genesis_hash: bytes, chain_id: str) -> None:
    """The header follows `prev` (None: the first block, which follows the genesis)."""
    if header.chain_id != chain_id:
        raise InvalidBlock(f"block for chain {header.chain_id!r}, not {chain_id!r}")
    expected_height = 1 if prev is None else prev.height + 1
    if header.height != expected_height:
        raise InvalidBlock(f"expected height {expected_height}, got {header.height}")
    expected_prev = genesis_hash if prev is None else prev.hash
    if header.prev_hash != expected_prev:
        raise InvalidBlock(f"block {header.height} does not link to the previous header")
    if prev is not None and header.time_ms <= prev.time_ms:
        raise InvalidBlock(f"block {header.height}'s time does not move forward")
