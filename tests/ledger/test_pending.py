"""The durable mempool's bookkeeping: group commit, what a write allows, and re-gossip."""

from __future__ import annotations

from ledger.pending import (
    REGOSSIP_AFTER_MS,
    REGOSSIP_MAX_MS,
    REGOSSIP_TAKEN_MS,
    PendingBook,
)

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32
P1, P2, P3 = b"1" * 32, b"2" * 32, b"3" * 32


def test_an_accepted_event_is_not_durable_until_its_write_returns() -> None:
    book = PendingBook()
    book.accepted(A, 0)
    assert not book.is_durable(A)
    batch = book.next_write()
    assert batch is not None and batch.event_ids == (A,)
    assert not book.is_durable(A)  # on disk, not yet synced
    written = book.written(batch)
    assert written.durable == (A,) and written.stale == ()
    assert book.is_durable(A) and A in book


def test_events_accepted_during_a_write_go_together_in_the_next() -> None:
    book = PendingBook()
    book.accepted(A, 0)
    first = book.next_write()
    assert first is not None
    book.accepted(B, 1)
    book.accepted(C, 1)
    assert book.next_write() is None  # one write on disk at a time
    book.written(first)
    second = book.next_write()
    assert second is not None and second.event_ids == (B, C)
    assert book.next_write() is None


def test_an_event_final_before_its_write_returns_is_deleted_after_it() -> None:
    book = PendingBook()
    book.accepted(A, 0)
    book.accepted(B, 0)
    batch = book.next_write()
    assert batch is not None
    # A's block commits while the write is on disk: nothing of A's is stored yet to delete...
    assert book.left([A]) == []
    written = book.written(batch)
    # ...and the key the write put there is deleted once it returns; its request is answered.
    assert written.stale == (A,) and set(written.durable) == {A, B}
    assert A not in book and B in book
    # B, stored, leaves in its block's batch.
    assert book.left([B]) == [B]
    assert len(book) == 0


def test_an_event_final_before_its_write_begins_is_never_written() -> None:
    book = PendingBook()
    book.accepted(A, 0)
    assert book.left([A]) == []
    assert book.is_durable(A)  # final: nothing to wait for
    assert book.next_write() is None


def test_a_failed_write_queues_its_events_again() -> None:
    book = PendingBook()
    book.accepted(A, 0)
    batch = book.next_write()
    assert batch is not None
    assert book.write_failed(batch) == (A,)
    assert not book.is_durable(A) and book.queued()
    again = book.next_write()
    assert again is not None and again.event_ids == (A,)


def test_events_this_node_never_answered_for_need_no_write() -> None:
    book = PendingBook()
    assert book.is_durable(A)  # a peer's event, or one long final
    book.restored(B, 0)
    assert book.is_durable(B) and book.next_write() is None


def test_a_peer_that_never_took_an_event_gets_it_again_at_growing_intervals() -> None:
    book = PendingBook()
    book.accepted(A, 0)
    assert book.due(REGOSSIP_AFTER_MS - 1, [P1]) == {}  # the outbox sends it first
    book.sent([A], P1, 10)  # the first gossip; its answer is lost
    assert book.due(10 + REGOSSIP_AFTER_MS - 1, [P1]) == {}
    now = 10 + REGOSSIP_AFTER_MS
    assert book.due(now, [P1]) == {P1: [A]}
    intervals = []
    for _ in range(6):
        book.sent([A], P1, now)
        nxt = now + 1
        while not book.due(nxt, [P1]):
            nxt += 1
        intervals.append(nxt - now)
        now = nxt
    assert intervals[0] == 2 * REGOSSIP_AFTER_MS
    assert intervals == sorted(intervals) and intervals[-1] == REGOSSIP_MAX_MS


def test_a_peer_that_took_an_event_gets_it_again_only_rarely() -> None:
    book = PendingBook()
    book.accepted(A, 0)
    for peer in (P1, P2):
        book.sent([A], peer, 0)
    book.delivered([A], P1, 5)
    due = book.due(REGOSSIP_AFTER_MS, [P1, P2])
    assert due == {P2: [A]}  # the one whose answer was lost
    # A peer that restarted forgot its mempool: after a while the taker gets it again too.
    assert P1 in book.due(5 + REGOSSIP_TAKEN_MS, [P1, P2])


def test_a_reloaded_event_goes_to_every_peer_at_once() -> None:
    book = PendingBook()
    book.restored(A, 1000)
    assert book.due(1000, [P1, P2, P3]) == {P1: [A], P2: [A], P3: [A]}


def test_final_events_are_not_gossiped_and_a_round_is_bounded() -> None:
    book = PendingBook(regossip_batch=2)
    for event_id in (A, B, C):
        book.restored(event_id, 0)
    assert book.due(0, [P1]) == {P1: [A, B]}  # the oldest first
    book.left([A])
    assert book.due(0, [P1]) == {P1: [B, C]}
