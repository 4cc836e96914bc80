"""The real ledger under the simulated cores: the genesis, and what each node keeps of the chain."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import x25519

from ledger.audit import FreshState
from ledger.block import Header
from ledger.chain import Execution
from ledger.events import Event
from ledger.genesis import Genesis, Parameters, Participant, Validator
from ledger.keys import EncryptionKey, SigningKey
from ledger.registry import Registry
from ledger.simulation.config import CHAIN_ID

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
class ChainState(FreshState):
    """One node's store, in memory: what it keeps across a crash, as its disk would.

    The audit's rebuilt state (what block execution and the governance rules read of a store),
    with every header kept rather than the last few, and the register in force.
    """

    registry: Registry = field(kw_only=True)
    headers: deque[Header] = field(default_factory=deque)

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> ChainState:
        return cls(registry=Registry.from_genesis(genesis), signing=[(1, genesis.validators)])

    @property
    def head(self) -> Header | None:
        return self.headers[-1] if self.headers else None

    def apply(self, execution: Execution) -> None:
        """Store a final block's execution (the store's one batch) and enter its register."""
        registry = execution.next_registry
        if registry is None:
            raise ValueError("an execution of block building or validation has its next register")
        super().apply(execution)
        self.registry = registry


@dataclass
class LedgerNode:
    """The ledger half of a simulated node: its chain (durable) and its mempool (durable too, as
    the node's pending family is), and the blocks it has judged (memory: lost in a crash)."""

    chain: ChainState
    mempool: dict[bytes, Event] = field(default_factory=dict)
    #: Block value -> its execution, or None when the block does not execute.
    judged: dict[bytes, Execution | None] = field(default_factory=dict)
