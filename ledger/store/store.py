"""The store: one node's chain over a KV backend, each final block written in one synced batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ledger.block import Block, Header
from ledger.certificate import certificate_digest
from ledger.chain import Execution
from ledger.encoding import decode, encode
from ledger.errors import StoreCorrupt, StoreError
from ledger.events import Event
from ledger.genesis import Genesis, Validator
from ledger.governance import ProposalRecord, RegisterChange
from ledger.records import CertificateRecord, state_key
from ledger.registry import Registry
from ledger.statetree import NodeReader, StateTree
from ledger.stats import Figures, PublicCell, Published, Quarter, StatKey
from ledger.store import keys, writes
from ledger.store.kv import KV, StoreListener
from ledger.store.readers import Readers, StoredEvent


class Store:
    """One node's chain. One block and all it implies is written in one synced batch.

    `Store(path, genesis)` opens (or creates) the LevelDB directory at `path`; with `kv` it runs
    over that backend instead (a MemoryKV in tests), `path` then only naming it in messages.
    Reads go through `readers`, one typed reader per key family.
    """

    def __init__(self, path: Path | str, genesis: Genesis, *, kv: KV | None = None) -> None:
        self.path = Path(path)
        if kv is None:
            # Imported here, not above: proof verification imports this package on machines
            # without plyvel (a verifier needs no database).
            from ledger.store.leveldb import LevelDB

            kv = LevelDB(self.path)
        self.kv: KV = kv
        self.readers = Readers.over(kv)
        self.genesis = genesis
        stored = kv.get(keys.K_GENESIS)
        if stored is None:
            with kv.batch(sync=True) as batch:
                batch.put(keys.K_GENESIS, genesis.hash)
        elif stored != genesis.hash:
            kv.close()
            raise StoreError(
                f"the data directory {self.path} holds a chain of another genesis; "
                "refusing to mix two networks"
            )
        self._head: Header | None = None
        height = self.readers.blocks.head_height()
        if height is not None:
            self._head = self.header(height)
        self._registry: Registry | None = None
        self._validator_sets: list[tuple[int, tuple[Validator, ...]]] | None = None

    def close(self) -> None:
        if not self.kv.closed:
            self.kv.close()

    @property
    def listener(self) -> StoreListener | None:
        """Told of every corruption and failed write the backend meets (the node's health)."""
        return self.kv.listener

    @listener.setter
    def listener(self, listener: StoreListener | None) -> None:
        self.kv.listener = listener

    def check_files(self) -> list[str]:
        """What is wrong with the backend's own files, read directly (empty: nothing)."""
        return self.kv.check_files()

    def compact(self) -> None:
        """Take overwritten and deleted entries off the disk (`kpledger store compact`)."""
        self.kv.compact()

    # -- the chain -------------------------------------------------------------------------
    @property
    def head(self) -> Header | None:
        """The latest final header (None before block 1)."""
        return self._head

    @property
    def height(self) -> int:
        return self._head.height if self._head is not None else 0

    @property
    def state_root(self) -> bytes:
        return self._head.state_root if self._head is not None else bytes(32)

    def header(self, height: int) -> Header | None:
        """The final header at `height`, checked against the hash index that names it."""
        return self.readers.blocks.header(height)

    def height_of(self, header_hash: bytes) -> int | None:
        return self.readers.blocks.height_of(header_hash)

    def event_leaves(self, height: int) -> list[bytes]:
        """The Merkle leaves of a block's events (each encode([event_id, type, number]))."""
        return self.readers.blocks.event_leaves(height)

    def event_ids(self, height: int) -> list[bytes]:
        return [decode(leaf)[0] for leaf in self.event_leaves(height)]

    def block(self, height: int) -> Block | None:
        raw = self.readers.blocks.entry(height)
        if raw is None:
            return None
        header_bytes, leaves = decode(raw)
        events = []
        for event_id in (decode(leaf)[0] for leaf in leaves):
            stored = self.event(event_id)
            if stored is None:
                raise StoreError(f"block {height} names event {event_id.hex()} the store lacks")
            events.append(stored.event)
        return Block(Header.decode(header_bytes), tuple(events))

    def commit_certificate_bytes(self, height: int) -> bytes | None:
        return self.readers.blocks.commit_certificate_bytes(height)

    def event(self, event_id: bytes) -> StoredEvent | None:
        return self.readers.events.get(event_id)

    def issue_commitment(self, event_id: bytes) -> bytes | None:
        """The identity commitment of a stored issue event (what the public proof needs)."""
        return self.readers.events.issue_commitment(event_id)

    # -- StateReader and NodeReader ---------------------------------------------------------
    def get_certificate(self, number: str) -> CertificateRecord | None:
        return self.readers.certificates.get(number)

    def served_certificate(
        self, number: str, nodes: NodeReader | None = None
    ) -> CertificateRecord | None:
        """A certificate record checked against what it derives from, for serving.

        The record must be the one the state tree of the latest final header commits to (its
        status, digest and last event), and its digest the one its facts and the issue event's
        identity commitment make. Anything else is a corrupt store (StoreCorrupt): never served.
        `nodes` reads the state tree (a cache of it); the store itself by default.
        """
        try:
            record = self.get_certificate(number)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise StoreCorrupt(f"the stored record of certificate {number} is malformed") from exc
        committed = StateTree(nodes or self, self.state_root).get(state_key(number))
        if not self._matches_tree(number, record, committed) or record is None:
            return None
        commitment = self.issue_commitment(record.issue_event_id)
        derived = None if commitment is None else certificate_digest(record.facts, commitment)
        return self._matches_issue(number, record, derived)

    def check_served(
        self,
        number: str,
        record: CertificateRecord | None,
        committed: bytes | None,
        derived_digest: bytes | None,
    ) -> CertificateRecord | None:
        """served_certificate's checks, on what was read already (the public answer's proof
        read it): `committed` is the value hash the latest state tree holds for the number,
        `derived_digest` the digest the record's facts and its issue event's identity
        commitment make (None: the issue event is missing)."""
        if not self._matches_tree(number, record, committed) or record is None:
            return None
        return self._matches_issue(number, record, derived_digest)

    def _matches_tree(
        self, number: str, record: CertificateRecord | None, committed: bytes | None
    ) -> bool:
        """True when `record` is what the state tree commits to; False when both say the number
        is not on the ledger; otherwise the store is corrupt."""
        if record is None:
            if committed is not None:
                raise StoreCorrupt(
                    f"the record of certificate {number} is missing from the store, though the "
                    "state tree holds it"
                )
            return False
        if record.number != number or committed != record.leaf_value():
            raise StoreCorrupt(
                f"the stored record of certificate {number} does not match the state tree of "
                f"block {self.height}"
            )
        return True

    def _matches_issue(
        self, number: str, record: CertificateRecord, derived_digest: bytes | None
    ) -> CertificateRecord:
        if derived_digest is None or derived_digest != record.digest:
            raise StoreCorrupt(
                f"the stored record of certificate {number} does not match its issue event"
            )
        return record

    def has_event(self, event_id: bytes) -> bool:
        return self.readers.events.has(event_id)

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self.readers.state_nodes.get_node(node_hash)

    # -- writing ----------------------------------------------------------------------------
    def put_raw_block(self, block: Block, commit_certificate: bytes) -> None:
        """Store a block as received, deriving nothing: for auditing another node's chain.

        Nothing is checked here; `ledger.audit.verify_chain(..., check_derived=False)` does it.
        """
        with self.kv.batch(sync=False) as batch:
            writes.write_block(batch, block.header, block.events, commit_certificate)
            writes.write_head(batch, block.header)
        self._head = block.header

    def commit(
        self, execution: Execution, commit_certificate: bytes, pending_done: Iterable[bytes] = ()
    ) -> None:
        """Store a final block and everything derived from it, atomically and durably.

        `pending_done`: the block's events held in the pending family, deleted in this batch.
        """
        header = execution.header
        if header.height != self.height + 1:
            raise StoreError(f"cannot store block {header.height} on top of {self.height}")
        registry = self.registry() or Registry.from_genesis(self.genesis)
        freeze_days = registry.parameters.stats_freeze_days
        with self.kv.batch(sync=True) as batch:
            for event_id in pending_done:
                batch.delete(keys.pending(event_id))
            # The blocks kept for the votes of this height (or, left by a crash, of an earlier
            # one) are of no use once it is final.
            for key in list(self.kv.keys(keys.P_SIGNED_BLOCK)):
                batch.delete(key)
            writes.write_block(batch, header, execution.block.events, commit_certificate)
            writes.write_records(batch, execution)
            writes.write_state_tree(batch, execution)
            writes.write_stats(batch, self.readers.statistics, execution, freeze_days)
            new_validators = writes.write_governance(batch, execution, self._head)
            writes.write_head(batch, header)
        if new_validators:
            self._validator_sets = None
        self._head = header
        if execution.next_registry is not None:
            self._registry = execution.next_registry

    # -- statistics ---------------------------------------------------------------------------
    def published(self, quarter: Quarter) -> dict[PublicCell, Published]:
        """A published quarter's public cells as they were last published (empty if none)."""
        return self.readers.statistics.published(quarter)

    def publications(self) -> list[tuple[int, Quarter | None, Quarter, int]]:
        """Every publication: (height, last quarter published before, last after, block time)."""
        return self.readers.statistics.publications()

    def last_published(self) -> Quarter | None:
        """The latest quarter the public statistics cover (None before the first publication)."""
        return self.readers.statistics.last_published()

    def stat(self, key: StatKey) -> Figures:
        return self.readers.statistics.stat(key)

    def stats(self, year: int, quarter: int | None = None) -> list[tuple[StatKey, Figures]]:
        """The statistics of a year or one quarter, from the aggregates kept per block."""
        return self.readers.statistics.stats(year, quarter)

    # -- governance ---------------------------------------------------------------------------
    def registry(self) -> Registry | None:
        """The register in force at the next height (None before block 1: genesis's)."""
        if self._registry is None:
            self._registry = self.readers.governance.registry()
        return self._registry

    def get_proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        return self.readers.governance.proposal(proposal_id)

    def proposals(self) -> list[ProposalRecord]:
        """Every proposal ever recorded, in the order they were proposed."""
        return self.readers.governance.proposals()

    def scheduled(self) -> list[tuple[int, bytes]]:
        """(effective height, proposal id) of the proposals still open or waiting to take effect."""
        return self.readers.governance.scheduled()

    def validator_sets(self) -> list[tuple[int, tuple[Validator, ...]]]:
        """(first height in force, validators) of every set after genesis's, in height order."""
        if self._validator_sets is None:  # every public proof asks; only a commit changes it
            self._validator_sets = self.readers.governance.validator_sets()
        return list(self._validator_sets)

    def last_active(self, code: str) -> int | None:
        return self.readers.governance.last_active(code)

    def last_suspended(self, code: str) -> int | None:
        return self.readers.governance.last_suspended(code)

    def validators_at(self, height: int) -> tuple[Validator, ...]:
        """The validator set that signs block `height`."""
        found = self.genesis.validators
        for first, validators in self.validator_sets():
            if first > height:
                break
            found = validators
        return found

    def register_history(self) -> list[tuple[int, list[RegisterChange]]]:
        """(height in force, changes) of every change to the register, in height order."""
        return self.readers.governance.register_history()

    # -- this node's own notes ------------------------------------------------------------------
    def put_signer_state(
        self, data: bytes, blocks: Mapping[bytes, bytes] | None = None, *, at: int = 0
    ) -> None:
        """What this validator signed: durable before the vote leaves the node. `blocks`: the
        blocks (value -> block bytes) of values it signed for at height `at`, in the same synced
        batch, so that a lock never outlives its block (docs/consensus.md, "Safety across
        restarts")."""
        with self.kv.batch(sync=True) as batch:
            for value, block_bytes in (blocks or {}).items():
                batch.put(keys.signed_block(at, value), block_bytes)
            batch.put(keys.K_SIGNER, data)

    def signer_state(self) -> bytes | None:
        return self.readers.local.signer_state()

    def signed_blocks(self, at: int) -> list[tuple[bytes, bytes]]:
        """(value, block bytes) of the blocks kept for the votes of height `at`."""
        return self.readers.local.signed_blocks(at)

    def note_refused(
        self, event_id: bytes, code: str, message: str, *, pending: bool = False
    ) -> None:
        """Remember why an event was refused; `pending`: it leaves the pending family with it."""
        with self.kv.batch() as batch:
            batch.put(keys.refused(event_id), encode([code, message]))
            if pending:
                batch.delete(keys.pending(event_id))

    # -- the pending family: events accepted here, durable before the node answers ------------
    def put_pending(self, events: Iterable[Event]) -> None:
        """Write accepted events in one synced batch (safe from another thread: plyvel lets go
        of the GIL while LevelDB writes, and LevelDB orders concurrent writes)."""
        with self.kv.batch(sync=True) as batch:
            for event in events:
                batch.put(keys.pending(event.event_id), event.encoded)

    def drop_pending(self, event_ids: Iterable[bytes]) -> None:
        """Delete pending events that left meanwhile (a lost delete is redone at the next start:
        a pending event found final or refused there is dropped)."""
        with self.kv.batch() as batch:
            for event_id in event_ids:
                batch.delete(keys.pending(event_id))

    def pending(self) -> Iterator[tuple[bytes, bytes]]:
        """(event id, event bytes) of every event in the pending family, in id order."""
        return self.readers.local.pending()

    def note_evidence(self, evidence: bytes) -> None:
        """Keep proof that a validator signed two conflicting messages (for governance to act on)."""
        with self.kv.batch() as batch:
            batch.put(keys.evidence(evidence), evidence)

    def evidence(self) -> list[bytes]:
        return self.readers.local.evidence()

    def refused(self, event_id: bytes) -> tuple[str, str] | None:
        return self.readers.local.refused(event_id)

    def put_api_token(self, name: str, record: bytes) -> None:
        """Write an API token's record (node/tokens.py), synced: a token the node said it made,
        or revoked, stays so after a crash."""
        with self.kv.batch(sync=True) as batch:
            batch.put(keys.api_token(name), record)

    def api_tokens(self) -> Iterator[tuple[str, bytes]]:
        return self.readers.local.api_tokens()

    def put_officer(self, name: str, record: bytes) -> None:
        """Write a portal officer's account (node/portal/accounts.py), synced: a password
        change, a lock-out or a disabled account holds after a crash."""
        with self.kv.batch(sync=True) as batch:
            batch.put(keys.officer(name), record)

    def officers(self) -> Iterator[tuple[str, bytes]]:
        return self.readers.local.officers()

    def append_activity(self, seq: int, entry: bytes) -> None:
        """Append one entry to the portal's activity log (synced; never overwritten: the
        caller numbers entries after the last one)."""
        with self.kv.batch(sync=True) as batch:
            batch.put(keys.activity(seq), entry)

    def activity(self, *, reverse: bool = False) -> Iterator[tuple[int, bytes]]:
        return self.readers.local.activity(reverse=reverse)

    # -- queries ------------------------------------------------------------------------------
    def certificates(
        self,
        *,
        exporting: str | None = None,
        importing: str | None = None,
        status: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        nodes: NodeReader | None = None,
    ) -> Iterator[CertificateRecord]:
        """Certificates in issue-date order through the most selective index, then filtered.

        `cursor` is "issued_on/number" of the last certificate of the previous page. Each record
        is checked as `served_certificate` checks it (`nodes` reads the state tree).
        """
        prefix = keys.index_prefix(exporting=exporting, importing=importing, status=status)
        start = prefix + (date_from.encode() if date_from else b"")
        if cursor:
            # A page continues strictly after the last (issued_on, number) of the page before.
            issued_on, _, number = cursor.partition("/")
            start = max(start, keys.index_entry(prefix, issued_on, number) + b"\x00")
        found = 0
        for issued, number in self.readers.indexes.walk(prefix, start):
            if date_to and issued > date_to:
                break
            record = self.served_certificate(number, nodes)
            if record is None:
                continue
            f = record.facts
            if exporting and f.exporting_participant != exporting:
                continue
            if importing and f.importing_participant != importing:
                continue
            if status and record.status != status:
                continue
            yield record
            found += 1
            if found >= limit:
                return

    def iter_index(self) -> Iterator[bytes]:
        return self.readers.indexes.keys()

    def iter_records(self) -> Iterator[CertificateRecord]:
        return self.readers.certificates.records()
