"""`kpledger store scrub`: read a whole store back and check each part against what vouches for it.

Cheaper than the audit (no signature and no re-execution): every LevelDB table's footer and
every block's checksum (every key and value is read with verify_checksums), every header against
its hash index, every event against its id, every certificate record against the state tree of
the head and its issue event, every index entry against the records, and every state tree node
against its hash. What it finds is listed; it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.block import Header
from ledger.encoding import decode
from ledger.errors import LedgerError, StoreError
from ledger.events import Event
from ledger.records import CertificateRecord
from ledger.statetree import EMPTY, HASH_SIZE, _Internal, _load
from ledger.store import Store, keys

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
    for problem in store.check_files():
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
        raw = store.readers.blocks.entry(height)
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
        if not store.readers.blocks.indexed_at(header.hash, height):
            report.add(f"block {height}'s header does not hash to the hash its index names")


def _events(store: Store, report: ScrubReport) -> None:
    for event_id, raw in store.readers.events.entries():
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
    for number, raw in store.readers.certificates.entries():
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
        expected.update(keys.index_keys(record))
    found = set(store.readers.indexes.keys())
    if missing := len(expected - found):
        report.add(f"{missing} index entries the certificate records imply are missing")
    if extra := len(found - expected):
        report.add(f"{extra} index entries name no certificate record as it stands")


def _state_tree(store: Store, report: ScrubReport) -> None:
    """Every node reachable from the head's state root, each checked against its hash (a leaf
    held inline by its parent with the parent's bytes)."""
    pending = [store.state_root] if store.state_root != EMPTY else []
    leaves = 0
    while pending:
        node = _load(store.readers.state_nodes, pending.pop())
        report.state_nodes += 1
        if isinstance(node, _Internal):
            for child in (node.left, node.right):
                if len(child) != HASH_SIZE:
                    leaves += 1
                elif child != EMPTY:
                    pending.append(child)
        else:
            leaves += 1
    if leaves != report.certificates:
        report.add(
            f"the state tree holds {leaves} certificates, the store {report.certificates} records"
        )
