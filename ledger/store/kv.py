"""The key-value interface the store is written against, and MemoryKV, its in-memory backend.

The interface is small on purpose: get a key, walk a family of keys in order, and write one
atomic batch, synced to disk or not. ledger/store/leveldb.py is the backend a node runs on;
MemoryKV keeps the same contract in a sorted dict, for tests and for tools that need no disk.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class StoreListener(Protocol):
    """Told of every corruption found and every write that fails or succeeds after a failure."""

    def store_corrupt(self, reason: str) -> None: ...

    def write_failed(self, reason: str) -> None: ...

    def write_succeeded(self) -> None: ...


class Writer(Protocol):
    """The inside of one batch: puts and deletes, in order (a later one on a key wins)."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


class ReadView(Protocol):
    """The reads of a KV as they stood at one instant (`KV.snapshot()`): later batches unseen."""

    def get(self, key: bytes) -> bytes | None: ...

    def items(
        self,
        prefix: bytes | None = None,
        *,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]: ...


class KV(Protocol):
    """A sorted map of byte keys to byte values with atomic batches.

    `items` and `keys` walk either one family (`prefix`) or the range [start, stop), in key
    order or `reverse`d. `batch(sync=...)` is one atomic write: all of it lands or none (an
    exception inside the block writes nothing); with sync=True it is on disk when the block
    exits. Reads never see a batch before it lands.
    """

    listener: StoreListener | None

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...

    def get(self, key: bytes) -> bytes | None: ...

    def items(
        self,
        prefix: bytes | None = None,
        *,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]: ...

    def keys(
        self,
        prefix: bytes | None = None,
        *,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[bytes]: ...

    def batch(self, *, sync: bool = False) -> AbstractContextManager[Writer]: ...

    def snapshot(self) -> AbstractContextManager[ReadView]:
        """A consistent view for as long as the block runs: every batch whole or not at all,
        so at a final block's boundary (each block is one batch). For `kpledger snapshot`."""
        ...

    def check_files(self) -> list[str]:
        """What is wrong with the backend's own files (empty: nothing, or it has none)."""
        ...

    def compact(self) -> None:
        """Rewrite the backend's files so that overwritten and deleted entries leave the disk
        (nothing to do for a backend without files)."""
        ...


def prefix_stop(prefix: bytes) -> bytes | None:
    """The first key after every key that starts with `prefix` (None: no such key)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class _MemoryBatch:
    def __init__(self) -> None:
        self.ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self.ops.append((bytes(key), bytes(value)))

    def delete(self, key: bytes) -> None:
        self.ops.append((bytes(key), None))


class MemoryKV:
    """The KV contract in memory: a dict and its sorted keys. Nothing survives the process."""

    def __init__(self) -> None:
        self.listener: StoreListener | None = None
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._closed = False
        self.synced_batches = 0  # how many batches were written with sync=True

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise RuntimeError("the in-memory store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._refuse_if_closed()
        return self._data.get(key)

    def _range(
        self, prefix: bytes | None, start: bytes | None, stop: bytes | None, reverse: bool
    ) -> list[bytes]:
        self._refuse_if_closed()
        if prefix is not None:
            if start is not None or stop is not None:
                raise ValueError("a prefix, or a start and stop: not both")
            start, stop = prefix, prefix_stop(prefix)
        lo = 0 if start is None else bisect.bisect_left(self._keys, start)
        hi = len(self._keys) if stop is None else bisect.bisect_left(self._keys, stop)
        found = self._keys[lo:hi]  # a copy: a write while walking changes nothing seen
        return found[::-1] if reverse else found

    def items(
        self,
        prefix: bytes | None = None,
        *,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        data = self._data
        snapshot = [(key, data[key]) for key in self._range(prefix, start, stop, reverse)]
        yield from snapshot

    def keys(
        self,
        prefix: bytes | None = None,
        *,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[bytes]:
        yield from self._range(prefix, start, stop, reverse)

    @contextmanager
    def batch(self, *, sync: bool = False) -> Iterator[Writer]:
        self._refuse_if_closed()
        batch = _MemoryBatch()
        yield batch
        for key, value in batch.ops:
            if value is None:
                if self._data.pop(key, None) is not None:
                    del self._keys[bisect.bisect_left(self._keys, key)]
            else:
                if key not in self._data:
                    bisect.insort(self._keys, key)
                self._data[key] = value
        if sync:
            self.synced_batches += 1

    @contextmanager
    def snapshot(self) -> Iterator[ReadView]:
        self._refuse_if_closed()
        view = MemoryKV()
        view._data = dict(self._data)
        view._keys = list(self._keys)
        yield view

    def check_files(self) -> list[str]:
        return []

    def compact(self) -> None:
        self._refuse_if_closed()
