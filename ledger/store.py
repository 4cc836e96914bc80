"""The LevelDB store: final blocks, events, certificate state, the state tree and the indexes."""

from __future__ import annotations

import logging
import os
import re
import stat
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgpack
import plyvel

from ledger.block import Block, Header, event_leaf
from ledger.certificate import certificate_digest
from ledger.chain import Execution
from ledger.encoding import decode, encode
from ledger.errors import LedgerError, StoreCorrupt, StoreError, StoreLocked, StoreWriteFailed
from ledger.events import Event
from ledger.genesis import Genesis, Validator
from ledger.governance import OPEN, PASSED, ProposalRecord, RegisterChange, activity
from ledger.hashing import sha256
from ledger.state import CertificateRecord, Registry, state_key
from ledger.statetree import NodeReader, StateTree
from ledger.stats import (
    Figures,
    PublicCell,
    Published,
    Quarter,
    StatKey,
    deltas,
    latest_due,
    public_cells,
    publication,
    touches,
)

# Key families. Every key starts with a one-letter family and a slash.
K_GENESIS = b"m/genesis"
K_HEAD = b"m/head"
K_SIGNER = b"m/signer"
K_REGISTRY = b"m/registry"  # the register in force at the next height
P_BLOCK = b"b/"  # height -> [header bytes, [event Merkle leaves]]
P_COMMIT = b"c/"  # height -> commit certificate bytes
P_HASH = b"h/"  # header hash -> height
P_EVENT = b"e/"  # event id -> [height, index, event bytes]
P_CERT = b"n/"  # certificate number -> record
P_NODE = b"s/"  # state tree node hash -> node
P_IDX = b"x/"  # indexes, values empty
P_STATS = b"t/"  # statistics aggregates: StatKey -> [certificates, carats, value]
P_LOCAL = b"l/"  # this node's own notes (refused events): not part of the chain
P_PENDING = b"q/"  # event id -> event bytes: accepted here, not yet final or refused (not chain)
P_GOV = b"g/"  # governance: proposals, their schedule, validator sets and the register's history
P_PROPOSAL = P_GOV + b"p/"  # proposal id -> record
P_SCHEDULE = P_GOV + b"s/"  # effective height + proposal id -> b"" (open or passed only)
P_VALIDATORS = P_GOV + b"v/"  # first height in force -> validator list (at each change)
P_REGISTER = P_GOV + b"r/"  # height in force -> the register changes taking effect there
P_ACTIVE = P_GOV + b"a/"  # participant -> block time it last signed an event (or entered)
P_SUSPENDED = P_GOV + b"u/"  # participant -> block time of its last suspension
P_PUB = b"p/"  # public statistics: what was published, when, and what waits (ledger/stats.py)
P_PUB_CELL = P_PUB + b"c/"  # quarter/role/participant/hs -> Published figures
P_PUB_TOUCH = P_PUB + b"t/"  # quarter/role/participant/hs -> certificates that ever changed it
P_PUB_DIRTY = P_PUB + b"d/"  # quarter -> b"": changed since its last publication
P_PUB_AT = P_PUB + b"h/"  # height -> [last quarter published before, last after, block time]


#: The data directory and every file in it are the node's own: carats, values and identities
#: (sealed, but the node's own opened ones in its indexes) are in them.
DATA_DIR_MODE = 0o700
DATA_FILE_MODE = 0o600

_log = logging.getLogger("kpledger.store")


def make_private(path: Path) -> int:
    """Create the data directory 0700, or make an existing one 0700 and its files 0600.

    Also adds 077 to the process umask, so that the files LevelDB creates later (tables,
    logs, manifests) are 0600 too. Returns how many modes it had to change.
    """
    os.umask(os.umask(0o077) | 0o077)
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    fixed = 0
    for entry in [path, *path.iterdir()]:
        if entry.is_symlink():
            continue
        mode = stat.S_IMODE(entry.lstat().st_mode)
        if mode & 0o077:
            os.chmod(entry, DATA_DIR_MODE if entry.is_dir() else DATA_FILE_MODE)
            fixed += 1
    if fixed:
        _log.warning(
            "the data directory %s was open to other local users: made it %o and its files %o "
            "(%d modes changed)",
            path,
            DATA_DIR_MODE,
            DATA_FILE_MODE,
            fixed,
        )
    return fixed


#: The last 8 bytes of every LevelDB table (kTableMagicNumber, little-endian).
_TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)
_TABLE_FOOTER = 48
_SSTABLE_LINE = re.compile(rb"^ (\d+):(\d+)\[", re.MULTILINE)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise ValueError("a truncated varint")


def check_tables(path: Path, sstables: bytes) -> list[str]:
    """What is wrong with the live LevelDB tables `leveldb.sstables` lists (empty: nothing).

    LevelDB reads a table's footer once, when it first opens the table; a table whose footer is
    damaged is then skipped by every iterator without an error (plyvel exposes no iterator
    status), so a listing silently loses what that table holds. This looks at each live table's
    size and footer directly: the magic number, and both block handles inside the file.
    """
    problems = []
    for number, size in _SSTABLE_LINE.findall(sstables):
        name = f"{int(number):06d}"
        table = next(
            (path / f"{name}{ext}" for ext in (".ldb", ".sst") if (path / f"{name}{ext}").exists()),
            None,
        )
        if table is None:
            problems.append(f"table {name}.ldb is missing")
            continue
        try:
            with table.open("rb") as f:
                actual = os.fstat(f.fileno()).st_size
                if actual != int(size) or actual < _TABLE_FOOTER:
                    problems.append(f"table {table.name} is {actual} bytes, not {int(size)}")
                    continue
                f.seek(actual - _TABLE_FOOTER)
                footer = f.read(_TABLE_FOOTER)
        except OSError as exc:
            problems.append(f"table {table.name} cannot be read: {exc}")
            continue
        if footer[-8:] != _TABLE_MAGIC:
            problems.append(f"table {table.name} has a damaged footer (bad magic number)")
            continue
        try:
            at = 0
            for _ in range(2):  # the metaindex handle, then the index handle
                offset, at = _varint(footer, at)
                length, at = _varint(footer, at)
                if offset + length + 5 > actual - _TABLE_FOOTER:
                    raise ValueError("a block handle points past the table's end")
        except ValueError as exc:
            problems.append(f"table {table.name} has a damaged footer ({exc})")
    return problems


class StoreListener(Protocol):
    """Told of every corruption found and every write that fails or succeeds after a failure."""

    def store_corrupt(self, reason: str) -> None: ...

    def write_failed(self, reason: str) -> None: ...

    def write_succeeded(self) -> None: ...


class CheckedDB:
    """The LevelDB handle with every read checksummed and every LevelDB error typed.

    Reads pass verify_checksums=True (plyvel's default checks none); a corruption LevelDB reports
    becomes StoreCorrupt and a failed write StoreWriteFailed, so that no caller mistakes either
    for an absent key or lets a plyvel exception escape as a traceback. `listener` (the node's
    health) hears of each.
    """

    def __init__(self, db: Any, path: Path) -> None:
        self._db = db
        self.path = path
        self.listener: StoreListener | None = None
        self._failing = False

    @property
    def closed(self) -> bool:
        return bool(self._db.closed)

    def close(self) -> None:
        self._db.close()

    def _corrupt(self, exc: Exception) -> StoreCorrupt:
        raw = exc.args[0] if exc.args else exc
        detail = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        error = StoreCorrupt(f"the store at {self.path} is corrupt: {detail}")
        if self.listener is not None:
            self.listener.store_corrupt(error.message)
        return error

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key, verify_checksums=True)
        except plyvel.CorruptionError as exc:
            raise self._corrupt(exc) from exc
        except plyvel.Error as exc:
            raise StoreError(f"cannot read the store at {self.path}: {exc}") from exc
        return value

    def iterator(self, **kwargs: Any) -> Iterator[Any]:
        try:
            with self._db.iterator(verify_checksums=True, **kwargs) as it:
                yield from it
        except plyvel.CorruptionError as exc:
            raise self._corrupt(exc) from exc
        except plyvel.Error as exc:
            raise StoreError(f"cannot read the store at {self.path}: {exc}") from exc

    def _write_failed(self, exc: Exception) -> StoreWriteFailed:
        raw = exc.args[0] if exc.args else exc
        detail = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        error = StoreWriteFailed(f"cannot write to the store at {self.path}: {detail}")
        self._failing = True
        if self.listener is not None:
            self.listener.write_failed(error.message)
        return error

    def _written(self) -> None:
        if self._failing:
            self._failing = False
            if self.listener is not None:
                self.listener.write_succeeded()

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        try:
            self._db.put(key, value, sync=sync)
        except plyvel.Error as exc:
            raise self._write_failed(exc) from exc
        self._written()

    def delete(self, key: bytes, *, sync: bool = False) -> None:
        try:
            self._db.delete(key, sync=sync)
        except plyvel.Error as exc:
            raise self._write_failed(exc) from exc
        self._written()

    @contextmanager
    def write_batch(self, **kwargs: Any) -> Iterator[Any]:
        try:
            with self._db.write_batch(**kwargs) as batch:
                yield batch
        except plyvel.Error as exc:
            raise self._write_failed(exc) from exc
        self._written()

    def compact_range(self, **kwargs: Any) -> None:
        try:
            self._db.compact_range(**kwargs)
        except plyvel.CorruptionError as exc:
            raise self._corrupt(exc) from exc
        except plyvel.Error as exc:
            raise self._write_failed(exc) from exc

    def get_property(self, name: bytes) -> bytes | None:
        value: bytes | None = self._db.get_property(name)
        return value

    def check_tables(self) -> list[str]:
        return check_tables(self.path, self.get_property(b"leveldb.sstables") or b"")


def _h(height: int) -> bytes:
    return struct.pack(">Q", height)


def index_keys(record: CertificateRecord) -> list[bytes]:
    """The index entries a certificate record implies (the audit recomputes and compares them)."""
    f = record.facts
    tail = f.issued_on.isoformat().encode() + b"\x00" + f.number.encode()
    return [
        P_IDX + b"e/" + f.exporting_participant.encode() + b"\x00" + tail,
        P_IDX + b"i/" + f.importing_participant.encode() + b"\x00" + tail,
        P_IDX + b"s/" + record.status.encode() + b"\x00" + tail,
        P_IDX + b"d/" + tail,
    ]


@dataclass(frozen=True)
class StoredEvent:
    event: Event
    height: int
    index: int


class Store:
    """One node's chain on disk. One block and all it implies is written in one synced batch."""

    def __init__(self, path: Path | str, genesis: Genesis) -> None:
        self.path = Path(path)
        try:
            make_private(self.path)
        except OSError as exc:
            raise StoreError(f"cannot make the data directory {self.path} private: {exc}") from exc
        try:
            db = plyvel.DB(str(self.path), create_if_missing=True, paranoid_checks=True)
        except plyvel.CorruptionError as exc:
            raise StoreCorrupt(
                f"the store at {self.path} is corrupt and cannot be opened: {exc}; the node "
                "will not start on it (`kpledger store scrub --data DIR` reports what is damaged; "
                "resync the node from its peers into an empty data directory)"
            ) from exc
        except plyvel.IOError as exc:
            if b"lock" in str(exc).encode() or "lock" in str(exc).lower():
                raise StoreLocked(
                    f"the data directory {self.path} is in use by another process "
                    "(a node is already running on it)"
                ) from exc
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        except plyvel.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        self.db = CheckedDB(db, self.path)
        problems = self.db.check_tables()
        if problems:
            self.db.close()
            raise StoreCorrupt(
                f"the store at {self.path} is corrupt: {'; '.join(problems)}; the node will not "
                "start on it (`kpledger store scrub --data DIR` reports what is damaged; resync "
                "the node from its peers into an empty data directory)"
            )
        self.genesis = genesis
        stored = self.db.get(K_GENESIS)
        if stored is None:
            self.db.put(K_GENESIS, genesis.hash, sync=True)
        elif stored != genesis.hash:
            self.db.close()
            raise StoreError(
                f"the data directory {self.path} holds a chain of another genesis; "
                "refusing to mix two networks"
            )
        self._head: Header | None = None
        raw = self.db.get(K_HEAD)
        if raw is not None:
            height = decode(raw)[0]
            self._head = self.header(height)
        self._registry: Registry | None = None
        self._validator_sets: list[tuple[int, tuple[Validator, ...]]] | None = None

    def close(self) -> None:
        if not self.db.closed:
            self.db.close()

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
        raw = self.db.get(P_BLOCK + _h(height))
        if raw is None:
            return None
        try:
            header = Header.decode(decode(raw)[0])
        except (LedgerError, ValueError, TypeError, IndexError) as exc:
            raise StoreCorrupt(f"the stored header of block {height} does not decode") from exc
        if header.height != height or self.db.get(P_HASH + header.hash) != _h(height):
            raise StoreCorrupt(
                f"the stored header of block {height} does not hash to the hash its index names"
            )
        return header

    def height_of(self, header_hash: bytes) -> int | None:
        raw = self.db.get(P_HASH + header_hash)
        return None if raw is None else int(struct.unpack(">Q", raw)[0])

    def event_leaves(self, height: int) -> list[bytes]:
        """The Merkle leaves of a block's events (each encode([event_id, type, number]))."""
        raw = self.db.get(P_BLOCK + _h(height))
        if raw is None:
            return []
        leaves: list[bytes] = decode(raw)[1]
        return leaves

    def event_ids(self, height: int) -> list[bytes]:
        return [decode(leaf)[0] for leaf in self.event_leaves(height)]

    def block(self, height: int) -> Block | None:
        raw = self.db.get(P_BLOCK + _h(height))
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
        value: bytes | None = self.db.get(P_COMMIT + _h(height))
        return value

    def event(self, event_id: bytes) -> StoredEvent | None:
        raw = self.db.get(P_EVENT + event_id)
        if raw is None:
            return None
        height, index, encoded = decode(raw)
        return StoredEvent(Event.decode(encoded), height, index)

    def issue_commitment(self, event_id: bytes) -> bytes | None:
        """The identity commitment of a stored issue event, without parsing the whole event.

        The public proof needs only this; the store wrote these bytes itself from a checked event.
        """
        raw = self.db.get(P_EVENT + event_id)
        if raw is None:
            return None
        signed = msgpack.unpackb(msgpack.unpackb(raw)[2])
        commitment = signed[0][5][1][0]  # [unsigned, sig] -> body -> [facts, sealed] -> commitment
        return commitment if isinstance(commitment, bytes) else None

    # -- StateReader and NodeReader ---------------------------------------------------------
    def get_certificate(self, number: str) -> CertificateRecord | None:
        raw = self.db.get(P_CERT + number.encode("utf-8"))
        if raw is None:
            return None
        # The store wrote these bytes from a checked record: no canonical re-encoding check on
        # every read (the audit compares the stored bytes with what the events imply).
        return CertificateRecord.from_wire(msgpack.unpackb(raw))

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
        if record is None:
            if committed is not None:
                raise StoreCorrupt(
                    f"the record of certificate {number} is missing from the store, though the "
                    "state tree holds it"
                )
            return None
        if record.number != number or committed != record.leaf_value():
            raise StoreCorrupt(
                f"the stored record of certificate {number} does not match the state tree of "
                f"block {self.height}"
            )
        commitment = self.issue_commitment(record.issue_event_id)
        if commitment is None or certificate_digest(record.facts, commitment) != record.digest:
            raise StoreCorrupt(
                f"the stored record of certificate {number} does not match its issue event"
            )
        return record

    def has_event(self, event_id: bytes) -> bool:
        return self.db.get(P_EVENT + event_id) is not None

    def get_node(self, node_hash: bytes) -> bytes | None:
        value: bytes | None = self.db.get(P_NODE + node_hash)
        return value

    # -- writing ----------------------------------------------------------------------------
    def put_raw_block(self, block: Block, commit_certificate: bytes) -> None:
        """Store a block as received, deriving nothing: for auditing another node's chain.

        Nothing is checked here; `ledger.audit.verify_chain(..., check_derived=False)` does it.
        """
        header = block.header
        with self.db.write_batch(transaction=True, sync=False) as batch:
            leaves = [event_leaf(e.event_id, e.type, e.number) for e in block.events]
            batch.put(P_BLOCK + _h(header.height), encode([header.encoded, leaves]))
            batch.put(P_COMMIT + _h(header.height), commit_certificate)
            batch.put(P_HASH + header.hash, _h(header.height))
            for index, event in enumerate(block.events):
                batch.put(P_EVENT + event.event_id, encode([header.height, index, event.encoded]))
            batch.put(K_HEAD, encode([header.height, header.hash]))
        self._head = header

    def commit(
        self, execution: Execution, commit_certificate: bytes, pending_done: Iterable[bytes] = ()
    ) -> None:
        """Store a final block and everything derived from it, atomically and durably.

        `pending_done`: the block's events held in the pending family, deleted in this batch.
        """
        header = execution.header
        if header.height != self.height + 1:
            raise StoreError(f"cannot store block {header.height} on top of {self.height}")
        with self.db.write_batch(transaction=True, sync=True) as batch:
            for event_id in pending_done:
                batch.delete(P_PENDING + event_id)
            leaves = [event_leaf(e.event_id, e.type, e.number) for e in execution.block.events]
            batch.put(P_BLOCK + _h(header.height), encode([header.encoded, leaves]))
            batch.put(P_COMMIT + _h(header.height), commit_certificate)
            batch.put(P_HASH + header.hash, _h(header.height))
            for index, event in enumerate(execution.block.events):
                batch.put(P_EVENT + event.event_id, encode([header.height, index, event.encoded]))
            for number, record in execution.records.items():
                old = execution.previous.get(number)
                if old is not None:
                    for key in index_keys(old):
                        batch.delete(key)
                batch.put(P_CERT + number.encode("utf-8"), record.encode())
                for key in index_keys(record):
                    batch.put(key, b"")
            for node_hash, node in execution.tree_writes.items():
                if node is None:
                    batch.delete(P_NODE + node_hash)
                else:
                    batch.put(P_NODE + node_hash, node)
            self._write_stats(batch, execution)
            self._write_governance(batch, execution)
            batch.put(K_HEAD, encode([header.height, header.hash]))
        self._head = header
        if execution.next_registry is not None:
            self._registry = execution.next_registry

    def _write_governance(self, batch: Any, execution: Execution) -> None:
        header = execution.header
        if execution.next_registry is not None:
            active, suspended = activity(
                execution.block.events,
                execution.register_changes,
                header.height,
                header.time_ms,
                list(execution.next_registry.participants),
            )
            for code, time_ms in active.items():
                batch.put(P_ACTIVE + code.encode(), encode(time_ms))
            for code, time_ms in suspended.items():
                batch.put(P_SUSPENDED + code.encode(), encode(time_ms))
        following = _h(header.height + 1)
        registry = execution.next_registry
        if registry is not None and (
            self._head is None or self._head.registry_hash != header.registry_hash
        ):
            batch.put(K_REGISTRY, encode(registry.to_wire()))
        if registry is not None and header.validators_hash != header.next_validators_hash:
            batch.put(P_VALIDATORS + following, encode([v.to_wire() for v in registry.validators]))
            self._validator_sets = None
        if execution.register_changes:
            changes = [c.to_wire() for c in execution.register_changes]
            batch.put(P_REGISTER + following, encode(changes))
        for pid, record in execution.proposals.items():
            batch.put(P_PROPOSAL + pid, encode(record.to_wire()))
            slot = P_SCHEDULE + _h(record.effective_height) + pid
            if record.status in (OPEN, PASSED):
                batch.put(slot, b"")
            else:
                batch.delete(slot)

    def _write_stats(self, batch: Any, execution: Execution) -> None:
        changes = [(execution.previous.get(n), r) for n, r in execution.records.items()]
        live: dict[StatKey, Figures] = {}
        for key, delta in deltas(changes).items():
            total = self.stat(key) + delta
            live[key] = total
            if total.is_zero():
                batch.delete(P_STATS + key.encode())
            else:
                batch.put(
                    P_STATS + key.encode(),
                    encode([total.certificates, total.carats, total.value_usd]),
                )
        touched: dict[tuple[Quarter, PublicCell], int] = {}
        for (quarter, cell), count in touches(changes).items():
            total_count = self._touch_count(quarter, cell) + count
            touched[(quarter, cell)] = total_count
            batch.put(P_PUB_TOUCH + cell.encode(quarter), encode(total_count))
            batch.put(P_PUB_DIRTY + quarter.prefix().encode(), b"")
        self._publish(batch, execution.header, live, touched)

    def _touch_count(self, quarter: Quarter, cell: PublicCell) -> int:
        raw = self.db.get(P_PUB_TOUCH + cell.encode(quarter))
        return int(decode(raw)) if raw is not None else 0

    def _publish(
        self,
        batch: Any,
        header: Header,
        live: dict[StatKey, Figures],
        touched: dict[tuple[Quarter, PublicCell], int],
    ) -> None:
        """At the first block past a quarter's publication time: publish it, and revisions.

        `live` and `touched` are this block's new aggregates, not yet in the database.
        """
        registry = self.registry() or Registry.from_genesis(self.genesis)
        freeze_days = registry.parameters.stats_freeze_days
        last = self.last_published()
        if last is not None and latest_due(header.time_ms, freeze_days) <= last:
            return  # the common case: no publication, nothing read

        def live_cells(quarter: Quarter) -> dict[PublicCell, Figures]:
            return public_cells(self._live_quarter(quarter, live).items())

        def changed(quarter: Quarter) -> dict[PublicCell, int]:
            counts = {cell: n for (q, cell), n in self._touch_counts(quarter).items()}
            counts.update({cell: n for (q, cell), n in touched.items() if q == quarter})
            return counts

        dirty = {
            Quarter.from_code(int(key[len(P_PUB_DIRTY) :]))
            for key in self.db.iterator(prefix=P_PUB_DIRTY, include_value=False)
        }
        made = publication(
            height=header.height,
            time_ms=header.time_ms,
            freeze_days=freeze_days,
            last=last,
            dirty=dirty | {quarter for quarter, _ in touched},
            live=live_cells,
            changed=changed,
            published=self.published,
        )
        if made is None:  # pragma: no cover - latest_due said there is one
            return
        for (quarter, cell), published in made.cells.items():
            batch.put(P_PUB_CELL + cell.encode(quarter), encode(published.to_wire()))
        for quarter in made.settled:
            batch.delete(P_PUB_DIRTY + quarter.prefix().encode())
        batch.put(P_PUB_AT + _h(header.height), encode(made.record()))

    def _live_quarter(
        self, quarter: Quarter, overlay: dict[StatKey, Figures]
    ) -> dict[StatKey, Figures]:
        found = dict(self.stats(quarter.year, quarter.quarter))
        for key, f in overlay.items():
            if (key.year, key.quarter) == (quarter.year, quarter.quarter):
                found[key] = f
        return found

    def _touch_counts(self, quarter: Quarter) -> dict[tuple[Quarter, PublicCell], int]:
        prefix = P_PUB_TOUCH + quarter.prefix().encode() + b"/"
        return {
            PublicCell.decode(key[len(P_PUB_TOUCH) :]): int(decode(raw))
            for key, raw in self.db.iterator(prefix=prefix)
        }

    def published(self, quarter: Quarter) -> dict[PublicCell, Published]:
        """A published quarter's public cells as they were last published (empty if none)."""
        prefix = P_PUB_CELL + quarter.prefix().encode() + b"/"
        return {
            PublicCell.decode(key[len(P_PUB_CELL) :])[1]: Published.from_wire(decode(raw))
            for key, raw in self.db.iterator(prefix=prefix)
        }

    def publications(self) -> list[tuple[int, Quarter | None, Quarter, int]]:
        """Every publication: (height, last quarter published before, last after, block time)."""
        out = []
        for key, raw in self.db.iterator(prefix=P_PUB_AT):
            before, after, time_ms = decode(raw)
            height = int(struct.unpack(">Q", key[len(P_PUB_AT) :])[0])
            out.append(
                (
                    height,
                    Quarter.from_code(before) if before else None,
                    Quarter.from_code(after),
                    time_ms,
                )
            )
        return out

    def last_published(self) -> Quarter | None:
        """The latest quarter the public statistics cover (None before the first publication)."""
        for _, raw in self.db.iterator(prefix=P_PUB_AT, reverse=True):
            return Quarter.from_code(decode(raw)[1])
        return None

    def stat(self, key: StatKey) -> Figures:
        raw = self.db.get(P_STATS + key.encode())
        return Figures(*decode(raw)) if raw is not None else Figures()

    def stats(self, year: int, quarter: int | None = None) -> list[tuple[StatKey, Figures]]:
        """The statistics of a year or one quarter, from the aggregates kept per block."""
        prefix = P_STATS + (f"{year:04d}{quarter}" if quarter else f"{year:04d}").encode()
        return [
            (StatKey.decode(key[len(P_STATS) :]), Figures(*decode(value)))
            for key, value in self.db.iterator(prefix=prefix)
        ]

    # -- governance ---------------------------------------------------------------------------
    def registry(self) -> Registry | None:
        """The register in force at the next height (None before block 1: genesis's)."""
        if self._registry is None:
            raw = self.db.get(K_REGISTRY)
            if raw is not None:
                self._registry = Registry.from_wire(decode(raw))
        return self._registry

    def get_proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        raw = self.db.get(P_PROPOSAL + proposal_id)
        return None if raw is None else ProposalRecord.from_wire(decode(raw))

    def proposals(self) -> list[ProposalRecord]:
        """Every proposal ever recorded, in the order they were proposed."""
        found = [
            ProposalRecord.from_wire(decode(raw)) for _, raw in self.db.iterator(prefix=P_PROPOSAL)
        ]
        return sorted(found, key=lambda r: (r.proposed_height, r.proposal_id))

    def scheduled(self) -> list[tuple[int, bytes]]:
        """(effective height, proposal id) of the proposals still open or waiting to take effect."""
        out = []
        for key in self.db.iterator(prefix=P_SCHEDULE, include_value=False):
            rest = key[len(P_SCHEDULE) :]
            out.append((int(struct.unpack(">Q", rest[:8])[0]), rest[8:]))
        return out

    def validator_sets(self) -> list[tuple[int, tuple[Validator, ...]]]:
        """(first height in force, validators) of every set after genesis's, in height order."""
        if self._validator_sets is None:  # every public proof asks; only a commit changes it
            out = []
            for key, raw in self.db.iterator(prefix=P_VALIDATORS):
                height = int(struct.unpack(">Q", key[len(P_VALIDATORS) :])[0])
                out.append((height, tuple(Validator.from_wire(v) for v in decode(raw))))
            self._validator_sets = out
        return list(self._validator_sets)

    def last_active(self, code: str) -> int | None:
        raw = self.db.get(P_ACTIVE + code.encode())
        return None if raw is None else int(decode(raw))

    def last_suspended(self, code: str) -> int | None:
        raw = self.db.get(P_SUSPENDED + code.encode())
        return None if raw is None else int(decode(raw))

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
        out = []
        for key, raw in self.db.iterator(prefix=P_REGISTER):
            height = int(struct.unpack(">Q", key[len(P_REGISTER) :])[0])
            out.append((height, [RegisterChange.from_wire(c) for c in decode(raw)]))
        return out

    def put_signer_state(self, data: bytes) -> None:
        """What this validator signed: durable before the vote leaves the node."""
        self.db.put(K_SIGNER, data, sync=True)

    def signer_state(self) -> bytes | None:
        value: bytes | None = self.db.get(K_SIGNER)
        return value

    def note_refused(
        self, event_id: bytes, code: str, message: str, *, pending: bool = False
    ) -> None:
        """Remember why an event was refused; `pending`: it leaves the pending family with it."""
        with self.db.write_batch(transaction=True) as batch:
            batch.put(P_LOCAL + b"r/" + event_id, encode([code, message]))
            if pending:
                batch.delete(P_PENDING + event_id)

    # -- the pending family: events accepted here, durable before the node answers ------------
    def put_pending(self, events: Iterable[Event]) -> None:
        """Write accepted events in one synced batch (safe from another thread: plyvel lets go
        of the GIL while LevelDB writes, and LevelDB orders concurrent writes)."""
        with self.db.write_batch(transaction=True, sync=True) as batch:
            for event in events:
                batch.put(P_PENDING + event.event_id, event.encoded)

    def drop_pending(self, event_ids: Iterable[bytes]) -> None:
        """Delete pending events that left meanwhile (a lost delete is redone at the next start:
        a pending event found final or refused there is dropped)."""
        with self.db.write_batch(transaction=True) as batch:
            for event_id in event_ids:
                batch.delete(P_PENDING + event_id)

    def pending(self) -> Iterator[tuple[bytes, bytes]]:
        """(event id, event bytes) of every event in the pending family, in id order."""
        for key, value in self.db.iterator(prefix=P_PENDING):
            yield key[len(P_PENDING) :], value

    def note_evidence(self, evidence: bytes) -> None:
        """Keep proof that a validator signed two conflicting messages (for governance to act on)."""
        self.db.put(P_LOCAL + b"ev/" + sha256(evidence), evidence)

    def evidence(self) -> list[bytes]:
        return [value for _, value in self.db.iterator(prefix=P_LOCAL + b"ev/")]

    def refused(self, event_id: bytes) -> tuple[str, str] | None:
        raw = self.db.get(P_LOCAL + b"r/" + event_id)
        if raw is None:
            return None
        code, message = decode(raw)
        return code, message

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
        if exporting:
            prefix = P_IDX + b"e/" + exporting.encode() + b"\x00"
        elif importing:
            prefix = P_IDX + b"i/" + importing.encode() + b"\x00"
        elif status:
            prefix = P_IDX + b"s/" + status.encode() + b"\x00"
        else:
            prefix = P_IDX + b"d/"
        start = prefix + (date_from.encode() if date_from else b"")
        if cursor:
            # A page continues strictly after the last (issued_on, number) of the page before.
            issued_on, _, number = cursor.partition("/")
            start = max(start, prefix + issued_on.encode() + b"\x00" + number.encode() + b"\x00")
        found = 0
        stop = prefix[:-1] + bytes([prefix[-1] + 1])
        for key in self.db.iterator(start=start, stop=stop, include_value=False):
            issued, number_bytes = key[len(prefix) :].split(b"\x00", 1)
            if date_to and issued.decode() > date_to:
                break
            record = self.served_certificate(number_bytes.decode(), nodes)
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
        yield from self.db.iterator(prefix=P_IDX, include_value=False)

    def iter_records(self) -> Iterator[CertificateRecord]:
        for _, raw in self.db.iterator(prefix=P_CERT):
            yield CertificateRecord.decode(raw)

    def raw(self) -> Any:
        """The (checked) LevelDB handle, for the audit and tests that corrupt a store on purpose."""
        return self.db
