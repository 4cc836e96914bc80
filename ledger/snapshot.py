"""The snapshot file: a node's chain at one final height as a stream of records, and its reader.

A snapshot is the byte layout docs/snapshots.md describes: a magic line, a header (format
version, chain id, genesis hash, height, head hash, state root), the chain's key-value records in
key order, then the record count and a SHA-256 digest of everything before it. It holds the
families every node of the chain holds alike (`CHAIN_FAMILIES`), never a node's own notes
(tokens, officer accounts, webhooks, pending events, its signer state). Written and read as a
stream, never whole in memory. Pure: the shell supplies the records and the bytes.

The digest only says the file is as it was written. That the records are the chain's is shown
after loading them, by the audit (ledger/audit.py) against genesis and the commit certificates.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ledger.encoding import decode, encode
from ledger.errors import LedgerError, SnapshotDigestMismatch, SnapshotMalformed
from ledger.store import keys

MAGIC = b"KPSNAP\r\n"
FORMAT_VERSION = 1
#: Domain separation of the digest, as ledger/hashing.py's tags (tag, a zero byte, the data).
DIGEST_TAG = b"kp/snapshot/1\x00"

#: The families a snapshot holds, in key order: what the chain implies, the same on every node.
CHAIN_FAMILIES: tuple[bytes, ...] = tuple(
    sorted(
        (
            keys.P_BLOCK,
            keys.P_COMMIT,
            keys.P_EVENT,
            keys.P_GOV,
            keys.P_HASH,
            keys.K_HEAD,
            keys.K_REGISTRY,
            keys.P_CERT,
            keys.P_PUB,
            keys.P_NODE,
            keys.P_STATS,
            keys.P_IDX,
        )
    )
)
#: Of those, the ones that are one key, not a family of keys.
_SINGLE_KEYS = frozenset({keys.K_HEAD, keys.K_REGISTRY})

RECORD = b"R"
END = b"E"
_U32 = struct.Struct(">I")
HEADER_MAX = 4096
KEY_MAX = 4096
#: Larger than any stored value (a block entry is bounded by max_block_bytes, at most 64 MiB).
VALUE_MAX = 256 * 1024 * 1024
#: The record count is 4 bytes: billions of records, where a decade of KP trade makes millions.
COUNT_MAX = 2**32 - 1
#: How many bytes the writer gathers before it hands a piece of the stream on.
CHUNK = 1024 * 1024


def in_snapshot(key: bytes) -> bool:
    """Whether `key` is of a family a snapshot holds."""
    return any(
        key == family if family in _SINGLE_KEYS else key.startswith(family)
        for family in CHAIN_FAMILIES
    )


@dataclass(frozen=True)
class SnapshotHeader:
    """What a snapshot says it is: the chain (id, genesis hash) and the final head it was cut at."""

    chain_id: str
    genesis_hash: bytes
    height: int
    head_hash: bytes
    state_root: bytes
    version: int = FORMAT_VERSION

    def to_wire(self) -> list[Any]:
        return [
            self.version,
            self.chain_id,
            self.genesis_hash,
            self.height,
            self.head_hash,
            self.state_root,
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> SnapshotHeader:
        if not isinstance(obj, list) or not obj or obj[0] != FORMAT_VERSION:
            version = obj[0] if isinstance(obj, list) and obj else None
            raise SnapshotMalformed(
                f"the snapshot's format version is {version!r}; this kpledger reads version "
                f"{FORMAT_VERSION}"
            )
        if len(obj) != 6:
            raise SnapshotMalformed(
                "a snapshot header is [version, chain_id, genesis_hash, height, head_hash, "
                "state_root]"
            )
        _, chain_id, genesis_hash, height, head_hash, state_root = obj
        if not isinstance(chain_id, str) or type(height) is not int or height < 1:
            raise SnapshotMalformed("the snapshot header's chain id or height is malformed")
        for name, value in (
            ("genesis hash", genesis_hash),
            ("head hash", head_hash),
            ("state root", state_root),
        ):
            if not isinstance(value, bytes) or len(value) != 32:
                raise SnapshotMalformed(f"the snapshot header's {name} is not 32 bytes")
        return cls(chain_id, genesis_hash, height, head_hash, state_root)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.version,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash.hex(),
            "height": self.height,
            "head_hash": self.head_hash.hex(),
            "state_root": self.state_root.hex(),
        }


def write_snapshot(
    header: SnapshotHeader, records: Iterable[tuple[bytes, bytes]]
) -> Generator[bytes, None, None]:
    """The snapshot of `records` (in key order, each of a chain family) as pieces of about CHUNK
    bytes. Refuses a record out of order or of another family: the file would not read back."""
    digest = hashlib.sha256(DIGEST_TAG)
    encoded = encode(header.to_wire())
    piece = bytearray(MAGIC + _U32.pack(len(encoded)) + encoded)
    count = 0
    last: bytes | None = None
    for key, value in records:
        if not in_snapshot(key):
            raise ValueError(f"a snapshot holds no key of this family: {key[:16]!r}")
        if last is not None and key <= last:
            raise ValueError("a snapshot's records are in strictly increasing key order")
        last = key
        piece += RECORD + _U32.pack(len(key)) + key + _U32.pack(len(value)) + value
        count += 1
        if count > COUNT_MAX:
            raise ValueError(f"a snapshot holds at most {COUNT_MAX} records")
        if len(piece) >= CHUNK:
            digest.update(piece)
            yield bytes(piece)
            piece.clear()
    piece += END + _U32.pack(count)
    digest.update(piece)
    piece += digest.digest()
    yield bytes(piece)


class SnapshotReader:
    """Reads a snapshot from `read(n)` (a file's read): first `header()`, then `records()`.

    `records()` yields each record as it comes, checking the framing, the key order and the
    families, and only at the end the count and the digest: a caller writes what it is given
    somewhere it can throw away, and keeps it only once `records()` has returned without error.
    """

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._digest = hashlib.sha256(DIGEST_TAG)
        self._header: SnapshotHeader | None = None
        self.offset = 0
        self.records_read = 0

    def _take(self, n: int, what: str, *, hashed: bool = True) -> bytes:
        data = self._read(n)
        while len(data) < n:
            more = self._read(n - len(data))
            if not more:
                raise SnapshotMalformed(
                    f"the snapshot ends at byte {self.offset + len(data)}, inside {what}: "
                    "the file is truncated"
                )
            data += more
        self.offset += n
        if hashed:
            self._digest.update(data)
        return data

    def header(self) -> SnapshotHeader:
        if self._header is not None:
            return self._header
        magic = self._take(len(MAGIC), "the magic line")
        if magic != MAGIC:
            raise SnapshotMalformed(
                "this is not a kpledger snapshot (its first bytes are not one's)"
            )
        (length,) = _U32.unpack(self._take(_U32.size, "the header's length"))
        if length > HEADER_MAX:
            raise SnapshotMalformed(f"the snapshot header claims {length} bytes, more than any")
        raw = self._take(length, "the header")
        try:
            obj = decode(raw)
        except LedgerError as exc:
            raise SnapshotMalformed(f"the snapshot header does not decode: {exc.message}") from exc
        self._header = SnapshotHeader.from_wire(obj)
        return self._header

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        self.header()
        last: bytes | None = None
        while True:
            at = self.offset
            kind = self._take(1, "a record")
            if kind == END:
                break
            if kind != RECORD:
                raise SnapshotMalformed(f"byte {at} of the snapshot starts no record")
            (key_length,) = _U32.unpack(self._take(_U32.size, "a record"))
            if not 0 < key_length <= KEY_MAX:
                raise SnapshotMalformed(f"the record at byte {at} has a key of {key_length} bytes")
            key = self._take(key_length, "a record's key")
            (value_length,) = _U32.unpack(self._take(_U32.size, "a record"))
            if value_length > VALUE_MAX:
                raise SnapshotMalformed(
                    f"the record at byte {at} claims a value of {value_length} bytes"
                )
            value = self._take(value_length, "a record's value")
            if not in_snapshot(key):
                raise SnapshotMalformed(
                    f"the record at byte {at} is of a family no snapshot holds "
                    f"({key[:24]!r}): a snapshot carries the chain, never a node's own notes"
                )
            if last is not None and key <= last:
                raise SnapshotMalformed(f"the record at byte {at} is out of key order")
            last = key
            self.records_read += 1
            yield key, value
        (count,) = _U32.unpack(self._take(_U32.size, "the record count"))
        expected = self._digest.digest()
        stated = self._take(len(expected), "the digest", hashed=False)
        if count != self.records_read:
            raise SnapshotMalformed(
                f"the snapshot says it holds {count} records; {self.records_read} were read"
            )
        if stated != expected:
            raise SnapshotDigestMismatch(
                "the snapshot's digest does not match its contents: the file was changed or "
                "damaged after it was written"
            )
        if self._read(1):
            raise SnapshotMalformed("the snapshot has bytes after its digest")
