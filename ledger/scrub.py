"""`kpledger store scrub`: read a whole store back and check each part against what vouches for it.

Cheaper than the audit (no signature and no re-execution): every LevelDB table's footer and
every block's checksum (every key and value is read with verify_checksums), every header against
its hash index, every event against its id, every certificate record against the state tree of
the head and its issue event, every index entry against the records, and every state tree node
against its hash. What it finds is listed; it changes nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from ledger.block import Header
from ledger.encoding import decode
from ledger.errors import LedgerError, StoreError
from ledger.events import Event
from ledger.state import CertificateRecord
from ledger.statetree import EMPTY, _Internal, _load
from ledger.store import P_BLOCK, P_CERT, P_EVENT, P_HASH, P_IDX, Store, index_keys

#: Past this many, the rest of the problems are counted, not listed.
MAX_LISTED = 100


@dataclass
class ScrubReport:
    height: int = 0
    blocks: int = 0
    events: int = 0
    certificates: int = 0
    state_nodes: int = 0
    problems: list[str] = field(default_factory=list)
    more: int = 0  # problems found past MAX_LISTED

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)
        else:
            self.more += 1


def scrub(store: Store) -> ScrubReport:
    """Check every part of `store`; a corruption is a problem in the report, never raised."""
    report = ScrubReport(height=store.height)
    for problem in store.db.check_tables():
        report.add(problem)
    for name, check in (
        ("blocks", _blocks),
        ("events", _events),
        ("certificates", _certificates),
        ("state tree", _state_tree),
    ):
        try:
            check(store, report)
        except StoreError as exc:
            report.add(f"{name}: {exc.message}")
    return report


def _blocks(store: Store, report: ScrubReport) -> None:
    for height in range(1, store.height + 1):
        raw = store.db.get(P_BLOCK + struct.pack(">Q", height))
        if raw is None:
            report.add(f"block {height} is missing")
            continue
        try:
            header_bytes, leaves = decode(raw)
            header = Header.decode(header_bytes)
        except (LedgerError, ValueError, TypeError) as exc:
            report.add(f"block {height} does not decode: {exc}")
            continue
        report.blocks += 1
        if header.height != height or len(leaves) != header.event_count:
            report.add(f"block {height}'s stored entry does not match its header")
        if store.db.get(P_HASH + header.hash) != struct.pack(">Q", height):
            report.add(f"block {height}'s header does not hash to the hash its index names")


def _events(store: Store, report: ScrubReport) -> None:
    for key, raw in store.db.iterator(prefix=P_EVENT):
        event_id = key[len(P_EVENT) :]
        try:
            height, _index, encoded = decode(raw)
            event = Event.decode(encoded)
        except (LedgerError, ValueError, TypeError) as exc:
            report.add(f"event {event_id.hex()} does not decode: {exc}")
            continue
        report.events += 1
        if event.event_id != event_id or not 1 <= height <= store.height:
            report.add(f"event {event_id.hex()} is altered: its bytes are another event's")


def _certificates(store: Store, report: ScrubReport) -> None:
    expected: set[bytes] = set()
    for key, raw in store.db.iterator(prefix=P_CERT):
        number = key[len(P_CERT) :].decode("utf-8", errors="replace")
        try:
            record = CertificateRecord.decode(raw)
        except (LedgerError, ValueError, TypeError, KeyError, IndexError) as exc:
            report.add(f"certificate {number}: the record does not decode ({exc})")
            continue
        report.certificates += 1
        try:
            store.served_certificate(number)
        except StoreError as exc:
            report.add(exc.message)
        expected.update(index_keys(record))
    found = set(_keys(store, P_IDX))
    if missing := len(expected - found):
        report.add(f"{missing} index entries the certificate records imply are missing")
    if extra := len(found - expected):
        report.add(f"{extra} index entries name no certificate record as it stands")


def _keys(store: Store, prefix: bytes) -> Iterator[bytes]:
    yield from store.db.iterator(prefix=prefix, include_value=False)


def _state_tree(store: Store, report: ScrubReport) -> None:
    """Every node reachable from the head's state root, each checked against its hash."""
    pending = [store.state_root] if store.state_root != EMPTY else []
    leaves = 0
    while pending:
        node = _load(store, pending.pop())
        report.state_nodes += 1
        if isinstance(node, _Internal):
            pending.extend(h for h in (node.left, node.right) if h != EMPTY)
        else:
            leaves += 1
    if leaves != report.certificates:
        report.add(
            f"the state tree holds {leaves} certificates, the store {report.certificates} records"
        )
