"""The real ledger under the simulated cores: the genesis, and what each node keeps of the chain."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import x25519

from ledger.block import Header
from ledger.chain import Execution
from ledger.events import Event
from ledger.genesis import Genesis, Parameters, Participant, Validator
from ledger.governance import ProposalRecord, activity
from ledger.keys import EncryptionKey, SigningKey
from ledger.records import CertificateRecord
from ledger.registry import Registry
from ledger.simulation.config import CHAIN_ID
from ledger.statetree import MemoryNodeStore

#: The simulated clock's zero, 2026-06-01T00:00:00Z: block and event times are this plus the
#: simulation's milliseconds (there is no real clock in a run).
BASE_TIME_MS = 1_780_272_000_000
GENESIS_TIME = "2026-06-01T00:00:00Z"
#: Participant codes (ISO 3166-1 countries) by node index: node i is participant CODES[i]'s node.
CODES = ("BE", "AE", "IN", "RU", "ZA", "BW", "CA", "AU", "CN", "IL", "NA", "AO")


def _seed(*parts: object) -> bytes:
    return hashlib.sha256(repr(("kpledger simulation", *parts)).encode()).digest()


def authority_key(index: int) -> SigningKey:
    """The authority key of participant CODES[index]: it signs that participant's proposals and votes."""
    return SigningKey.from_seed(_seed("authority", index))


def _encryption_public(index: int) -> bytes:
    key = x25519.X25519PrivateKey.from_private_bytes(_seed("encryption", index))
    return EncryptionKey(key).public_bytes


def address(index: int) -> str:
    return f"http://127.0.0.1:{7800 + index}"


def make_genesis(node_keys: Sequence[SigningKey], validators: int) -> Genesis:
    """One participant per node (its node key registered), the first `validators` validating."""
    participants = tuple(
        Participant(
            code=CODES[i],
            name=f"{CODES[i]} KP authority",
            countries=(CODES[i],),
            authority_key=authority_key(i).public_bytes,
            encryption_key=_encryption_public(i),
            node_key=key.public_bytes,
            address=address(i),
        )
        for i, key in enumerate(node_keys)
    )
    return Genesis(
        chain_id=CHAIN_ID,
        genesis_time=GENESIS_TIME,
        participants=participants,
        validators=tuple(
            Validator(CODES[i], node_keys[i].public_bytes, address(i)) for i in range(validators)
        ),
        parameters=Parameters(),
    )


def keys_of(validators: Sequence[Validator]) -> tuple[bytes, ...]:
    """The node keys of a validator set, in its order: what the consensus core is given."""
    return tuple(v.node_key for v in validators)


@dataclass
class ChainState:
    """One node's store, in memory: what it keeps across a crash, as its disk would.

    It offers what block execution and the governance rules read of a store (certificates,
    events, state tree nodes, closed proposals, headers, the set in force at each height, the
    members' last activity), kept from each executed block as the store and the audit keep it.
    """

    registry: Registry
    records: dict[str, CertificateRecord] = field(default_factory=dict)
    events: set[bytes] = field(default_factory=set)
    nodes: MemoryNodeStore = field(default_factory=MemoryNodeStore)
    proposals: dict[bytes, ProposalRecord] = field(default_factory=dict)
    #: (first height, validators) for each set, genesis's from 1.
    signing: list[tuple[int, tuple[Validator, ...]]] = field(default_factory=list)
    headers: list[Header] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    suspended: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> ChainState:
        return cls(Registry.from_genesis(genesis), signing=[(1, genesis.validators)])

    @property
    def height(self) -> int:
        return len(self.headers)

    @property
    def head(self) -> Header | None:
        return self.headers[-1] if self.headers else None

    def header(self, height: int) -> Header | None:
        return self.headers[height - 1] if 1 <= height <= len(self.headers) else None

    def last_active(self, code: str) -> int | None:
        return self.active.get(code)

    def last_suspended(self, code: str) -> int | None:
        return self.suspended.get(code)

    def validators_at(self, height: int) -> tuple[Validator, ...]:
        found: tuple[Validator, ...] = ()
        for first, validators in self.signing:
            if first > height:
                break
            found = validators
        return found

    def get_certificate(self, number: str) -> CertificateRecord | None:
        return self.records.get(number)

    def has_event(self, event_id: bytes) -> bool:
        return event_id in self.events

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self.nodes.get_node(node_hash)

    def get_proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        return self.proposals.get(proposal_id)

    def apply(self, execution: Execution) -> None:
        """Store a final block's execution (the store's one batch) and enter its register."""
        registry = execution.next_registry
        if registry is None:
            raise ValueError("an execution of block building or validation has its next register")
        header = execution.header
        self.records.update(execution.records)
        self.events.update(event.event_id for event in execution.block.events)
        self.nodes.apply(execution.tree_writes)
        self.proposals.update(execution.proposals)
        self.headers.append(header)
        active, suspended = activity(
            execution.block.events,
            execution.register_changes,
            header.height,
            header.time_ms,
            list(registry.participants),
        )
        self.active.update(active)
        self.suspended.update(suspended)
        if header.next_validators_hash != header.validators_hash:
            self.signing.append((header.height + 1, registry.validators))
        self.registry = registry


@dataclass
class LedgerNode:
    """The ledger half of a simulated node: its chain (durable) and its mempool (durable too, as
    the node's pending family is), and the blocks it has judged (memory: lost in a crash)."""

    chain: ChainState
    mempool: dict[bytes, Event] = field(default_factory=dict)
    #: Block value -> its execution, or None when the block does not execute.
    judged: dict[bytes, Execution | None] = field(default_factory=dict)
