"""Snapshots of a node's chain (SPEC 10): cutting one from a store, and starting a data directory
from one, checked by the audit before it is kept (docs/snapshots.md)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ledger.block import Header
from ledger.encoding import decode
from ledger.errors import (
    SnapshotOtherChain,
    SnapshotRefused,
    SnapshotTargetInUse,
    StoreError,
)
from ledger.genesis import Genesis
from ledger.snapshot import (
    CHAIN_FAMILIES,
    SnapshotHeader,
    SnapshotReader,
    in_snapshot,
    write_snapshot,
)
from ledger.store import Store, keys
from ledger.store.kv import ReadView
from ledger.store.leveldb import LevelDB, make_private
from node.audit_pool import verify_chain_parallel

#: Records written to the new data directory per LevelDB batch while a snapshot loads.
LOAD_BATCH_BYTES = 8 * 1024 * 1024

Progress = Callable[[str, int, int], None]


def header_of(view: ReadView, genesis: Genesis) -> SnapshotHeader:
    """What a snapshot of `view` says of itself: the chain and the final head the view holds."""
    raw = view.get(keys.K_HEAD)
    if raw is None:
        raise StoreError("the node has no final block yet: there is nothing to snapshot")
    height, head_hash = decode(raw)
    entry = view.get(keys.block(height))
    if entry is None:
        raise StoreError(f"the store's head names block {height}, which it does not hold")
    header = Header.decode(decode(entry)[0])
    return SnapshotHeader(genesis.chain_id, genesis.hash, height, head_hash, header.state_root)


def chain_records(view: ReadView) -> Iterator[tuple[bytes, bytes]]:
    """Every record of the chain's families, in key order (the families are walked in order and
    share no key)."""
    for family in CHAIN_FAMILIES:
        if family in (keys.K_HEAD, keys.K_REGISTRY):
            value = view.get(family)
            if value is not None:
                yield family, value
            continue
        for key, value in view.items(family):
            if in_snapshot(key):
                yield key, value


def snapshot_stream(
    view: ReadView, genesis: Genesis
) -> tuple[SnapshotHeader, Generator[bytes, None, None]]:
    """The header of a snapshot of `view`, and the snapshot's bytes in pieces."""
    header = header_of(view, genesis)
    return header, write_snapshot(header, chain_records(view))


def write_file(pieces: Iterator[bytes], out: Path) -> int:
    """Write a snapshot to `out` whole or not at all (a partial file beside it, synced, then
    renamed); returns its size."""
    partial = out.with_name(out.name + ".partial")
    size = 0
    try:
        with partial.open("wb") as f:
            for piece in pieces:
                f.write(piece)
                size += len(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _sync_dir(out.parent)
    return size


def create_from_data(data_dir: Path, genesis: Genesis, out: Path) -> tuple[SnapshotHeader, int]:
    """A snapshot of a stopped node's data directory (a running one holds its LevelDB lock:
    StoreLocked). Returns the header and the file's size."""
    store = Store(data_dir, genesis)
    try:
        with store.kv.snapshot() as view:
            header, pieces = snapshot_stream(view, genesis)
            return header, write_file(pieces, out)
    finally:
        store.close()


def check_file(path: Path) -> tuple[SnapshotHeader, int]:
    """Read a snapshot file through, framing and digest (not the chain: restore audits that)."""
    with path.open("rb") as f:
        reader = SnapshotReader(f.read)
        header = reader.header()
        for _ in reader.records():
            pass
        return header, reader.records_read


@dataclass(frozen=True)
class Restored:
    header: SnapshotHeader
    records: int
    events: int


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load(
    f: BinaryIO, genesis: Genesis, into: Path, progress: Progress | None
) -> tuple[SnapshotHeader, int]:
    reader = SnapshotReader(f.read)
    header = reader.header()
    if header.genesis_hash != genesis.hash or header.chain_id != genesis.chain_id:
        raise SnapshotOtherChain(
            f"the snapshot is of chain {header.chain_id!r} (genesis "
            f"{header.genesis_hash.hex()[:16]}), not of this node's {genesis.chain_id!r} (genesis "
            f"{genesis.hash.hex()[:16]}): refusing to start a node of one network from another's"
        )
    total = os.fstat(f.fileno()).st_size
    kv = LevelDB(into)
    try:
        records = reader.records()
        done = False
        while not done:
            size = 0
            with kv.batch() as batch:
                for key, value in records:
                    batch.put(key, value)
                    size += len(key) + len(value)
                    if size >= LOAD_BATCH_BYTES:
                        break
                else:
                    done = True
            if progress is not None:
                progress("loading", reader.offset, total)
    finally:
        kv.close()
    return header, reader.records_read


def _clear_stale_restores(data_dir: Path) -> None:
    """Remove what a restore killed part-way left beside `data_dir` (never the data directory
    itself); refuse while another restore into it is running."""
    prefix = f".{data_dir.name}.restoring-"
    for staging in data_dir.parent.glob(prefix + "*"):
        pid = staging.name.removeprefix(prefix)
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                pass  # that restore is gone: what it left is of no use
            except PermissionError:
                raise SnapshotTargetInUse(
                    f"another restore into {data_dir} is running (process {pid})"
                ) from None
            else:
                raise SnapshotTargetInUse(
                    f"another restore into {data_dir} is running (process {pid})"
                )
        shutil.rmtree(staging, ignore_errors=True)


def restore(
    snapshot: Path,
    data_dir: Path,
    genesis: Genesis,
    *,
    workers: int = 1,
    progress: Progress | None = None,
) -> Restored:
    """Start `data_dir` from a snapshot, or leave it as it was.

    The records load into a directory beside `data_dir`; the digest is checked as the last of
    them arrives; then the audit re-verifies what they hold from genesis (every header's link
    and commit certificate under the validators in force, every event, every state root, the
    records, indexes and statistics the events imply), and the head must be the one the header
    names. Only then is the directory renamed into place. Any refusal removes it.
    """
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise SnapshotTargetInUse(
            f"the data directory {data_dir} already holds something; a restore starts an empty "
            "one (move it aside, or name another data_dir in node.toml)"
        )
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_restores(data_dir)
    staging = data_dir.with_name(f".{data_dir.name}.restoring-{os.getpid()}")
    make_private(staging)
    try:
        with snapshot.open("rb") as f:
            header, records = _load(f, genesis, staging, progress)
        try:
            # Opening writes the genesis key in a synced batch: every record loaded before it
            # is on disk too (one LevelDB log), before the directory is renamed into place.
            store = Store(staging, genesis)
        except StoreError as exc:
            raise SnapshotRefused(
                f"the loaded snapshot does not open as a store: {exc.message}"
            ) from exc
        try:
            head = store.head
            if head is None or (head.height, head.hash, head.state_root) != (
                header.height,
                header.head_hash,
                header.state_root,
            ):
                raise SnapshotRefused(
                    f"the snapshot's records end at another head than its header names (block "
                    f"{header.height}, {header.head_hash.hex()[:16]})"
                )

            def step(height: int, top: int) -> None:
                if progress is not None:
                    progress("verifying", height, top)

            step(0, header.height)
            report = verify_chain_parallel(store, genesis, progress=step, workers=workers)
        finally:
            store.close()
        if not report.ok:
            raise SnapshotRefused(
                f"the snapshot does not hold the chain it claims: after block "
                f"{report.height_checked}, {report.fault}"
            )
        if data_dir.exists():
            data_dir.rmdir()  # empty (checked above): the rename needs the name free
        os.rename(staging, data_dir)
        _sync_dir(data_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Restored(header, records, report.events_checked)
