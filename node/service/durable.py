"""The durable mempool's writer: accepted events to the store's pending family (group commit),
the requests awaiting their write, and the reload at start (ledger/pending.py decides, this
does the writes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from ledger.errors import LedgerError, MalformedInput, StoreWriteFailed
from ledger.events import Event
from ledger.pending import PendingBook, WriteBatch
from ledger.state import Overlay
from node.clock import now_ms
from node.mempool import Mempool
from node.metrics import Metrics
from node.service.view import ChainView

log = logging.getLogger("kpledger.node")

#: Group commit: the write of accepted events begins once the loop has run what is ready (the
#: other requests that came in the same moment), and while it is on disk the next ones gather
#: for the write after it. No delay beyond that: on a loaded machine a sleeping process wakes
#: late (2 ms asked cost 15 ms a write), and the write's own time gathers enough.
GROUP_COMMIT_S = 0.0


class DurableWriter:
    """Writes what admission accepted before its 202 is sent, and forgets what became final or
    refused. Events leave the mempool through `forget` only, so the book and the waiters stay
    in step with it."""

    def __init__(
        self, view: ChainView, mempool: Mempool, book: PendingBook, metrics: Metrics
    ) -> None:
        self.view = view
        self.mempool = mempool
        #: Accepted events' durability and re-gossip (the pure part).
        self.book = book
        self.metrics = metrics
        #: The requests awaiting their event's write.
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- what admission and commit tell it ------------------------------------------------------
    def accepted(self, event: Event) -> None:
        """A client's event: written before its 202 (durable()), then re-gossiped until final."""
        if event.event_id not in self.book:
            self.book.accepted(event.event_id, now_ms())
        if not self.book.is_durable(event.event_id):
            self._wakeup.set()  # a write that failed is tried again with this one

    async def durable(self, event_id: bytes) -> None:
        """Return once the event that admission accepted is in the store (or final, or refused:
        recorded either way); raise StoreWriteFailed if it could not be written."""
        future = self.written(event_id)
        if future is not None:
            await future

    def written(self, event_id: bytes) -> asyncio.Future[None] | None:
        """`durable` as a future: None if the event is in the store already, else the future its
        write settles (StoreWriteFailed if it fails). A batch of events awaits its futures
        together, with no task for each (node/http/participant.py)."""
        if self.book.is_durable(event_id):
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(event_id, []).append(future)
        return future

    def stored(self, event_ids: Iterable[bytes]) -> list[bytes]:
        """Those of `event_ids` written to the pending family: a block's batch deletes them."""
        return [i for i in event_ids if i in self.book and self.book.is_durable(i)]

    def forget(self, event_ids: list[bytes]) -> list[bytes]:
        """These events are final or refused: out of the mempool and the book. Returns those in
        the store's pending family, to delete in the batch that records the outcome."""
        self.mempool.remove(event_ids)
        stored = self.book.left(event_ids)
        # A request still awaiting its write has its answer: the outcome is recorded.
        self._release(event_ids)
        return stored

    def _release(self, event_ids: Iterable[bytes], error: LedgerError | None = None) -> None:
        for event_id in event_ids:
            for future in self._waiters.pop(event_id, ()):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    # -- running ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Reload what was accepted before the last stop, then write as events are accepted."""
        self.restore()
        self._task = asyncio.get_running_loop().create_task(self._write_loop())

    async def finish(self) -> None:
        """At a stop: the write under way ends (it runs in a thread, and the store must outlive
        it), then whatever is still queued is written."""
        self._stopping = True
        if self._task is not None:
            self._wakeup.set()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.write_pending()

    def abandon(self) -> None:
        """The node stops: whoever still waits for a write hears that it will not come."""
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(
                        StoreWriteFailed("the node stopped before it could store the event")
                    )
        self._waiters.clear()

    async def _write_loop(self) -> None:
        while not self._stopping:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(GROUP_COMMIT_S)
            try:
                await self.write_pending()
            except Exception:  # a bug here must not leave every later request waiting
                log.exception("writing accepted events failed")

    async def write_pending(self) -> None:
        """Write every queued event, one synced batch at a time, and answer their requests.
        After a failed write it stops: the next acceptance (a client sending again) retries."""
        while (batch := self.book.next_write()) is not None:
            if not await self._write_batch(batch):
                return

    async def _write_batch(self, batch: WriteBatch) -> bool:
        store = self.view.store
        events = [e for i in batch.event_ids if (e := self.mempool.get(i)) is not None]
        try:
            # In a thread: the loop takes the next requests (the next batch) meanwhile.
            await asyncio.to_thread(store.put_pending, events)
        except Exception as exc:  # a full disk, an I/O error: no 202, nothing is promised
            failed = self.book.write_failed(batch)
            self.metrics.pending_write_failures.inc()
            error = (
                exc
                if isinstance(exc, StoreWriteFailed)
                else StoreWriteFailed(f"this node could not store the event: {exc}")
            )
            log.error("accepted events could not be written", extra={"error": error.message})
            self._release(failed, error)
            return False
        written = self.book.written(batch)
        self.metrics.pending_writes.inc()
        if written.stale:
            store.drop_pending(written.stale)  # final or refused while being written
        self._release(written.durable)
        return True

    def restore(self) -> None:
        """Reload the events accepted before the last stop (or kill): each is checked again
        against the state now, signature included; one that no longer applies is refused, and
        its status says why."""
        view, store = self.view, self.view.store
        ctx = view.next_context()
        done: list[bytes] = []
        restored = 0
        for event_id, raw in list(store.pending()):
            try:
                event = Event.decode(raw)
                if event.event_id != event_id:
                    raise MalformedInput("the stored bytes are another event's")
            except LedgerError as exc:
                log.error(
                    "unreadable pending event dropped",
                    extra={"event_id": event_id.hex(), "reason": exc.message},
                )
                done.append(event_id)
                continue
            if store.has_event(event_id):
                done.append(event_id)  # its block was final before the delete was written
                continue
            try:
                Overlay(view.reader).apply(view.registry, event, ctx)
            except LedgerError as exc:
                store.note_refused(event_id, exc.code, exc.message, pending=True)
                self.metrics.events_refused.labels(exc.code).inc()
                log.info(
                    "reloaded event refused", extra={"event_id": event_id.hex(), "code": exc.code}
                )
                continue
            self.mempool.add(event, restored=True)
            self.book.restored(event_id, now_ms())
            restored += 1
        if done:
            store.drop_pending(done)
        self.metrics.pending_restored.inc(restored)
        self.metrics.mempool.set(len(self.mempool))
        if restored or done:
            log.info("pending events reloaded", extra={"events": restored, "dropped": len(done)})
