"""The LevelDB backend of the store: the one module that imports plyvel or touches its files.

Every read is checksummed and every LevelDB error typed (StoreCorrupt, StoreWriteFailed,
StoreLocked, StoreError); the data directory is made private; each live table's footer is
checked on opening, because LevelDB skips a table with a damaged footer without a word.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import plyvel

from ledger.errors import StoreCorrupt, StoreError, StoreLocked, StoreWriteFailed
from ledger.store.kv import ReadView, StoreListener, Writer

#: The data directory and every file in it are the node's own: carats, values and identities
#: (sealed, but the node's own opened ones in its indexes) are in them.
DATA_DIR_MODE = 0o700
DATA_FILE_MODE = 0o600

_log = logging.getLogger("kpledger.store")

#: LevelDB's table blocks: its default, 4 KiB. Larger blocks compress better (the same
#: countries, codes, types and dates recur from one entry to the next): a store of 150,000 events
#: written in the order a node writes it, compacted, takes 761 B an event at 4 KiB, 714 at 16
#: KiB and 683 at 32 KiB. But a read of an entry that no cache holds checksums and decompresses
#: its whole block: a random event read took 4 to 5 µs at 4 KiB and 17 to 19 µs at 16 KiB, which
#: the public lookups (about five such reads) and the audit (every event, by its id) pay. Not
#: worth 6% of the disk (docs/performance.md, "Kept: LevelDB's Bloom filters and write buffer").
BLOCK_SIZE = 4 * 1024
#: Bits per key of each table's Bloom filter. Most point reads a node makes at admission are of
#: keys that are not there (is this event already final? is this number new?), and without a
#: filter LevelDB reads, checksums and decompresses a block of every level to learn it: 2.9 µs
#: a read at 4 KiB blocks, 0.7 µs with the filter (13.2 µs at 16 KiB; a 100,000-certificate
#: store). It costs about 1% more disk (8 B an event).
BLOOM_FILTER_BITS = 10
#: LevelDB's write buffer (its default is 4 MiB): the writes held in memory, and in the log,
#: before they become a table. Much of what a node writes is deleted again within seconds (state
#: tree nodes that the next block replaces, the pending events that become final): in a larger
#: buffer more of it meets its deletion in the first compaction instead of being merged down
#: level after level. LevelDB's own thread spent 90 µs an event at 4 MiB and 28 at 64 MiB
#: (`scripts/bench_core.py --events 150000`). It costs up to twice this much memory (the
#: buffer and the one being written out) and a longer log to replay at start.
WRITE_BUFFER_SIZE = 64 * 1024 * 1024

_CORRUPT_ADVICE = (
    "the node will not start on it (`kpledger store scrub --data DIR` reports what is damaged; "
    "resync the node from its peers into an empty data directory)"
)


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
#: Listings of the live tables check_files tries while compactions keep changing it.
_LISTINGS = 10


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


def _detail(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else exc
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


class LevelDB:
    """A LevelDB directory behind the KV interface, every read checksummed, every error typed.

    Reads pass verify_checksums=True (plyvel's default checks none); a corruption LevelDB reports
    becomes StoreCorrupt and a failed write StoreWriteFailed, so that no caller mistakes either
    for an absent key or lets a plyvel exception escape as a traceback. `listener` (the node's
    health) hears of each.
    """

    def __init__(self, path: Path | str) -> None:
        """Open (or create) the LevelDB directory at `path`, made private, its tables checked."""
        path = Path(path)
        self.path = path
        self.listener: StoreListener | None = None
        self._failing = False
        try:
            make_private(path)
        except OSError as exc:
            raise StoreError(f"cannot make the data directory {path} private: {exc}") from exc
        try:
            self._db = plyvel.DB(
                str(path),
                create_if_missing=True,
                paranoid_checks=True,
                block_size=BLOCK_SIZE,
                bloom_filter_bits=BLOOM_FILTER_BITS,
                write_buffer_size=WRITE_BUFFER_SIZE,
            )
        except plyvel.CorruptionError as exc:
            raise StoreCorrupt(
                f"the store at {path} is corrupt and cannot be opened: {exc}; {_CORRUPT_ADVICE}"
            ) from exc
        except plyvel.IOError as exc:
            if b"lock" in str(exc).encode() or "lock" in str(exc).lower():
                raise StoreLocked(
                    f"the data directory {path} is in use by another process "
                    "(a node is already running on it)"
                ) from exc
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        except plyvel.Error as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        problems = self.check_files()
        if problems:
            self.close()
            raise StoreCorrupt(
                f"the store at {path} is corrupt: {'; '.join(problems)}; {_CORRUPT_ADVICE}"
            )

    @property
    def closed(self) -> bool:
        return bool(self._db.closed)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def _corrupt(self, exc: Exception) -> StoreCorrupt:
        error = StoreCorrupt(f"the store at {self.path} is corrupt: {_detail(exc)}")
        if self.listener is not None:
            self.listener.store_corrupt(error.message)
        return error

    def get(self, key: bytes) -> bytes | None:
        return self._get(self._db, key)

    def _get(self, source: Any, key: bytes) -> bytes | None:
        """A checksummed read of the database or of one of its snapshots (`source`), its
        errors typed as the store's."""
        try:
            value: bytes | None = source.get(key, verify_checksums=True)
        except plyvel.CorruptionError as exc:
            raise self._corrupt(exc) from exc
        except plyvel.Error as exc:
            raise StoreError(f"cannot read the store at {self.path}: {exc}") from exc
        return value

    def _iterate(self, source: Any = None, **kwargs: Any) -> Iterator[Any]:
        """A checksummed walk of the database or of one of its snapshots (`source`)."""
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        try:
            reader = self._db if source is None else source
            with reader.iterator(verify_checksums=True, **kwargs) as it:
                yield from it
        except plyvel.CorruptionError as exc:
            raise self._corrupt(exc) from exc
        except plyvel.Error as exc:
            raise StoreError(f"cannot read the store at {self.path}: {exc}") from exc

    def items(
        self,
        prefix: bytes | None = None,
        *,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._iterate(prefix=prefix, start=start, stop=stop, reverse=reverse)

    def keys(
        self,
        prefix: bytes | None = None,
        *,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[bytes]:
        return self._iterate(
            prefix=prefix, start=start, stop=stop, reverse=reverse, include_value=False
        )

    def _write_failed(self, exc: Exception) -> StoreWriteFailed:
        error = StoreWriteFailed(f"cannot write to the store at {self.path}: {_detail(exc)}")
        self._failing = True
        if self.listener is not None:
            self.listener.write_failed(error.message)
        return error

    @contextmanager
    def batch(self, *, sync: bool = False) -> Iterator[Writer]:
        try:
            with self._db.write_batch(transaction=True, sync=sync) as batch:
                yield batch
        except plyvel.Error as exc:
            raise self._write_failed(exc) from exc
        if self._failing:
            self._failing = False
            if self.listener is not None:
                self.listener.write_succeeded()

    @contextmanager
    def snapshot(self) -> Iterator[ReadView]:
        """A LevelDB snapshot: the database as it stood when the block began (every read of it
        checksummed and typed as the database's own), released when the block ends."""
        try:
            snap = self._db.snapshot()
        except plyvel.Error as exc:
            raise StoreError(f"cannot take a snapshot of the store at {self.path}: {exc}") from exc
        try:
            yield _SnapshotView(self, snap)
        finally:
            snap.close()

    def compact(self) -> None:
        """Compact the whole database: the memtable moves into tables and every table is
        rewritten, so overwritten and deleted entries leave the disk.

        plyvel's compact_range() without bounds only flushes the memtable (LevelDB 1.22: the
        tables stay as they were; on a chain of 1,000,000 events, 903 B an event before and after
        it), so the first and the last key bound it.
        """
        try:
            first = next(self._db.iterator(include_value=False), None)
            if first is None:
                self._db.compact_range()  # only a memtable, if anything: nothing else to merge
                return
            last = next(self._db.iterator(include_value=False, reverse=True))
            self._db.compact_range(start=first, stop=last)
        except plyvel.CorruptionError as exc:
            raise self._corrupt(exc) from exc
        except plyvel.Error as exc:
            raise self._write_failed(exc) from exc

    def check_files(self) -> list[str]:
        """What is wrong with the live tables (check_tables), as of one unchanged listing.

        LevelDB may be compacting meanwhile: at open it merges level 0 once four tables are
        there (every reopen turns the last log into one), and deletes the tables it merged. One
        of those, listed just before, is then gone when it is looked at. So the tables are
        listed again after the look: a problem stands only if the listing did not change (no
        table leaves the listing but by a compaction, and a listed table is never deleted)."""
        listed = self._sstables()
        for _ in range(_LISTINGS):
            problems = check_tables(self.path, listed)
            now = self._sstables()
            if not problems or now == listed:
                return problems
            listed = now
        return problems

    def _sstables(self) -> bytes:
        listing: bytes | None = self._db.get_property(b"leveldb.sstables")
        return listing or b""


class _SnapshotView:
    """Reads of one plyvel snapshot, checksummed and their errors typed as LevelDB's own."""

    def __init__(self, db: LevelDB, snap: Any) -> None:
        self._db = db
        self._snap = snap

    def get(self, key: bytes) -> bytes | None:
        return self._db._get(self._snap, key)

    def items(
        self,
        prefix: bytes | None = None,
        *,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._db._iterate(self._snap, prefix=prefix, start=start, stop=stop, reverse=reverse)
