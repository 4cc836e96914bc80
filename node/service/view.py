"""What every part of the node reads in common: who it is, its store, and the register in force."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ledger.chain import Execution
from ledger.errors import RecoveryHeadMismatch
from ledger.events import Event, sign_event
from ledger.genesis import Genesis
from ledger.governance import (
    NODE_PREFIX,
    PASSED,
    RecoveryBody,
    SignedRecovery,
    check_recovery,
    next_registry,
)
from ledger.keys import Signer
from ledger.registry import EventContext, Registry
from ledger.store import Store
from node.clock import now_ms
from node.peers import Peer
from node.readcache import CachedReader


class PeerLink(Protocol):
    """The node's signed requests to its peers, as the parts use them (node/peers.py)."""

    def send(
        self, peer: Peer, path: str, body: bytes, done: Callable[[bool], None] | None = None
    ) -> None:
        """Post without waiting; `done` hears whether the peer took it."""
        ...

    async def get(self, peer: Peer, path: str, max_bytes: int) -> bytes | None:
        """A 200 answer of at most `max_bytes`, or None."""
        ...


class ChainView:
    """The node's identity, its committed chain and the register in force at the next height.

    Only the consensus driver's commit moves it on (`committed`); the other parts read it.
    """

    def __init__(self, chain_id: str, genesis: Genesis, node_key: Signer, store: Store) -> None:
        self.chain_id = chain_id
        self.genesis = genesis
        self.node_key = node_key
        self.store = store
        self.reader = CachedReader(store)
        # The register in force at the next height: the store's, or genesis's before block 1.
        self.registry = store.registry() or Registry.from_genesis(genesis)
        #: An emergency recovery of the next height this node was given (docs/emergency.md):
        #: the next block is judged by the register it makes, and records it as its first event.
        self.recovery: SignedRecovery | None = None
        self._recovery_event: Event | None = None

    def recover(self, signed: SignedRecovery) -> None:
        """Judge the next block by the register `signed` makes of the one in force (every check
        of the recovery against this node's final head, or the refusal)."""
        head = self.store.head
        if head is None:
            raise RecoveryHeadMismatch("a recovery continues a chain: this node has no final block")
        self.registry = check_recovery(
            signed, self.registry, self.chain_id, head.height + 1, head.hash
        )
        self.recovery = signed
        self._recovery_event = None

    def recovery_event(self, height: int) -> Event | None:
        """The event recording the recovery in the block at `height`, signed once by this node
        (None when no recovery is due then, or when this node is no validator of it)."""
        signed = self.recovery
        if signed is None or signed.document.height != height:
            return None
        if self._recovery_event is None:
            mine = [v for v in self.registry.validators if v.node_key == self.own_key]
            if not mine:
                return None
            body = RecoveryBody(self.own_key, signed)
            signer = f"{NODE_PREFIX}{mine[0].participant}"
            self._recovery_event = sign_event(self.chain_id, signer, body, self.node_key, now_ms())
        return self._recovery_event

    def committed(self, execution: Execution) -> bool:
        """A block was written: the caches learn it and its register takes force. True when the
        register changed (keys, members or restrictions may differ from now on)."""
        self.reader.committed(execution)
        previous = self.registry
        if execution.next_registry is not None:
            self.registry = execution.next_registry  # in force from the next height
        if self.recovery is not None and execution.header.height >= self.recovery.document.height:
            self.recovery = self._recovery_event = None  # recorded: the chain goes on from it
        return self.registry.hash != previous.hash

    # -- who is who ----------------------------------------------------------------------------
    @property
    def own_key(self) -> bytes:
        return self.node_key.public_bytes

    @property
    def validator_keys(self) -> list[bytes]:
        return [v.node_key for v in self.registry.validators]

    @property
    def is_validator(self) -> bool:
        return self.own_key in self.validator_keys

    @property
    def is_pending_validator(self) -> bool:
        """Governance added this node to the validators; it enters the set once it attests."""
        return any(v.node_key == self.own_key for v in self.registry.pending_validators)

    @property
    def peers(self) -> list[Peer]:
        return [
            Peer(v.node_key, v.address, v.participant)
            for v in self.registry.validators
            if v.node_key != self.own_key
        ]

    @property
    def observers(self) -> list[Peer]:
        """Participants' nodes that do not validate: told of each final block, so they sync."""
        validators = set(self.validator_keys) | {self.own_key}
        return [
            Peer(p.node_key, p.address, p.code)
            for p in self.registry.participants.values()
            if p.active and p.node_key is not None and p.address and p.node_key not in validators
        ]

    @property
    def peer_keys(self) -> set[bytes]:
        """Node keys allowed on /peer/*: the validators' (in the set or waiting to enter it) and
        every active participant's node."""
        keys = set(self.validator_keys)
        keys.update(v.node_key for v in self.registry.pending_validators)
        keys.update(
            p.node_key
            for p in self.registry.participants.values()
            if p.active and p.node_key is not None
        )
        return keys

    # -- the next height -----------------------------------------------------------------------
    def change_waiting(self) -> bool:
        """A passed governance change waits for its effective height."""
        return any(r.status == PASSED for r in self.registry.proposals.values())

    def expected_next_validators(self) -> list[bytes]:
        """The validators expected at the height after the current one: the register in force
        with the passed changes due then. (Changes take effect at least two blocks after their
        proposal and voting closes before, so the current block cannot add to them.)"""
        registry = next_registry(self.registry, {}, {}, self.store.height + 1).registry
        return [v.node_key for v in registry.validators]

    def next_block_time_ms(self) -> int:
        """The time of the block this node would build now (as build_block sets it): events are
        admitted by the rules that block applies, its date included."""
        head = self.store.head
        return now_ms() if head is None else max(now_ms(), head.time_ms + 1)

    def next_context(self) -> EventContext:
        """The context an event is checked in now: the next height, at its block's time."""
        return EventContext(self.store.height + 1, self.next_block_time_ms(), self.chain_id)
