"""The audit's state: the fresh state a chain's events imply, and its state tree (StateKeeper),
kept in the audit's process or in a worker process (node/audit_pool.py)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ledger.block import Header
from ledger.chain import Execution
from ledger.genesis import Validator
from ledger.governance import EVIDENCE_MAX_AGE, ProposalRecord, activity
from ledger.records import CertificateRecord
from ledger.statetree import MemoryNodeStore, StateTree, stored_nodes_fault


@dataclass
class FreshState:
    """The state the chain's own events imply, rebuilt in memory from genesis (the audit's, and
    a simulated node's chain: ledger/simulation/ledger_node.py)."""

    records: dict[str, CertificateRecord] = field(default_factory=dict)
    events: set[bytes] = field(default_factory=set)
    nodes: MemoryNodeStore = field(default_factory=MemoryNodeStore)
    proposals: dict[bytes, ProposalRecord] = field(default_factory=dict)
    #: The validators that sign each height from which the set changed (genesis's from 1), and
    #: the last headers: governance's rules read them (live validators, readiness, evidence).
    signing: list[tuple[int, tuple[Validator, ...]]] = field(default_factory=list)
    #: (As far back as any governance rule reads: evidence's age.)
    headers: deque[Header] = field(default_factory=lambda: deque(maxlen=EVIDENCE_MAX_AGE + 1))
    active: dict[str, int] = field(default_factory=dict)
    suspended: dict[str, int] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return self.headers[-1].height if self.headers else 0

    def header(self, height: int) -> Header | None:
        if not self.headers or not 0 <= self.height - height < len(self.headers):
            return None
        return self.headers[len(self.headers) - 1 - (self.height - height)]

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
        self.records.update(execution.records)
        self.events.update(event.event_id for event in execution.block.events)
        self.nodes.apply(execution.tree_writes)
        self.proposals.update(execution.proposals)
        header = execution.header
        self.headers.append(header)
        if execution.next_registry is not None:
            active, suspended = activity(
                execution.block.events,
                execution.register_changes,
                header.height,
                header.time_ms,
                list(execution.next_registry.participants),
            )
            self.active.update(active)
            self.suspended.update(suspended)
        if execution.next_registry is not None and (
            header.next_validators_hash != header.validators_hash
        ):
            self.signing.append((header.height + 1, execution.next_registry.validators))


class StateKeeper:
    """The state tree a chain's events imply, kept in memory from genesis: each block's changed
    leaves go in and its state root comes out; at the end, whether the stored nodes are exactly
    the tree's. Pure: run in the audit's process (`LocalStateRoots`) or in a worker process
    (node/audit_pool.py), where it takes the tree's work off the process that re-executes."""

    def __init__(self) -> None:
        self.nodes = MemoryNodeStore()
        self.root = bytes(32)

    def update(self, leaves: dict[bytes, bytes]) -> bytes:
        """Apply one block's leaves (state key -> leaf value hash) and return the new root."""
        self.root, writes = StateTree(self.nodes, self.root).update(leaves)
        self.nodes.apply(writes)
        return self.root

    def nodes_fault(self, stored: Iterable[tuple[bytes, bytes]]) -> str | None:
        """Why the stored (node hash, node) entries, in the store's order, are not this tree's
        nodes; None when they are exactly those (also in the older stored form, leaves on their
        own: statetree's check)."""
        return stored_nodes_fault(self.nodes.nodes, stored)


class StateRoots(Protocol):
    """Where the audit keeps its state tree (a StateKeeper): blocks' leaves go in, in order, and
    their roots come back in the same order, as many as went in, when asked (node/audit_pool.py
    keeps it in a worker process, so the roots come back while the next blocks re-execute)."""

    def submit(self, leaves: dict[bytes, bytes]) -> None: ...

    def next_root(self) -> bytes: ...

    def nodes_fault(self, stored: Iterable[tuple[bytes, bytes]]) -> str | None: ...


class LocalStateRoots:
    """StateRoots in this process: each block's root worked out when its leaves are submitted."""

    def __init__(self) -> None:
        self.keeper = StateKeeper()
        self._roots: deque[bytes] = deque()

    def submit(self, leaves: dict[bytes, bytes]) -> None:
        self._roots.append(self.keeper.update(leaves))

    def next_root(self) -> bytes:
        return self._roots.popleft()

    def nodes_fault(self, stored: Iterable[tuple[bytes, bytes]]) -> str | None:
        return self.keeper.nodes_fault(stored)
