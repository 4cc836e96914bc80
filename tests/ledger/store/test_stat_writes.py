"""A commit's statistics writes (issue 21's one-pass `changes_of`) are the writes the two-pass
functions made: the same operations, key for key, byte for byte and in the same order."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.certificate import HS_CODES, ShipmentFacts
from ledger.encoding import encode
from ledger.records import STATUSES, CertificateRecord, HistoryEntry
from ledger.stats import (
    Figures,
    PublicCell,
    Quarter,
    StatKey,
    cell_of,
    changes_of,
    contributions,
    deltas,
)
from ledger.store import keys, writes
from ledger.store.kv import MemoryKV
from ledger.store.readers import StatisticsReader

Change = tuple[CertificateRecord | None, CertificateRecord]


class Recorder:
    """A batch that keeps its operations in order."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self.ops.append(("put", key, value))

    def delete(self, key: bytes) -> None:
        self.ops.append(("delete", key, None))


@dataclass(frozen=True)
class Head:
    height: int
    time_ms: int


@dataclass(frozen=True)
class Block:
    """What write_stats reads of an Execution."""

    header: Head
    records: dict[str, CertificateRecord]
    previous: dict[str, CertificateRecord]


def touches(changes: list[Change]) -> dict[tuple[Quarter, PublicCell], int]:
    """How many certificates changed each public cell, as ledger.stats counted it before
    changes_of: each change's cells before and after, afresh."""
    out: dict[tuple[Quarter, PublicCell], int] = {}
    for old, new in changes:
        before = {cell_of(key) for key, _ in contributions(old)}
        after = {cell_of(key) for key, _ in contributions(new)}
        for cell in before ^ after:
            out[cell] = out.get(cell, 0) + 1
    return out


def old_write_stats(batch: Any, stats: StatisticsReader, execution: Any, freeze_days: int) -> None:
    """write_stats as it was before changes_of: deltas, then touches, each over every change."""
    changes = [(execution.previous.get(n), r) for n, r in execution.records.items()]
    live: dict[StatKey, Figures] = {}
    for key, delta in deltas(changes).items():
        total = stats.stat(key) + delta
        live[key] = total
        if total.is_zero():
            batch.delete(keys.stat(key))
        else:
            batch.put(keys.stat(key), encode([total.certificates, total.carats, total.value_usd]))
    touched = {}
    for (quarter, cell), count in touches(changes).items():
        total_count = stats.touch_count(quarter, cell) + count
        touched[(quarter, cell)] = total_count
        batch.put(keys.public_touch(quarter, cell), encode(total_count))
        batch.put(keys.public_dirty(quarter), b"")
    writes._publish(batch, stats, execution.header, live, touched, freeze_days)


CODES = ("BE", "AE", "IN", "RU", "EU")
FACTS = st.builds(
    lambda n, exp, imp, hs, day, carats, value: ShipmentFacts(
        number=f"BE-{n}",
        exporting_participant=exp,
        importing_participant=imp,
        origin=("BW",),
        hs_code=hs,
        carats=carats,
        value_usd=value,
        parcels=1,
        issued_on=date(2025, 10, 1) + timedelta(days=day),
        expires_on=date(2027, 1, 1),
        replaces=None,
    ),
    st.integers(1, 40),
    st.sampled_from(CODES),
    st.sampled_from(CODES),
    st.sampled_from(HS_CODES),
    st.integers(0, 400),
    st.integers(1, 10**6),
    st.integers(0, 10**8),
)
RECORDS = st.builds(
    lambda facts, status: CertificateRecord(
        facts, b"d" * 32, status, (HistoryEntry(b"e" * 32, "certificate.issue", 1, 1),)
    ),
    FACTS,
    st.sampled_from(STATUSES),
)


@st.composite
def blocks(draw: Any) -> list[Change]:
    """A block's changes: new certificates, and old ones moved to another status (the same
    facts, or, rarely, others: a historical record's first account replaced)."""
    changes: dict[str, Change] = {}
    for new in draw(st.lists(RECORDS, max_size=30)):
        old: CertificateRecord | None = None
        if draw(st.booleans()):
            old = draw(RECORDS)
            old = replace(old, facts=replace(old.facts, number=new.number))
            if draw(st.booleans()):
                old = replace(new, status=old.status)
        changes[new.number] = (old, new)
    return list(changes.values())


def block_of(changes: list[Change], height: int, time_ms: int) -> Block:
    return Block(
        Head(height, time_ms),
        {new.number: new for _, new in changes},
        {old.number: old for old, _ in changes if old is not None},
    )


def ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


@settings(max_examples=200, deadline=None)
@given(blocks())
def test_changes_of_is_deltas_and_touches_in_their_order(changes: list[Change]) -> None:
    moved, touched = changes_of(changes)
    assert list(moved.items()) == list(deltas(changes).items())
    assert list(touched.items()) == list(touches(changes).items())


@settings(max_examples=100, deadline=None)
@given(blocks(), blocks(), st.integers(0, 500), st.sampled_from([0, 30]))
def test_a_commits_statistics_writes_are_the_writes_they_were(
    first: list[Change], second: list[Change], days: int, freeze_days: int
) -> None:
    """After a first block (with its publications, if due) is stored, the next block's batch is
    the same, operation for operation, whether made by write_stats or by the code before it."""
    kv = MemoryKV()
    stats = StatisticsReader(kv)
    day = date(2026, 1, 1) + timedelta(days=days)
    with kv.batch() as batch:
        writes.write_stats(batch, stats, block_of(first, 1, ms(day)), freeze_days)
    after = block_of(second, 2, ms(day + timedelta(days=days % 120)))
    new, old = Recorder(), Recorder()
    writes.write_stats(new, stats, after, freeze_days)
    old_write_stats(old, stats, after, freeze_days)
    assert new.ops == old.ops
    # And the first block's writes, made on an empty store.
    new, old = Recorder(), Recorder()
    empty = StatisticsReader(MemoryKV())
    writes.write_stats(new, empty, block_of(first, 1, ms(day)), freeze_days)
    old_write_stats(old, empty, block_of(first, 1, ms(day)), freeze_days)
    assert new.ops == old.ops
