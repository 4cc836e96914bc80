"""Certificate records and state tree nodes cached in front of the store, kept by the commits."""

from __future__ import annotations

from ledger.block import Header
from ledger.chain import Execution
from ledger.genesis import Validator
from ledger.governance import ProposalRecord
from ledger.records import CertificateRecord
from ledger.statetree import NodeCache, StateNode
from ledger.store import Store

#: Entries kept of each kind; past it that cache starts again empty (cheaper than an LRU).
DEFAULT_SIZE = 200_000


class CachedReader:
    """The committed state as block execution reads it (ledger.chain.ChainReader).

    An event's certificate is read when the event is admitted, when its block is built or
    checked, and once more for the indexes at commit: each read from LevelDB decodes and
    re-checks the record. Only the node writes the store, always through `committed`, so a
    cached answer (absence included) stays true until then. State tree nodes are named by their
    hash, so a cached one is always right; every block and every public proof reads the same
    upper levels again. They are kept as checked bytes (ledger.statetree.NodeCache): a node
    is hashed against its name on its first read from the store, not on every read, and the
    nodes this node's own commits made enter without being hashed again.
    """

    def __init__(self, store: Store, size: int = DEFAULT_SIZE) -> None:
        self.store = store
        self.size = size
        self._records: dict[str, CertificateRecord | None] = {}
        self._nodes = NodeCache(store, size)

    def get_certificate(self, number: str) -> CertificateRecord | None:
        try:
            return self._records[number]
        except KeyError:
            pass
        record = self.store.get_certificate(number)
        if len(self._records) >= self.size:
            self._records.clear()
        self._records[number] = record
        return record

    def has_event(self, event_id: bytes) -> bool:
        return self.store.has_event(event_id)

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self._nodes.get_node(node_hash)

    def load_node(self, node_hash: bytes) -> StateNode:
        """The node named `node_hash`, decoded and checked (ledger.statetree.NodeLoader)."""
        return self._nodes.load_node(node_hash)

    def header(self, height: int) -> Header | None:
        """Final headers: the liveness of validators and readiness attestations read them."""
        return self.store.header(height)

    def last_active(self, code: str) -> int | None:
        return self.store.last_active(code)

    def last_suspended(self, code: str) -> int | None:
        return self.store.last_suspended(code)

    @property
    def height(self) -> int:
        return self.store.height

    def validators_at(self, height: int) -> tuple[Validator, ...]:
        return self.store.validators_at(height)

    def get_proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        """Closed proposals too, so a late vote hears proposal_expired, not unknown_proposal."""
        return self.store.get_proposal(proposal_id)

    def committed(self, execution: Execution) -> None:
        """The store now holds `execution`'s block: its records replace the cached ones."""
        self._records.update(execution.records)
        self._nodes.created(execution.tree_writes)
