"""The snapshot file format (ledger/snapshot.py): it reads back what was written, and any byte
changed anywhere, a truncation, a record of a node's own family or out of order is refused."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError, SnapshotDigestMismatch, SnapshotMalformed
from ledger.snapshot import (
    FORMAT_VERSION,
    MAGIC,
    SnapshotHeader,
    SnapshotReader,
    in_snapshot,
    write_snapshot,
)
from ledger.store import keys

HEADER = SnapshotHeader("kp-test", b"\x01" * 32, 7, b"\x02" * 32, b"\x03" * 32)
RECORDS = [
    (keys.block(1), b"block one"),
    (keys.block(7), b"block seven" * 20),
    (keys.commit(7), b"commit"),
    (keys.K_HEAD, b"head"),
    (keys.certificate("BE-2026-1"), b"record"),
    (keys.state_node(b"\x09" * 32), b""),
]


def snapshot_bytes(records: list[tuple[bytes, bytes]] = RECORDS) -> bytes:
    return b"".join(write_snapshot(HEADER, sorted(records)))


def read_all(data: bytes) -> tuple[SnapshotHeader, list[tuple[bytes, bytes]]]:
    reader = SnapshotReader(io.BytesIO(data).read)
    header = reader.header()
    return header, list(reader.records())


def test_a_snapshot_reads_back_as_written() -> None:
    data = snapshot_bytes()
    assert data.startswith(MAGIC)
    header, records = read_all(data)
    assert header == HEADER and header.version == FORMAT_VERSION
    assert records == sorted(RECORDS)


def test_the_families_are_the_chain_and_never_a_nodes_own() -> None:
    for key in (keys.block(1), keys.event(b"\x00" * 32), keys.K_HEAD, keys.K_REGISTRY,
                keys.validators(3), keys.P_STATS + b"x"):  # fmt: skip
        assert in_snapshot(key), key
    for key in (
        keys.K_SIGNER,
        keys.K_GENESIS,
        keys.api_token("admin"),
        keys.officer("alice"),
        keys.pending(b"\x00" * 32),
        keys.webhook_settings("w1"),
        keys.signed_block(3, b"\x00" * 32),
        keys.activity(1),
        b"m/headless",
    ):
        assert not in_snapshot(key), key


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_byte_changed_anywhere_is_refused(data: st.DataObject) -> None:
    """Header, a record's framing, key or value, the count or the digest: one byte differs and
    the reader refuses the file (a digest mismatch, or a frame that no longer parses)."""
    original = snapshot_bytes()
    at = data.draw(st.integers(0, len(original) - 1), label="position")
    flip = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(original)
    tampered[at] ^= flip
    with pytest.raises((SnapshotMalformed, SnapshotDigestMismatch)):
        read_all(bytes(tampered))


@pytest.mark.parametrize("where", ["header", "record", "digest"])
def test_named_positions_are_refused_with_a_clear_error(where: str) -> None:
    original = snapshot_bytes()
    at = {
        "header": len(MAGIC) + 4 + 3 + 2,  # the third letter of the header's chain id
        "record": original.index(b"block seven") + 3,
        "digest": len(original) - 1,
    }[where]
    tampered = bytearray(original)
    tampered[at] ^= 0x20
    with pytest.raises(SnapshotDigestMismatch) as refused:
        read_all(bytes(tampered))
    assert "changed or damaged" in refused.value.message


def test_truncation_and_trailing_bytes_are_refused() -> None:
    original = snapshot_bytes()
    for cut in (3, len(MAGIC) + 2, len(original) // 2, len(original) - 1):
        with pytest.raises(SnapshotMalformed) as refused:
            read_all(original[:cut])
        assert "truncated" in refused.value.message
    with pytest.raises(SnapshotMalformed, match="after its digest"):
        read_all(original + b"\x00")
    with pytest.raises(SnapshotMalformed, match="not a kpledger snapshot"):
        read_all(b"PK\x03\x04" + original[4:])


def test_a_nodes_own_record_is_refused_even_with_a_good_digest() -> None:
    """A snapshot made to carry an admin token (or any note of a node's own) is refused, though
    its digest is recomputed over it."""
    forged = _frames([*RECORDS, (keys.api_token("intruder"), b"hash")])
    with pytest.raises(SnapshotMalformed, match="never a node's own notes"):
        read_all(forged)


def test_records_out_of_order_are_refused() -> None:
    forged = _frames(list(reversed(sorted(RECORDS))))
    with pytest.raises(SnapshotMalformed, match="out of key order"):
        read_all(forged)
    with pytest.raises(ValueError):
        list(write_snapshot(HEADER, list(reversed(sorted(RECORDS)))))


def test_another_format_version_is_refused() -> None:
    future = SnapshotHeader("kp-test", b"\x01" * 32, 7, b"\x02" * 32, b"\x03" * 32, version=2)
    data = b"".join(write_snapshot(future, []))
    with pytest.raises(SnapshotMalformed, match="format version is 2"):
        read_all(data)


def _frames(records: list[tuple[bytes, bytes]]) -> bytes:
    """A file framed and digested as the writer would, but without its checks (a forger's)."""
    import hashlib
    import struct

    from ledger.encoding import encode
    from ledger.snapshot import DIGEST_TAG, END, RECORD

    body = bytearray(MAGIC)
    header = encode(HEADER.to_wire())
    body += struct.pack(">I", len(header)) + header
    for key, value in records:
        body += RECORD + struct.pack(">I", len(key)) + key + struct.pack(">I", len(value)) + value
    body += END + struct.pack(">I", len(records))
    return bytes(body) + hashlib.sha256(DIGEST_TAG + bytes(body)).digest()


def test_errors_are_ledger_errors_with_codes() -> None:
    assert issubclass(SnapshotMalformed, LedgerError) and SnapshotMalformed.code
    assert SnapshotDigestMismatch.code == "snapshot_digest_mismatch"
