"""Typed readers of what the store holds: blocks, events, certificates, state nodes, indexes,
statistics, governance and the node's own notes, one family each, over any KV backend.

`entry` and `entries` give the stored bytes as they are, for the audit and the scrub, which
check them against what vouches for them; the other methods decode what the store itself wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import msgpack

from ledger.block import Header
from ledger.encoding import decode
from ledger.errors import LedgerError, StoreCorrupt
from ledger.events import Event
from ledger.genesis import Validator
from ledger.governance import ProposalRecord, RegisterChange
from ledger.records import CertificateRecord
from ledger.registry import Registry
from ledger.stats import Figures, PublicCell, Published, Quarter, StatKey
from ledger.store import keys
from ledger.store.kv import KV


@dataclass(frozen=True)
class StoredEvent:
    event: Event
    height: int
    index: int


class BlockReader:
    """Final blocks: the head pointer, each block's header and event leaves, commit
    certificates and the index of header hashes."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def head_entry(self) -> bytes | None:
        """The stored head pointer, encode([height, header hash])."""
        return self._kv.get(keys.K_HEAD)

    def head_height(self) -> int | None:
        raw = self.head_entry()
        return None if raw is None else int(decode(raw)[0])

    def entry(self, height: int) -> bytes | None:
        """Block `height` as stored: encode([header bytes, [event leaves]])."""
        return self._kv.get(keys.block(height))

    def header(self, height: int) -> Header | None:
        """The final header at `height`, checked against the hash index that names it."""
        raw = self.entry(height)
        if raw is None:
            return None
        try:
            header = Header.decode(decode(raw)[0])
        except (LedgerError, ValueError, TypeError, IndexError) as exc:
            raise StoreCorrupt(f"the stored header of block {height} does not decode") from exc
        if header.height != height or not self.indexed_at(header.hash, height):
            raise StoreCorrupt(
                f"the stored header of block {height} does not hash to the hash its index names"
            )
        return header

    def indexed_at(self, header_hash: bytes, height: int) -> bool:
        """Whether the hash index names exactly `height` for `header_hash`."""
        return self._kv.get(keys.header_hash(header_hash)) == keys.height(height)

    def height_of(self, header_hash: bytes) -> int | None:
        raw = self._kv.get(keys.header_hash(header_hash))
        return None if raw is None else keys.read_height(raw)

    def event_leaves(self, height: int) -> list[bytes]:
        """The Merkle leaves of a block's events (each encode([event_id, type, number]))."""
        raw = self.entry(height)
        if raw is None:
            return []
        leaves: list[bytes] = decode(raw)[1]
        return leaves

    def commit_certificate_bytes(self, height: int) -> bytes | None:
        return self._kv.get(keys.commit(height))

    def hash_index_count(self) -> int:
        """How many header hashes the hash index holds (one per final block)."""
        return sum(1 for _ in self._kv.keys(keys.P_HASH))


class EventReader:
    """Final events by id, each with the height and position of its block."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def entry(self, event_id: bytes) -> bytes | None:
        """The event as stored: encode([height, index, event bytes])."""
        return self._kv.get(keys.event(event_id))

    def get(self, event_id: bytes) -> StoredEvent | None:
        raw = self.entry(event_id)
        if raw is None:
            return None
        height, index, encoded = decode(raw)
        return StoredEvent(Event.decode(encoded), height, index)

    def has(self, event_id: bytes) -> bool:
        return self.entry(event_id) is not None

    def issue_commitment(self, event_id: bytes) -> bytes | None:
        """The identity commitment of a stored issue event, without parsing the whole event.

        The public proof needs only this; the store wrote these bytes itself from a checked event.
        """
        raw = self.entry(event_id)
        if raw is None:
            return None
        signed = msgpack.unpackb(msgpack.unpackb(raw)[2])
        commitment = signed[0][5][1][0]  # [unsigned, sig] -> body -> [facts, sealed] -> commitment
        return commitment if isinstance(commitment, bytes) else None

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """(event id, stored entry) of every final event, in id order."""
        for key, raw in self._kv.items(keys.P_EVENT):
            yield keys.after(key, keys.P_EVENT), raw

    def count(self) -> int:
        return sum(1 for _ in self._kv.keys(keys.P_EVENT))


class CertificateReader:
    """Certificate records by number."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def get(self, number: str) -> CertificateRecord | None:
        raw = self._kv.get(keys.certificate(number))
        if raw is None:
            return None
        # The store wrote these bytes from a checked record: no canonical re-encoding check on
        # every read (the audit compares the stored bytes with what the events imply).
        return CertificateRecord.from_wire(msgpack.unpackb(raw))

    def entries(self) -> Iterator[tuple[str, bytes]]:
        """(number, stored record bytes) of every record, in number order."""
        for key, raw in self._kv.items(keys.P_CERT):
            yield keys.after(key, keys.P_CERT).decode("utf-8", "replace"), raw

    def records(self) -> Iterator[CertificateRecord]:
        for _, raw in self._kv.items(keys.P_CERT):
            yield CertificateRecord.decode(raw)


class StateNodeReader:
    """The state tree's nodes by hash (a statetree.NodeReader)."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self._kv.get(keys.state_node(node_hash))

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """(node hash, node) of every stored node."""
        for key, node in self._kv.items(keys.P_NODE):
            yield keys.after(key, keys.P_NODE), node


class IndexReader:
    """The certificate indexes (keys.index_keys): whole keys, their values empty."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """(whole key, value) of every index entry: the audit compares both."""
        return self._kv.items(keys.P_IDX)

    def keys(self) -> Iterator[bytes]:
        return self._kv.keys(keys.P_IDX)

    def walk(self, prefix: bytes, start: bytes) -> Iterator[tuple[str, str]]:
        """(issued_on, number) of `prefix`'s index from the entry `start` on, in order."""
        stop = prefix[:-1] + bytes([prefix[-1] + 1])
        for key in self._kv.keys(start=start, stop=stop):
            issued, number = keys.after(key, prefix).split(b"\x00", 1)
            yield issued.decode(), number.decode()


class StatisticsReader:
    """The statistics aggregates per block, and the public statistics as published."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def stat(self, key: StatKey) -> Figures:
        raw = self._kv.get(keys.stat(key))
        return Figures(*decode(raw)) if raw is not None else Figures()

    def stats(self, year: int, quarter: int | None = None) -> list[tuple[StatKey, Figures]]:
        """The statistics of a year or one quarter, from the aggregates kept per block."""
        return [
            (StatKey.decode(keys.after(key, keys.P_STATS)), Figures(*decode(value)))
            for key, value in self._kv.items(keys.stats_prefix(year, quarter))
        ]

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """(whole key, value) of every aggregate."""
        return self._kv.items(keys.P_STATS)

    def public_entries(self) -> Iterator[tuple[bytes, bytes]]:
        """(whole key, value) of everything the public statistics keep."""
        return self._kv.items(keys.P_PUB)

    def touch_count(self, quarter: Quarter, cell: PublicCell) -> int:
        raw = self._kv.get(keys.public_touch(quarter, cell))
        return int(decode(raw)) if raw is not None else 0

    def touch_counts(self, quarter: Quarter) -> dict[tuple[Quarter, PublicCell], int]:
        return {
            PublicCell.decode(keys.after(key, keys.P_PUB_TOUCH)): int(decode(raw))
            for key, raw in self._kv.items(keys.public_touches(quarter))
        }

    def dirty(self) -> set[Quarter]:
        """The quarters changed since their last publication."""
        return {
            Quarter.from_code(int(keys.after(key, keys.P_PUB_DIRTY)))
            for key in self._kv.keys(keys.P_PUB_DIRTY)
        }

    def published(self, quarter: Quarter) -> dict[PublicCell, Published]:
        """A published quarter's public cells as they were last published (empty if none)."""
        return {
            PublicCell.decode(keys.after(key, keys.P_PUB_CELL))[1]: Published.from_wire(decode(raw))
            for key, raw in self._kv.items(keys.public_cells(quarter))
        }

    def publications(self) -> list[tuple[int, Quarter | None, Quarter, int]]:
        """Every publication: (height, last quarter published before, last after, block time)."""
        out = []
        for key, raw in self._kv.items(keys.P_PUB_AT):
            before, after, time_ms = decode(raw)
            out.append(
                (
                    keys.read_height(keys.after(key, keys.P_PUB_AT)),
                    Quarter.from_code(before) if before else None,
                    Quarter.from_code(after),
                    time_ms,
                )
            )
        return out

    def last_published(self) -> Quarter | None:
        """The latest quarter the public statistics cover (None before the first publication)."""
        for _, raw in self._kv.items(keys.P_PUB_AT, reverse=True):
            return Quarter.from_code(decode(raw)[1])
        return None


class GovernanceReader:
    """The register in force, proposals and their schedule, validator sets, the register's
    history, and each participant's last activity and suspension."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """(whole key, value) of everything governance keeps: the audit compares all of it."""
        return self._kv.items(keys.P_GOV)

    def registry_entry(self) -> bytes | None:
        """The register in force at the next height, as stored (None before block 1)."""
        return self._kv.get(keys.K_REGISTRY)

    def registry(self) -> Registry | None:
        raw = self.registry_entry()
        return None if raw is None else Registry.from_wire(decode(raw))

    def proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        raw = self._kv.get(keys.proposal(proposal_id))
        return None if raw is None else ProposalRecord.from_wire(decode(raw))

    def proposal_entries(self) -> Iterator[tuple[bytes, bytes]]:
        """(proposal id, stored record) of every proposal, in id order."""
        for key, raw in self._kv.items(keys.P_PROPOSAL):
            yield keys.after(key, keys.P_PROPOSAL), raw

    def proposals(self) -> list[ProposalRecord]:
        """Every proposal ever recorded, in the order they were proposed."""
        found = [ProposalRecord.from_wire(decode(raw)) for _, raw in self.proposal_entries()]
        return sorted(found, key=lambda r: (r.proposed_height, r.proposal_id))

    def scheduled(self) -> list[tuple[int, bytes]]:
        """(effective height, proposal id) of the proposals still open or waiting to take effect."""
        out = []
        for key in self._kv.keys(keys.P_SCHEDULE):
            rest = keys.after(key, keys.P_SCHEDULE)
            out.append((keys.read_height(rest), rest[8:]))
        return out

    def validator_sets(self) -> list[tuple[int, tuple[Validator, ...]]]:
        """(first height in force, validators) of every set after genesis's, in height order."""
        return [
            (
                keys.read_height(keys.after(key, keys.P_VALIDATORS)),
                tuple(Validator.from_wire(v) for v in decode(raw)),
            )
            for key, raw in self._kv.items(keys.P_VALIDATORS)
        ]

    def register_history(self) -> list[tuple[int, list[RegisterChange]]]:
        """(height in force, changes) of every change to the register, in height order."""
        return [
            (
                keys.read_height(keys.after(key, keys.P_REGISTER)),
                [RegisterChange.from_wire(c) for c in decode(raw)],
            )
            for key, raw in self._kv.items(keys.P_REGISTER)
        ]

    def last_active(self, code: str) -> int | None:
        raw = self._kv.get(keys.active(code))
        return None if raw is None else int(decode(raw))

    def last_suspended(self, code: str) -> int | None:
        raw = self._kv.get(keys.suspended(code))
        return None if raw is None else int(decode(raw))


class LocalReader:
    """This node's own notes, not part of the chain: the signer state, refusals, evidence of
    equivocation, and the pending family (events accepted here, not yet final or refused)."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    def signer_state(self) -> bytes | None:
        return self._kv.get(keys.K_SIGNER)

    def signed_blocks(self, at: int) -> list[tuple[bytes, bytes]]:
        """(value, block bytes) of the blocks kept for height `at`, in value order."""
        prefix = keys.signed_blocks(at)
        return [(keys.after(key, prefix), raw) for key, raw in self._kv.items(prefix)]

    def refused(self, event_id: bytes) -> tuple[str, str] | None:
        raw = self._kv.get(keys.refused(event_id))
        if raw is None:
            return None
        code, message = decode(raw)
        return code, message

    def evidence(self) -> list[bytes]:
        return [value for _, value in self._kv.items(keys.P_EVIDENCE)]

    def pending(self) -> Iterator[tuple[bytes, bytes]]:
        """(event id, event bytes) of every event in the pending family, in id order."""
        for key, value in self._kv.items(keys.P_PENDING):
            yield keys.after(key, keys.P_PENDING), value

    def api_tokens(self) -> Iterator[tuple[str, bytes]]:
        """(name, record bytes) of every API token the node has issued, in name order."""
        for key, value in self._kv.items(keys.P_API_TOKEN):
            yield keys.after(key, keys.P_API_TOKEN).decode("utf-8"), value

    def officers(self) -> Iterator[tuple[str, bytes]]:
        """(name, record bytes) of every portal officer account, in name order."""
        for key, value in self._kv.items(keys.P_OFFICER):
            yield keys.after(key, keys.P_OFFICER).decode("utf-8"), value

    def activity(self, *, reverse: bool = False) -> Iterator[tuple[int, bytes]]:
        """(sequence number, entry bytes) of the portal's activity log, oldest first."""
        for key, value in self._kv.items(keys.P_ACTIVITY, reverse=reverse):
            yield keys.read_height(keys.after(key, keys.P_ACTIVITY)), value


@dataclass(frozen=True)
class Readers:
    """One reader per family, over one KV."""

    blocks: BlockReader
    events: EventReader
    certificates: CertificateReader
    state_nodes: StateNodeReader
    indexes: IndexReader
    statistics: StatisticsReader
    governance: GovernanceReader
    local: LocalReader

    @classmethod
    def over(cls, kv: KV) -> Readers:
        return cls(
            BlockReader(kv),
            EventReader(kv),
            CertificateReader(kv),
            StateNodeReader(kv),
            IndexReader(kv),
            StatisticsReader(kv),
            GovernanceReader(kv),
            LocalReader(kv),
        )
