"""The durable mempool's writer, in process: group commit to the pending family, the requests
awaiting it, a failed write, and the reload at start."""

from __future__ import annotations

import asyncio

import pytest

from ledger.errors import StoreWriteFailed
from ledger.events import Event
from ledger.pending import PendingBook
from node.mempool import Mempool
from node.metrics import Metrics
from node.service.durable import DurableWriter
from node.service.view import ChainView
from tests.node.service.conftest import Net, sample


def writer_of(view: ChainView) -> DurableWriter:
    return DurableWriter(view, Mempool(1000), PendingBook(), Metrics())


def accept(writer: DurableWriter, events: list[Event]) -> None:
    for event in events:
        writer.mempool.add(event)
        writer.accepted(event)


def test_accepted_events_are_written_in_one_batch_before_their_requests_are_answered(
    net: Net,
) -> None:
    view = net.view(on_disk=True)
    writer = writer_of(view)
    events = [net.events.issue("BE", "AE") for _ in range(3)]

    async def run() -> None:
        writer.start()
        accept(writer, events)
        waiting = [asyncio.ensure_future(writer.durable(e.event_id)) for e in events]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiting)  # not before the write
        await asyncio.gather(*waiting)
        await writer.finish()

    asyncio.run(run())
    assert dict(view.store.pending()) == {e.event_id: e.encoded for e in events}
    assert (
        sample(writer.metrics, "kpledger_pending_writes_total") == 1
    )  # one synced batch for all three
    assert writer.stored([e.event_id for e in events]) == [e.event_id for e in events]


def test_written_is_none_once_stored_and_else_the_future_the_write_settles(net: Net) -> None:
    """What a batch awaits (node/http/participant.py): one future per event still to write,
    none for an event already in the store; a failed write settles its future with the error."""
    view = net.view(on_disk=True)
    writer = writer_of(view)
    first, second = net.events.issue("BE", "AE"), net.events.issue("BE", "AE")
    real = view.store.put_pending

    def full_disk(events: object) -> None:
        raise OSError("No space left on device")

    async def run() -> None:
        writer.start()
        accept(writer, [first])
        future = writer.written(first.event_id)
        assert future is not None and not future.done()
        await future
        assert writer.written(first.event_id) is None  # stored: nothing to wait for
        view.store.put_pending = full_disk  # type: ignore[method-assign]
        accept(writer, [second])
        failing = writer.written(second.event_id)
        assert failing is not None
        (outcome,) = await asyncio.gather(failing, return_exceptions=True)
        assert isinstance(outcome, StoreWriteFailed)
        view.store.put_pending = real  # type: ignore[method-assign]
        await writer.finish()

    asyncio.run(run())
    # The failed one stays queued, and the stop writes what is still queued.
    assert set(dict(view.store.pending())) == {first.event_id, second.event_id}


def test_a_failed_write_answers_with_the_error_and_the_next_acceptance_retries(
    net: Net,
) -> None:
    view = net.view(on_disk=True)
    writer = writer_of(view)
    event = net.events.issue("BE", "AE")
    real = view.store.put_pending

    def full_disk(events: object) -> None:
        raise OSError("No space left on device")

    async def run() -> None:
        writer.start()
        view.store.put_pending = full_disk  # type: ignore[method-assign]
        accept(writer, [event])
        with pytest.raises(StoreWriteFailed, match="No space left"):
            await writer.durable(event.event_id)
        assert dict(view.store.pending()) == {}
        view.store.put_pending = real  # type: ignore[method-assign]
        writer.accepted(event)  # the client sends it again
        await writer.durable(event.event_id)
        await writer.finish()

    asyncio.run(run())
    assert set(dict(view.store.pending())) == {event.event_id}


def test_an_outcome_answers_a_request_still_waiting_for_the_write(net: Net) -> None:
    view = net.view(on_disk=True)
    writer = writer_of(view)
    event = net.events.issue("BE", "AE")

    async def run() -> None:
        accept(writer, [event])  # no write loop: the write never comes
        waiting = asyncio.ensure_future(writer.durable(event.event_id))
        await asyncio.sleep(0)
        assert writer.forget([event.event_id]) == []  # never written: nothing to delete
        await waiting
        assert event.event_id not in writer.mempool and event.event_id not in writer.book

    asyncio.run(run())


def test_a_stop_fails_the_requests_whose_write_will_not_come(net: Net) -> None:
    writer = writer_of(net.view(on_disk=True))
    event = net.events.issue("BE", "AE")

    async def run() -> None:
        accept(writer, [event])
        waiting = asyncio.ensure_future(writer.durable(event.event_id))
        await asyncio.sleep(0)
        writer.abandon()
        with pytest.raises(StoreWriteFailed):
            await waiting

    asyncio.run(run())


def test_the_reload_keeps_what_applies_and_refuses_what_no_longer_does(net: Net) -> None:
    view = net.view(on_disk=True)
    kept, lost, final = (net.events.issue("BE", "AE") for _ in range(3))
    view.store.put_pending([kept, lost, final])
    # While the node was down: a rival took `lost`'s number, and `final`'s block was written
    # before the delete of its pending key was.
    rival = net.events.issue("BE", "IN", number=lost.body.facts.number)
    net.commit(view, [rival, final])
    writer = writer_of(view)
    writer.restore()
    assert writer.mempool.ids == {kept.event_id}
    assert kept.event_id in writer.book and writer.book.is_durable(kept.event_id)
    refused = view.store.refused(lost.event_id)
    assert refused is not None and refused[0] == "certificate_number_taken"
    assert set(dict(view.store.pending())) == {kept.event_id}
    assert sample(writer.metrics, "kpledger_pending_restored_total") == 1
