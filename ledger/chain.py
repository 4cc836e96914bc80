"""Executing a block: applying its events to the state, and the header that results."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.block import Block, Header, check_link, events_root
from ledger.errors import InvalidBlock, LedgerError
from ledger.events import Event
from ledger.genesis import validators_hash
from ledger.governance import ProposalRecord, RegisterChange, next_registry
from ledger.records import CertificateRecord, StateReader, state_key
from ledger.registry import EventContext, Registry
from ledger.state import Overlay
from ledger.statetree import NodeReader, StateTree


class ChainReader(StateReader, NodeReader, Protocol):
    """What block execution reads: committed certificates, events and state tree nodes."""


#: A block's state tree update: from the previous root and the leaves its events changed (state
#: key -> leaf value hash), the new root and the tree's store writes. By default the tree the
#: reader holds; the audit keeps its tree elsewhere and checks the root there (ledger/audit.py).
TreeUpdate = Callable[[bytes, dict[bytes, bytes]], tuple[bytes, dict[bytes, bytes | None]]]


@dataclass
class Execution:
    """A block applied to the state but not yet stored: everything the store must write."""

    block: Block
    records: dict[str, CertificateRecord]
    tree_writes: dict[bytes, bytes | None]
    refused: list[tuple[Event, LedgerError]] = field(default_factory=list)
    #: The records as they were before this block (None for new ones), for index upkeep.
    previous: dict[str, CertificateRecord | None] = field(default_factory=dict)
    #: The register in force at the next height (None only for hand-made executions in tests).
    next_registry: Registry | None = None
    #: The register the block was judged by: the one in force at its height, or the one an
    #: emergency recovery the block records made of it (ledger/governance/recovery.py).
    judged_by: Registry | None = None
    #: Governance: proposal records this block changed, and the register changes it brought in.
    proposals: dict[bytes, ProposalRecord] = field(default_factory=dict)
    register_changes: list[RegisterChange] = field(default_factory=list)

    @property
    def header(self) -> Header:
        return self.block.header


def _due(registry: Registry, height: int) -> bool:
    """A passed change takes effect with this block (its liveness rules read the headers)."""
    return any(r.effective_height <= height + 1 for r in registry.proposals.values())


def _run(
    reader: ChainReader,
    registry: Registry,
    prev: Header | None,
    genesis_hash: bytes,
    events: Iterable[Event],
    *,
    chain_id: str,
    height: int,
    time_ms: int,
    proposer: int,
    strict: bool,
    verified: frozenset[bytes] | set[bytes],
    tree_update: TreeUpdate | None = None,
) -> Execution:
    ctx = EventContext(height=height, time_ms=time_ms, chain_id=chain_id)
    overlay = Overlay(reader)
    refused: list[tuple[Event, LedgerError]] = []
    for event in events:
        try:
            overlay.apply(registry, event, ctx, verified=event.event_id in verified)
        except LedgerError as exc:
            if strict:
                raise InvalidBlock(
                    f"block {height} holds an event the ledger refuses "
                    f"({event.event_id.hex()[:16]}: {exc.code}: {exc.message})"
                ) from exc
            refused.append((event, exc))
    if prev is not None and registry.hash != prev.registry_hash and not overlay.recovered:
        # The parent committed to the register in force here: only a recovery the block records
        # (checked when applied, as its first event) lets the block be judged by another.
        raise InvalidBlock(
            f"block {height} is judged by another register than block {prev.height} committed "
            "to, and records no recovery"
        )
    prev_root = prev.state_root if prev is not None else bytes(32)
    leaves = {
        state_key(number): record.leaf_value() for number, record in overlay.certificates.items()
    }
    if tree_update is None:
        new_root, writes = StateTree(reader, prev_root).update(leaves)
    else:
        new_root, writes = tree_update(prev_root, leaves)
    accepted = tuple(overlay.order)
    # Registry changes happen at block boundaries: this block yields the register of height + 1.
    transition = next_registry(
        registry,
        overlay.proposals,
        overlay.rotations,
        height,
        overlay.ready,
        overlay.live_validators(registry, height)
        if overlay.ready or _due(registry, height)
        else None,
        overlay.jailed,
    )
    header = Header(
        chain_id=chain_id,
        height=height,
        prev_hash=prev.hash if prev is not None else genesis_hash,
        time_ms=time_ms,
        proposer=proposer,
        events_root=events_root(accepted),
        event_count=len(accepted),
        state_root=new_root,
        validators_hash=validators_hash(registry.validators),
        next_validators_hash=validators_hash(transition.registry.validators),
        registry_hash=transition.registry.hash,
    )
    previous = {number: reader.get_certificate(number) for number in overlay.certificates}
    return Execution(
        Block(header, accepted),
        dict(overlay.certificates),
        writes,
        refused,
        previous,
        next_registry=transition.registry,
        judged_by=registry,
        proposals=transition.proposals,
        register_changes=transition.changes,
    )


def build_block(
    reader: ChainReader,
    registry: Registry,
    genesis_hash: bytes,
    prev: Header | None,
    candidates: Sequence[Event],
    *,
    chain_id: str,
    time_ms: int,
    proposer: int,
    verified: frozenset[bytes] | set[bytes] = frozenset(),
) -> Execution:
    """Propose: apply what applies of `candidates` in order, drop (and report) what the ledger refuses."""
    if prev is not None and time_ms <= prev.time_ms:
        time_ms = prev.time_ms + 1  # block times strictly increase, whatever the local clock says
    height = 1 if prev is None else prev.height + 1
    return _run(
        reader,
        registry,
        prev,
        genesis_hash,
        candidates,
        chain_id=chain_id,
        height=height,
        time_ms=time_ms,
        proposer=proposer,
        strict=False,
        verified=verified,
    )


def check_size(block: Block, registry: Registry) -> None:
    """The block keeps to the parameters in force: so many events, so many bytes of them.

    A proposer takes events up to both limits (Mempool.take); a block over either is refused, so
    that every final block fits the bounds that catch-up reads it with (node/peers.py).
    """
    params = registry.parameters
    if len(block.events) > params.max_block_events:
        raise InvalidBlock(
            f"block {block.header.height} holds {len(block.events)} events; "
            f"at most {params.max_block_events} are allowed"
        )
    size = sum(len(e.encoded) for e in block.events)
    if size > params.max_block_bytes:
        raise InvalidBlock(
            f"block {block.header.height}'s events take {size} bytes; "
            f"at most {params.max_block_bytes} are allowed"
        )


def state_root_mismatch(height: int) -> InvalidBlock:
    """The refusal of a block whose header's state root is not the one its events make."""
    return InvalidBlock(f"block {height}'s state root does not match its events")


def validate_block(
    reader: ChainReader,
    registry: Registry,
    genesis_hash: bytes,
    prev: Header | None,
    block: Block,
    *,
    verified: frozenset[bytes] | set[bytes] = frozenset(),
    chain_id: str | None = None,
    tree_update: TreeUpdate | None = None,
) -> Execution:
    """Re-execute a received block; it is valid only if every event applies and the header matches.

    `chain_id` is this network's: pass it. Without it the chain of `prev` is taken, and block 1
    would be judged by its own header's claim (whose events would then be those of another chain).
    `tree_update` replaces the reader's state tree: the state root is then the one it returns
    (the audit's returns the header's own, and checks it against its tree in another process).
    """
    header = block.header
    if chain_id is None:
        chain_id = prev.chain_id if prev is not None else header.chain_id
    check_link(header, prev, genesis_hash, chain_id)
    block.check_body()
    check_size(block, registry)
    if header.proposer >= len(registry.validators):
        raise InvalidBlock(f"proposer index {header.proposer} is not a validator")
    if header.validators_hash != validators_hash(registry.validators):
        raise InvalidBlock("the header names a different validator set than the one in force")
    execution = _run(
        reader,
        registry,
        prev,
        genesis_hash,
        block.events,
        chain_id=header.chain_id,
        height=header.height,
        time_ms=header.time_ms,
        proposer=header.proposer,
        strict=True,
        verified=verified,
        tree_update=tree_update,
    )
    expected = execution.block.header
    if expected.state_root != header.state_root:
        raise state_root_mismatch(header.height)
    if expected.hash != header.hash:
        wrong = [
            name
            for name in ("next_validators_hash", "registry_hash", "events_root", "event_count")
            if getattr(expected, name) != getattr(header, name)
        ]
        raise InvalidBlock(f"block {header.height}'s header does not match its execution: {wrong}")
    execution.block = block
    return execution
