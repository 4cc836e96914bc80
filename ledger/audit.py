"""Chain audit: re-verifying a stored chain from genesis into a fresh state, to the first fault."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from ledger.audit_events import EventsVerdict as EventsVerdict
from ledger.audit_events import check_events as check_events
from ledger.audit_state import FreshState as FreshState
from ledger.audit_state import LocalStateRoots as LocalStateRoots
from ledger.audit_state import StateKeeper as StateKeeper
from ledger.audit_state import StateRoots as StateRoots
from ledger.block import Block, Header, check_link
from ledger.chain import state_root_mismatch, validate_block
from ledger.consensus.messages import CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import LedgerError, StoreError
from ledger.events import Event
from ledger.genesis import Genesis, Validator, validators_hash
from ledger.governance import (
    recovery_of,
    register_for_block,
)
from ledger.merkle import merkle_root
from ledger.proofs import FinalHeader
from ledger.registry import Registry
from ledger.stats import PublicBook, deltas
from ledger.store import Store, keys, writes

Progress = Callable[[int, int], None]

#: Blocks read and handed to the signature workers ahead of the one being re-executed, per worker.
_LOOKAHEAD_PER_WORKER = 4
#: Blocks re-executed ahead of the state roots that the state tree (StateRoots) has given back.
_ROOTS_AHEAD = 4


@dataclass(frozen=True)
class AuditReport:
    """The verdict on a stored chain.

    `height_checked` is the last height whose block passed every check (the chain is sound up to
    it); `events_checked` counts the events of those blocks. `fault` says precisely what is wrong,
    and where, when `ok` is false.
    """

    ok: bool
    height_checked: int
    events_checked: int
    fault: str | None = None


class _Fault(Exception):
    """What the audit found; becomes the report's `fault`, never leaves this module."""


@dataclass
class _Loaded:
    """One block read back from the store, parsed and checked for self-consistency.

    Its events' canonical check runs with the signatures' (`check_events`), so a fault found
    while reading the block is held (`held`) until that verdict says whether an event before it,
    or the one at fault, is not canonical: the fault `Event.decode` would have raised first
    (`_Audit.settle`)."""

    height: int
    header: Header
    ids: list[bytes]
    events: list[Event]
    #: The stored bytes of the events read, and the key each one's signature is checked under.
    encoded: list[bytes]
    keys: list[bytes | None]
    block: Block | None = None
    held: BaseException | None = None
    pending: Future[EventsVerdict] | None = None
    #: The first event whose signature does not verify (-1: none), once settled.
    bad_signature: int = -1
    #: The register the checks were read under: keys may rotate before the block is executed.
    registry: Registry | None = None


#: What decoding bytes that are not canonical might raise besides a LedgerError: `Event.decode`
#: refuses them before, so a defect only for canonical bytes (`_Audit.settle` re-raises it then).
_DECODE_DEFECTS = (TypeError, ValueError, AttributeError, IndexError, KeyError, RecursionError)


def _leaf_event_id(leaf: object) -> bytes:
    """The event id an event's Merkle leaf (encode([event_id, type, number])) names."""
    if not isinstance(leaf, bytes):
        raise ValueError("a leaf is bytes")
    obj = decode(leaf)
    if not isinstance(obj, list) or len(obj) != 3:
        raise ValueError("a leaf is [event_id, type, number]")
    event_id = obj[0]
    if not isinstance(event_id, bytes) or len(event_id) != 32:
        raise ValueError("an event id is 32 bytes")
    return event_id


def _short(value: bytes) -> str:
    return value.hex()[:16]


class _Audit:
    """One pass over a store: the fresh state its events imply, and how far it checks out."""

    check_derived = True

    def __init__(self, store: Store, genesis: Genesis, roots: StateRoots) -> None:
        self.store = store
        self.read = store.readers
        self.genesis = genesis
        self.registry = Registry.from_genesis(genesis)
        self.validator_keys = [v.node_key for v in genesis.validators]
        self.state = FreshState(signing=[(1, genesis.validators)])
        self.public = PublicBook()
        self.height_checked = 0
        self.events_checked = 0
        #: The state tree, and the blocks re-executed whose roots it has not given back yet:
        #: (height, the header's state root, events). A block counts as checked once its root is.
        self.roots = roots
        self.unconfirmed: deque[tuple[int, bytes, int]] = deque()
        self.progress: Progress | None = None
        self.head_height = 0
        #: What the store's own block writer puts in the governance family for the chain's
        #: blocks, re-executed here: activity, validator sets, register history, schedule.
        self.governance = _Expected()

    # -- the head --------------------------------------------------------------------------
    def head(self) -> tuple[int, bytes | None]:
        raw = self.read.blocks.head_entry()
        if raw is None:
            return 0, None
        try:
            obj = decode(raw)
            height, head_hash = obj
            if type(height) is not int or height < 1 or not isinstance(head_hash, bytes):
                raise ValueError
        except (LedgerError, ValueError, TypeError) as exc:
            raise _Fault("the stored head pointer is malformed") from exc
        return height, head_hash

    # -- reading one block -----------------------------------------------------------------
    def load(self, height: int, prev: Header | None) -> _Loaded:
        raw = self.read.blocks.entry(height)
        if raw is None:
            raise _Fault(f"block {height} is missing from the store")
        try:
            header_bytes, leaves = decode(raw)
            if not isinstance(header_bytes, bytes) or not isinstance(leaves, list):
                raise ValueError
            ids = [_leaf_event_id(leaf) for leaf in leaves]
        except (LedgerError, ValueError, TypeError) as exc:
            raise _Fault(f"block {height}: the stored block entry is malformed") from exc
        try:
            header = Header.decode(header_bytes)
        except LedgerError as exc:
            raise _Fault(f"block {height}: the stored header does not decode ({exc})") from exc
        if header.height != height:
            raise _Fault(f"block {height}: the stored header says height {header.height}")
        try:
            check_link(header, prev, self.genesis.hash, self.genesis.chain_id)
        except LedgerError as exc:
            raise _Fault(f"block {height}: the header does not link: {exc}") from exc
        if self.read.blocks.height_of(header.hash) != height:
            raise _Fault(
                f"block {height}: the header hash {_short(header.hash)} is not indexed at "
                f"height {height} (the header was altered after it was stored?)"
            )
        loaded = _Loaded(height, header, ids, [], [], [], registry=self.registry)
        try:
            for index, event_id in enumerate(ids):
                loaded.events.append(self.load_event(height, index, event_id, loaded.encoded))
        except (_Fault, *_DECODE_DEFECTS) as exc:  # held: a non-canonical event may come first
            loaded.held = exc
            return loaded
        try:
            loaded.block = self.check_events_of(loaded, leaves)
        except _Fault as fault:
            loaded.held = fault
            return loaded
        participants = self.registry.participants
        for event in loaded.events:
            participant = participants.get(event.signer)
            # An unknown signer is a transition fault, found later.
            loaded.keys.append(participant.authority_key if participant is not None else None)
        return loaded

    def check_events_of(self, loaded: _Loaded, leaves: list[bytes]) -> Block:
        height, events = loaded.height, loaded.events
        for index, (leaf, event) in enumerate(zip(leaves, events, strict=True)):
            if leaf != event.leaf:  # event_leaf, kept: the events root below reads it again
                raise _Fault(
                    f"block {height} event {index} ({_short(event.event_id)}): the block's "
                    "Merkle leaf does not describe the stored event"
                )
        block = Block(loaded.header, tuple(events))
        try:
            block.check_body()
        except LedgerError as exc:
            raise _Fault(f"block {height}: the events do not match the header: {exc}") from exc
        return block

    def settle(self, loaded: _Loaded) -> Block:
        """The block as read, once its events' canonical and signature checks are in: the first
        fault in the order `load` would find them with `Event.decode`, or the block."""
        undecodable, bad = (
            loaded.pending.result()
            if loaded.pending is not None
            else check_events(loaded.encoded, loaded.keys)
        )
        if undecodable is not None:
            index, refusal = undecodable
            raise _Fault(
                f"block {loaded.height} event {index} ({_short(loaded.ids[index])}): the stored "
                f"event does not decode ({refusal})"
            )
        if loaded.held is not None:
            raise loaded.held
        assert loaded.block is not None  # no fault held: load made it
        loaded.bad_signature = bad
        return loaded.block

    def load_event(
        self, height: int, index: int, event_id: bytes, encoded_so_far: list[bytes]
    ) -> Event:
        """The stored event, its bytes appended to `encoded_so_far` once they are read; decoded
        without the canonical check, which `check_events` makes (`settle` waits for it)."""
        where = f"block {height} event {index} ({_short(event_id)})"
        raw = self.read.events.entry(event_id)
        if raw is None:
            raise _Fault(f"{where}: the event is missing from the store")
        try:
            stored_height, stored_index, encoded = decode(raw)
        except (LedgerError, ValueError, TypeError) as exc:
            raise _Fault(f"{where}: the stored event entry is malformed") from exc
        if (stored_height, stored_index) != (height, index):
            raise _Fault(
                f"{where}: the store places it at block {stored_height} index {stored_index}"
            )
        if not isinstance(encoded, bytes):
            raise _Fault(f"{where}: the stored event entry is malformed")
        encoded_so_far.append(encoded)
        try:
            event = Event.decode_unchecked(encoded)
        except LedgerError as exc:
            raise _Fault(f"{where}: the stored event does not decode ({exc})") from exc
        if event.event_id != event_id:
            participant = self.registry.participants.get(event.signer)
            if participant is not None and not event.signature_valid(participant.authority_key):
                raise _Fault(
                    f"{where}: the signature does not verify under {event.signer}'s authority "
                    "key (the stored event was altered: it no longer hashes to its id)"
                )
            raise _Fault(f"{where}: the stored event does not hash to the id the block names")
        return event

    # -- checking one block ----------------------------------------------------------------
    def check_signatures(self, loaded: _Loaded) -> frozenset[bytes]:
        if loaded.registry is not self.registry:
            # Read ahead of a register change: re-execution checks each signature instead.
            return frozenset()
        events = loaded.events
        if loaded.bad_signature >= 0:
            index = loaded.bad_signature
            event = events[index]
            raise _Fault(
                f"block {loaded.height} event {index} ({_short(event.event_id)}): the signature "
                f"does not verify under {event.signer}'s authority key"
            )
        return frozenset(
            event.event_id
            for event, key in zip(events, loaded.keys, strict=True)
            if key is not None
        )

    def follow_recovery(self, loaded: _Loaded, prev: Header | None) -> None:
        """A block that records an emergency recovery is judged, and its commit certificate
        checked, by the register the recovery makes (ledger/governance/recovery.py)."""
        if prev is None or recovery_of(loaded.events) is None:
            return
        try:
            self.registry = register_for_block(
                self.registry,
                loaded.events,
                self.genesis.chain_id,
                loaded.height,
                prev.hash,
            )
        except LedgerError as exc:
            raise _Fault(f"block {loaded.height}: {exc.message}") from exc
        if validators_hash(self.registry.validators) != prev.next_validators_hash:
            self.state.signing.append((loaded.height, self.registry.validators))

    def check_commit(self, header: Header) -> None:
        height = header.height
        raw = self.read.blocks.commit_certificate_bytes(height)
        if raw is None:
            raise _Fault(f"block {height}: no commit certificate is stored")
        try:
            certificate = CommitCertificate.from_wire(decode(raw))
        except LedgerError as exc:
            raise _Fault(f"block {height}: the commit certificate is malformed ({exc})") from exc
        if certificate.height != height:
            raise _Fault(
                f"block {height}: the commit certificate is for height {certificate.height}"
            )
        if certificate.value != header.hash:
            raise _Fault(
                f"block {height}: the commit certificate signs header {_short(certificate.value)},"
                f" not the stored header {_short(header.hash)}"
            )
        try:
            certificate.verify(
                self.genesis.chain_id, [v.node_key for v in self.registry.validators]
            )
        except LedgerError as exc:
            raise _Fault(f"block {height}: {exc.message}") from exc

    def execute(self, loaded: _Loaded, prev: Header | None, verified: frozenset[bytes]) -> None:
        header = loaded.header
        block = loaded.block
        assert block is not None  # settled

        def tree_update(
            prev_root: bytes, leaves: dict[bytes, bytes]
        ) -> tuple[bytes, dict[bytes, bytes | None]]:
            # The tree is the StateRoots': the header's root stands in until it gives the real
            # one back (`confirm`), and the fresh state keeps no nodes of its own.
            self.roots.submit(leaves)
            self.unconfirmed.append((header.height, header.state_root, len(loaded.events)))
            return header.state_root, {}

        try:
            execution = validate_block(
                self.state,
                self.registry,
                self.genesis.hash,
                prev,
                block,
                verified=verified,
                chain_id=self.genesis.chain_id,
                tree_update=tree_update,
            )
        except LedgerError as exc:
            raise _Fault(f"block {loaded.height}: re-execution fails: {exc.message}") from exc
        self.state.apply(execution)
        writes.write_governance(self.governance, execution, prev)
        if self.check_derived:
            changes = [(execution.previous.get(n), r) for n, r in execution.records.items()]
            header = loaded.header
            freeze_days = self.registry.parameters.stats_freeze_days  # in force at this height
            self.public.apply(header.height, header.time_ms, freeze_days, changes)
        if execution.next_registry is not None:
            self.registry = execution.next_registry  # in force from the next height

    # -- the whole chain -------------------------------------------------------------------
    def blocks(self, head: int, pool: SignaturePool | None, ahead: int) -> Iterator[_Loaded]:
        """Blocks 1..head in order, their signature checks submitted `ahead` blocks early."""
        window: deque[_Loaded] = deque()
        prev: Header | None = None
        next_height = 1
        while next_height <= head or window:
            while next_height <= head and len(window) < ahead:
                # A fault while reading ahead must wait until the blocks before it are checked.
                try:
                    loaded = self.load(next_height, prev)
                except _Fault:
                    if not window:
                        raise
                    break
                if pool is not None and loaded.encoded:
                    loaded.pending = pool.submit(loaded.encoded, loaded.keys)
                window.append(loaded)
                prev = loaded.header
                next_height += 1
                if loaded.held is not None:
                    next_height = head + 1  # nothing past a fault is read, as before
            if not window:
                continue
            yield window.popleft()

    def confirm(self, keep: int = 0) -> None:
        """Take back the state roots of the blocks re-executed but the last `keep`: each must be
        its header's, else that block is the fault; then it counts as checked."""
        while len(self.unconfirmed) > keep:
            height, claimed, events = self.unconfirmed.popleft()
            if self.roots.next_root() != claimed:
                self.unconfirmed.clear()  # the first fault: what comes after it is not judged
                # As validate_block words it, had it worked out the root itself.
                refusal = state_root_mismatch(height)
                raise _Fault(f"block {height}: re-execution fails: {refusal.message}")
            self.height_checked = height
            self.events_checked += events
            if self.progress is not None:
                self.progress(height, self.head_height)

    def run(self, progress: Progress | None, pool: SignaturePool | None, ahead: int) -> None:
        self.progress = progress
        try:
            self.check_blocks(pool, ahead)
        except (_Fault, StoreError):
            # Every block before the one at fault, and that one if the tree has its leaves, was
            # re-executed up to its state root: a wrong root among them is the first fault.
            self.confirm()
            raise
        if self.check_derived:
            self.check_derived_data()

    def check_blocks(self, pool: SignaturePool | None, ahead: int) -> None:
        head, head_hash = self.head()
        self.head_height = head
        prev: Header | None = None
        for loaded in self.blocks(head, pool, ahead):
            self.settle(loaded)
            self.follow_recovery(loaded, prev)
            verified = self.check_signatures(loaded)
            self.check_commit(loaded.header)
            self.execute(loaded, prev, verified)
            prev = loaded.header
            self.confirm(keep=_ROOTS_AHEAD)
        self.confirm()
        if prev is not None and prev.hash != head_hash:
            raise _Fault(f"the stored head pointer names another header than block {head}")
        if self.read.blocks.entry(head + 1) is not None:
            raise _Fault(f"a block {head + 1} is stored beyond the head {head}")

    def check_derived_data(self) -> None:
        self.check_records()
        self.check_governance()
        self.check_index()
        self.check_stats()
        self.check_public_stats()
        self.check_state_nodes()
        self.check_no_stray_events()

    def check_governance(self) -> None:
        """The stored register and proposal records are those the chain's events imply."""
        stored = self.read.governance.registry_entry()
        if stored is not None and stored != encode(self.registry.to_wire()):
            raise _Fault("the stored participant register differs from what the chain implies")
        expected = self.state.proposals
        seen = 0
        for proposal_id, raw in self.read.governance.proposal_entries():
            record = expected.get(proposal_id)
            if record is None or raw != encode(record.to_wire()):
                raise _Fault(f"the stored proposal {_short(proposal_id)} is not the chain's")
            seen += 1
        if seen != len(expected):
            raise _Fault(f"{len(expected) - seen} proposal records are missing from the store")
        implied = dict(self.governance.entries)
        implied.pop(keys.K_REGISTRY, None)  # checked above; the rest is the governance family
        for key, value in self.read.governance.entries():
            if implied.pop(key, None) != value:
                raise _Fault(f"the store holds governance data the chain does not imply: {key!r}")
        if implied:
            raise _Fault(f"governance data is missing from the store: {min(implied)!r}")
        if self.read.blocks.hash_index_count() != self.height_checked:
            raise _Fault("the header hash index names headers the chain does not hold")

    def check_records(self) -> None:
        expected = self.state.records
        seen: set[str] = set()
        for number, raw in self.read.certificates.entries():
            record = expected.get(number)
            if record is None:
                raise _Fault(f"the store holds a record of {number} that no event implies")
            if raw != record.encode():
                raise _Fault(f"the stored record of {number} differs from what its events imply")
            seen.add(number)
        missing = sorted(set(expected) - seen)
        if missing:
            raise _Fault(f"the record of {missing[0]} is missing from the store")

    def check_index(self) -> None:
        expected = {
            key for record in self.state.records.values() for key in keys.index_keys(record)
        }
        seen: set[bytes] = set()
        for key, value in self.read.indexes.entries():
            if key not in expected:
                raise _Fault(f"the store holds an index entry no record implies: {_show(key)}")
            if value != b"":
                raise _Fault(f"the index entry {_show(key)} carries a value")
            seen.add(key)
        missing = sorted(expected - seen)
        if missing:
            raise _Fault(f"an index entry is missing from the store: {_show(missing[0])}")

    def check_stats(self) -> None:
        expected = {
            keys.stat(key): encode([f.certificates, f.carats, f.value_usd])
            for key, f in deltas((None, r) for r in self.state.records.values()).items()
        }
        seen: set[bytes] = set()
        for key, value in self.read.statistics.entries():
            if key not in expected:
                raise _Fault(f"the store holds statistics no record implies: {_show(key)}")
            if value != expected[key]:
                raise _Fault(f"the stored statistics {_show(key)} differ from what records imply")
            seen.add(key)
        missing = sorted(set(expected) - seen)
        if missing:
            raise _Fault(f"statistics are missing from the store: {_show(missing[0])}")

    def check_public_stats(self) -> None:
        """The published statistics are those the chain's block times and events imply."""
        book = self.public
        expected: dict[bytes, bytes] = {}
        for quarter, cells in book.published.items():
            for cell, published in cells.items():
                expected[keys.public_cell(quarter, cell)] = encode(published.to_wire())
        for quarter, counts in book.changed.items():
            for cell, count in counts.items():
                expected[keys.public_touch(quarter, cell)] = encode(count)
        for quarter in book.dirty:
            expected[keys.public_dirty(quarter)] = b""
        for height, record in book.publications.items():
            expected[keys.publication(height)] = encode(record)
        seen: set[bytes] = set()
        for key, value in self.read.statistics.public_entries():
            if key not in expected:
                raise _Fault(
                    f"the store holds public statistics the chain does not imply: {_show(key)}"
                )
            if value != expected[key]:
                raise _Fault(f"the stored public statistics {_show(key)} differ from the chain's")
            seen.add(key)
        missing = sorted(set(expected) - seen)
        if missing:
            raise _Fault(f"public statistics are missing from the store: {_show(missing[0])}")

    def check_state_nodes(self) -> None:
        # Compared where the tree is (a worker process, with node/audit_pool.py).
        fault = self.roots.nodes_fault(self.read.state_nodes.entries())
        if fault is not None:
            raise _Fault(fault)

    def check_no_stray_events(self) -> None:
        stored = self.read.events.count()
        if stored != self.events_checked:
            raise _Fault(
                f"the store holds {stored} events, but its blocks hold {self.events_checked}"
            )


class _Expected:
    """A store Writer that only remembers what it was told to write (the audit's expectation)."""

    def __init__(self) -> None:
        self.entries: dict[bytes, bytes] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.entries[key] = value

    def delete(self, key: bytes) -> None:
        self.entries.pop(key, None)


def _show(index_key: bytes) -> str:
    return index_key.decode("utf-8", "replace").replace("\x00", "/")


class SignaturePool(Protocol):
    """Where blocks' event checks (canonical bytes, signatures) run ahead of their re-execution
    (node/audit_pool.py runs them over worker processes): `submit` starts `check_events`."""

    @property
    def workers(self) -> int: ...

    def submit(self, encoded: list[bytes], keys: list[bytes | None]) -> Future[EventsVerdict]: ...


def verify_chain(
    store: Store,
    genesis: Genesis,
    *,
    progress: Progress | None = None,
    pool: SignaturePool | None = None,
    state: StateRoots | None = None,
    check_derived: bool = True,
) -> AuditReport:
    """Re-check everything a stored chain claims, from genesis, and report the first fault.

    Hash links, Merkle roots, every event signature (each block's checked ahead of its
    re-execution by `pool` when one is given, here otherwise), every commit certificate against the validators in force at its height (followed from
    genesis through governance), every state transition and state root (by re-executing each
    block against a fresh in-memory state), and finally that the stored records, register,
    proposals, indexes, statistics and state tree are exactly what the events imply. A
    corrupt chain is reported, never raised. `progress(height, head)` is called after each block.
    `check_derived=False` skips the comparison of stored records, indexes and the like: for a
    chain imported raw from another node (`Store.put_raw_block`), which has none of them.
    `state` keeps the state tree and gives each block's root back (a few blocks later when it
    works in another process); by default it is worked out here, block by block.
    """
    audit = _Audit(store, genesis, state if state is not None else LocalStateRoots())
    audit.check_derived = check_derived
    try:
        if pool is not None:
            audit.run(progress, pool, pool.workers * _LOOKAHEAD_PER_WORKER)
        else:
            audit.run(progress, None, 1)
    except _Fault as fault:
        return AuditReport(False, audit.height_checked, audit.events_checked, str(fault))
    except StoreError as exc:
        # A LevelDB checksum or a damaged table (StoreCorrupt), or a record that cannot be read:
        # the store is faulty from here on, which is what the audit reports, not a traceback.
        return AuditReport(
            False,
            audit.height_checked,
            audit.events_checked,
            f"the store cannot be read past height {audit.height_checked}: {exc.message}",
        )
    return AuditReport(True, audit.height_checked, audit.events_checked, None)


@dataclass(frozen=True)
class PublicBlock:
    """What anyone may read of a final block: its header, commit certificate and event leaves."""

    header: bytes
    commit: bytes
    leaves: list[bytes]


def verify_public_chain(
    genesis: Genesis,
    blocks: Iterable[PublicBlock],
    validator_sets: Mapping[int, Sequence[Validator]],
    head: int,
    *,
    progress: Progress | None = None,
) -> AuditReport:
    """Check a chain from what its public routes give, as a light client would.

    Every header links to the one before (from genesis), is signed by more than 2/3 of the
    validator set in force at its height (followed from genesis: a new set must hash to what the
    last header of the old set names next; `validator_sets` maps its first height to the set
    the node says), and its events' Merkle leaves hash to its events root. The events themselves
    (signatures, state transitions) are not public: `verify_chain` over whole blocks checks them.
    """
    prev: Header | None = None
    validators: tuple[Validator, ...] = tuple(genesis.validators)
    checked = events = 0
    try:
        for block in blocks:
            height = checked + 1
            try:
                header = Header.decode(block.header)
                check_link(header, prev, genesis.hash, genesis.chain_id)
            except LedgerError as exc:
                raise _Fault(f"block {height}: {exc.message}") from exc
            if prev is not None and prev.next_validators_hash != prev.validators_hash:
                named = validator_sets.get(height)
                if named is None or validators_hash(tuple(named)) != prev.next_validators_hash:
                    raise _Fault(
                        f"block {height}: the validator set the node gives for it is not the "
                        f"one header {prev.height} names next"
                    )
                validators = tuple(named)
            try:
                # Final under the set in force: as a proof's headers are checked.
                certificate = CommitCertificate.from_wire(decode(block.commit))
                FinalHeader(header, certificate).check(genesis, validators)
            except LedgerError as exc:
                raise _Fault(f"block {height}: {exc.message}") from exc
            if len(block.leaves) != header.event_count:
                raise _Fault(
                    f"block {height}: {len(block.leaves)} events, the header says "
                    f"{header.event_count}"
                )
            if merkle_root(block.leaves) != header.events_root:
                raise _Fault(f"block {height}: the events do not hash to the header's events root")
            prev, checked, events = header, height, events + len(block.leaves)
            if progress is not None:
                progress(height, head)
        if checked < head:
            raise _Fault(f"the chain ends at height {checked}, before its head {head}")
    except _Fault as fault:
        return AuditReport(False, checked, events, str(fault))
    return AuditReport(True, checked, events, None)
