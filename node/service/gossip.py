"""Event gossip: clients' events to every peer in batches, pending events again to the peers that
may lack them (ledger/pending.py says which), and the events peers send us."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ledger.encoding import encode
from ledger.errors import LedgerError, MempoolFull
from ledger.events import Event, event_id_of
from ledger.pending import PendingBook
from node.clock import now_ms
from node.mempool import Mempool
from node.metrics import Metrics
from node.peers import Peer
from node.service.view import ChainView, PeerLink

log = logging.getLogger("kpledger.node")

#: Events from clients go to the peers in one batch this often (each HTTP request costs both
#: ends more than its events; a proposal flushes the batch at once anyway).
GOSSIP_INTERVAL_S = 0.025
#: How often the pending events are looked at for re-gossip (ledger/pending.py says to whom).
REGOSSIP_TICK_S = 0.5


class Outbox:
    """Events from clients, for the next gossip to every peer."""

    def __init__(self) -> None:
        self._events: list[Event] = []

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: Event) -> None:
        self._events.append(event)

    def take(self) -> list[Event]:
        events, self._events = self._events, []
        return events


class EventIntake(Protocol):
    """Admission as gossip hands it a peer's events (node/service/admission.py)."""

    def submit(self, event: Event, *, from_peer: bool = False) -> object: ...

    def note_refused_relay(self, event: Event, exc: LedgerError) -> None: ...


def gossip_batches(events: list[Event], max_events: int, max_bytes: int) -> list[list[Event]]:
    """`events` in batches of at most `max_events` events and `max_bytes` bytes of events (a
    block's worth: the bound /peer/events reads with)."""
    batches: list[list[Event]] = []
    size = 0
    for event in events:
        if not batches or (len(batches[-1]) >= max_events or size + len(event.encoded) > max_bytes):
            batches.append([])
            size = 0
        batches[-1].append(event)
        size += len(event.encoded)
    return batches


class Gossip:
    def __init__(
        self,
        view: ChainView,
        mempool: Mempool,
        book: PendingBook,
        outbox: Outbox,
        intake: EventIntake,
        link: PeerLink,
        metrics: Metrics,
    ) -> None:
        self.view = view
        self.mempool = mempool
        self.book = book
        self.outbox = outbox
        self.intake = intake
        self.link = link
        self.metrics = metrics

    def loops(self) -> list[asyncio.Task[None]]:
        """Start the timed flush and the re-gossip; the caller cancels them at stop."""
        loop = asyncio.get_running_loop()
        return [loop.create_task(self._flush_loop()), loop.create_task(self._regossip_loop())]

    def batches(self, events: list[Event]) -> list[list[Event]]:
        params = self.view.registry.parameters
        return gossip_batches(events, params.max_block_events, params.max_block_bytes)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(GOSSIP_INTERVAL_S)
            self.flush()

    def flush(self) -> None:
        """Send the events clients gave us to every peer."""
        for batch in self.batches(self.outbox.take()):
            body = encode([e.encoded for e in batch])
            ids = [e.event_id for e in batch]
            for peer in self.view.peers:
                self._send(peer, ids, body)

    def _send(self, peer: Peer, ids: list[bytes], body: bytes) -> None:
        """Send events to a peer; the book hears that they left and whether the peer took them."""
        self.book.sent(ids, peer.node_key, now_ms())

        def done(ok: bool) -> None:
            if ok:
                self.book.delivered(ids, peer.node_key, now_ms())

        self.link.send(peer, "/peer/events", body, done)

    async def _regossip_loop(self) -> None:
        while True:
            await asyncio.sleep(REGOSSIP_TICK_S)
            try:
                self.regossip()
            except Exception:  # a bug here must not stop the loop
                log.exception("re-gossip failed")

    def regossip(self) -> None:
        """Send pending events again to the peers that may lack them (the book says which)."""
        peers = self.view.peers
        due = self.book.due(now_ms(), [p.node_key for p in peers])
        for peer in peers:
            events = [
                e for i in due.get(peer.node_key, ()) if (e := self.mempool.get(i)) is not None
            ]
            self.metrics.events_regossiped.inc(len(events))
            for batch in self.batches(events):
                self._send(peer, [e.event_id for e in batch], encode([e.encoded for e in batch]))

    def on_peer_events(self, items: list[Any]) -> None:
        """Events a peer relays (its request's signature already checked): each is admitted
        as a peer's, and a refusal is recorded, not answered.

        An event's id is the hash of its bytes (ledger/events.py), so bytes whose id the mempool
        holds are that very event: admission would answer "pending" and do nothing (a peer's
        event is neither stored nor gossiped by us), and the decode is skipped. About a third
        of what peers relay at saturation is pending events sent again."""
        mempool = self.mempool
        for raw in items:
            if not isinstance(raw, bytes):
                continue
            if event_id_of(raw) in mempool:
                continue
            try:
                event = Event.decode(raw)
            except LedgerError:
                continue  # not an event: the sender's problem
            try:
                self.intake.submit(event, from_peer=True)
            except MempoolFull:
                pass  # for now only: the sender's node holds it and relays it again
            except LedgerError as exc:
                self.intake.note_refused_relay(event, exc)
