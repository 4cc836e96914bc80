"""What one final block writes: the block itself and everything derived from it, into one batch.

Each function adds one part to the batch in the order the store has always written them (the
LevelDB log holds a batch's operations in that order). Reads go through the readers, so they
see the store before the batch, never the batch itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.block import Header
from ledger.chain import Execution
from ledger.encoding import encode
from ledger.events import Event
from ledger.governance import OPEN, PASSED, activity
from ledger.stats import (
    Figures,
    PublicCell,
    Quarter,
    StatKey,
    changes_of,
    latest_due,
    public_cells,
    publication,
)
from ledger.store import keys
from ledger.store.kv import Writer
from ledger.store.readers import StatisticsReader


def write_block(
    batch: Writer, header: Header, events: Iterable[Event], commit_certificate: bytes
) -> None:
    """The block, its commit certificate, its hash index entry and its events."""
    events = tuple(events)
    leaves = [e.leaf for e in events]
    batch.put(keys.block(header.height), encode([header.encoded, leaves]))
    batch.put(keys.commit(header.height), commit_certificate)
    batch.put(keys.header_hash(header.hash), keys.height(header.height))
    for index, event in enumerate(events):
        batch.put(keys.event(event.event_id), encode([header.height, index, event.encoded]))


def write_head(batch: Writer, header: Header) -> None:
    batch.put(keys.K_HEAD, encode([header.height, header.hash]))


def write_records(batch: Writer, execution: Execution) -> None:
    """Each changed certificate record and its index entries (the old entries deleted)."""
    for number, record in execution.records.items():
        old = execution.previous.get(number)
        if old is not None:
            for key in keys.index_keys(old):
                batch.delete(key)
        batch.put(keys.certificate(number), record.encode())
        for key in keys.index_keys(record):
            batch.put(key, b"")


def write_state_tree(batch: Writer, execution: Execution) -> None:
    for node_hash, node in execution.tree_writes.items():
        if node is None:
            batch.delete(keys.state_node(node_hash))
        else:
            batch.put(keys.state_node(node_hash), node)


def write_stats(
    batch: Writer, stats: StatisticsReader, execution: Execution, freeze_days: int
) -> None:
    """The aggregates the block's changes move, what they touch, and any publication now due."""
    changes = [(execution.previous.get(n), r) for n, r in execution.records.items()]
    moved, touched_now = changes_of(changes)
    live: dict[StatKey, Figures] = {}
    for key, delta in moved.items():
        total = stats.stat(key) + delta
        live[key] = total
        if total.is_zero():
            batch.delete(keys.stat(key))
        else:
            batch.put(keys.stat(key), encode([total.certificates, total.carats, total.value_usd]))
    touched: dict[tuple[Quarter, PublicCell], int] = {}
    for (quarter, cell), count in touched_now.items():
        total_count = stats.touch_count(quarter, cell) + count
        touched[(quarter, cell)] = total_count
        batch.put(keys.public_touch(quarter, cell), encode(total_count))
        batch.put(keys.public_dirty(quarter), b"")
    _publish(batch, stats, execution.header, live, touched, freeze_days)


def _publish(
    batch: Writer,
    stats: StatisticsReader,
    header: Header,
    live: dict[StatKey, Figures],
    touched: dict[tuple[Quarter, PublicCell], int],
    freeze_days: int,
) -> None:
    """At the first block past a quarter's publication time: publish it, and revisions.

    `live` and `touched` are this block's new aggregates, not yet in the database.
    """
    last = stats.last_published()
    if last is not None and latest_due(header.time_ms, freeze_days) <= last:
        return  # the common case: no publication, nothing read

    def live_quarter(quarter: Quarter) -> dict[StatKey, Figures]:
        found = dict(stats.stats(quarter.year, quarter.quarter))
        for key, f in live.items():
            if (key.year, key.quarter) == (quarter.year, quarter.quarter):
                found[key] = f
        return found

    def live_cells(quarter: Quarter) -> dict[PublicCell, Figures]:
        return public_cells(live_quarter(quarter).items())

    def changed(quarter: Quarter) -> dict[PublicCell, int]:
        counts = {cell: n for (q, cell), n in stats.touch_counts(quarter).items()}
        counts.update({cell: n for (q, cell), n in touched.items() if q == quarter})
        return counts

    made = publication(
        height=header.height,
        time_ms=header.time_ms,
        freeze_days=freeze_days,
        last=last,
        dirty=stats.dirty() | {quarter for quarter, _ in touched},
        live=live_cells,
        changed=changed,
        published=stats.published,
    )
    if made is None:  # pragma: no cover - latest_due said there is one
        return
    for (quarter, cell), published in made.cells.items():
        batch.put(keys.public_cell(quarter, cell), encode(published.to_wire()))
    for quarter in made.settled:
        batch.delete(keys.public_dirty(quarter))
    batch.put(keys.publication(header.height), encode(made.record()))


def write_governance(batch: Writer, execution: Execution, previous: Header | None) -> bool:
    """Activity, the register, validator sets, the register's history and proposals.

    `previous` is the head before this block. True when a new validator set was written.
    """
    header = execution.header
    registry = execution.next_registry
    if registry is not None:
        active, suspended = activity(
            execution.block.events,
            execution.register_changes,
            header.height,
            header.time_ms,
            list(registry.participants),
        )
        for code, time_ms in active.items():
            batch.put(keys.active(code), encode(time_ms))
        for code, time_ms in suspended.items():
            batch.put(keys.suspended(code), encode(time_ms))
    following = header.height + 1
    if registry is not None and (
        previous is None or previous.registry_hash != header.registry_hash
    ):
        batch.put(keys.K_REGISTRY, encode(registry.to_wire()))
    new_validators = registry is not None and header.validators_hash != header.next_validators_hash
    judged_by = execution.judged_by
    if (
        previous is not None
        and judged_by is not None
        and header.validators_hash != previous.next_validators_hash
    ):
        # An emergency recovery: the set that signs this block is not the one its parent named.
        batch.put(
            keys.validators(header.height), encode([v.to_wire() for v in judged_by.validators])
        )
        new_validators = True
    if registry is not None and new_validators:
        batch.put(keys.validators(following), encode([v.to_wire() for v in registry.validators]))
    if execution.register_changes:
        changes = [c.to_wire() for c in execution.register_changes]
        batch.put(keys.register(following), encode(changes))
    for pid, record in execution.proposals.items():
        slot = keys.schedule(record.effective_height, pid)
        batch.put(keys.proposal(pid), encode(record.to_wire()))
        if record.status in (OPEN, PASSED):
            batch.put(slot, b"")
        else:
            batch.delete(slot)
    return new_validators
