"""Event gossip, in process: batches bounded by bytes and count, every peer told, the book
hearing what was taken, re-gossip of what is due, and the events peers send."""

from __future__ import annotations

import dataclasses
import time

from ledger.encoding import decode
from ledger.errors import CertificateNumberTaken, LedgerError, MempoolFull
from ledger.events import Event
from ledger.pending import PendingBook
from node.mempool import Mempool
from node.metrics import Metrics
from node.service.admission import Admission
from node.service.gossip import Gossip, Outbox, gossip_batches
from node.service.view import ChainView
from tests.node.service.conftest import Durability, Link, Net, health_of


class Intake:
    """Stands in for admission: takes the events it is not told to refuse."""

    def __init__(self) -> None:
        self.taken: list[Event] = []
        self.refuse: dict[bytes, LedgerError] = {}
        self.noted: list[tuple[bytes, str]] = []

    def submit(self, event: Event, *, from_peer: bool = False) -> object:
        assert from_peer
        if event.event_id in self.refuse:
            raise self.refuse[event.event_id]
        self.taken.append(event)
        return None

    def note_refused_relay(self, event: Event, exc: LedgerError) -> None:
        self.noted.append((event.event_id, exc.code))


def gossip_of(view: ChainView, book: PendingBook | None = None) -> tuple[Gossip, Link, Intake]:
    link, intake = Link(), Intake()
    book = book if book is not None else PendingBook()
    gossip = Gossip(view, Mempool(1000), book, Outbox(), intake, link, Metrics())
    return gossip, link, intake


def test_batches_are_bounded_by_bytes_and_by_count(net: Net) -> None:
    events = [net.events.issue("BE", "AE") for _ in range(7)]
    size = len(events[0].encoded)
    assert all(abs(len(e.encoded) - size) < 8 for e in events)
    by_bytes = gossip_batches(events, 100, 3 * size + 4)
    assert [len(b) for b in by_bytes] == [3, 3, 1]
    assert [e for b in by_bytes for e in b] == events  # in order, none lost
    assert all(sum(len(e.encoded) for e in b) <= 3 * size + 4 for b in by_bytes)
    assert [len(b) for b in gossip_batches(events, 2, 10**9)] == [2, 2, 2, 1]
    # An event over the byte bound still goes, alone.
    assert [len(b) for b in gossip_batches(events[:2], 100, 1)] == [1, 1]
    assert gossip_batches([], 100, 1000) == []


def test_a_flush_sends_each_batch_to_every_peer_and_the_book_hears_it(net: Net) -> None:
    view = net.view()
    events = [net.events.issue("BE", "AE") for _ in range(5)]
    params = dataclasses.replace(view.registry.parameters, max_block_events=2)
    view.registry = dataclasses.replace(view.registry, parameters=params)
    gossip, link, _ = gossip_of(view)
    now = int(time.time() * 1000)
    for event in events:
        gossip.mempool.add(event)
        gossip.book.accepted(event.event_id, now)
        gossip.outbox.add(event)
    gossip.flush()
    assert len(gossip.outbox) == 0
    peers = {p.node_key for p in view.peers}
    assert len(peers) == 3
    assert {p.node_key for p, _, _ in link.sent} == peers
    assert all(path == "/peer/events" for _, path, _ in link.sent)
    assert len(link.sent) == 3 * 3  # batches of 2, 2, 1 to each peer
    for peer in peers:
        bodies = [decode(body) for p, _, body in link.sent if p.node_key == peer]
        assert [len(b) for b in bodies] == [2, 2, 1]
        assert [Event.decode(raw) for b in bodies for raw in b] == events
    # Every peer took them: nothing is due again for a while.
    assert gossip.book.due(now + 100, list(peers)) == {}


def test_what_a_peer_did_not_take_is_gossiped_again(net: Net) -> None:
    view = net.view()
    gossip, link, _ = gossip_of(view, PendingBook(regossip_after_ms=0))
    link.delivered = False
    event = net.events.issue("BE", "AE")
    gossip.mempool.add(event)
    gossip.book.accepted(event.event_id, int(time.time() * 1000))
    gossip.outbox.add(event)
    gossip.flush()
    link.sent.clear()
    gossip.regossip()  # due at once (no retry interval in this book)
    assert {p.node_key for p, _, _ in link.sent} == {p.node_key for p in view.peers}
    assert decode(link.sent[0][2]) == [event.encoded]


def test_a_peers_events_are_admitted_and_its_refused_ones_recorded(net: Net) -> None:
    gossip, _, intake = gossip_of(net.view())
    taken, refused, full = (net.events.issue("BE", "AE") for _ in range(3))
    intake.refuse[refused.event_id] = CertificateNumberTaken("taken")
    intake.refuse[full.event_id] = MempoolFull("full")
    gossip.on_peer_events(
        [taken.encoded, "not bytes", b"\x93garbage", refused.encoded, full.encoded]
    )
    assert intake.taken == [taken]
    # Back-pressure is not a refusal: the sender relays it again.
    assert intake.noted == [(refused.event_id, "certificate_number_taken")]


def test_a_relayed_event_the_mempool_holds_is_not_decoded_again(net: Net) -> None:
    gossip, _, intake = gossip_of(net.view())
    held, fresh = net.events.issue("BE", "AE"), net.events.issue("BE", "AE")
    gossip.mempool.add(held)
    gossip.on_peer_events([held.encoded, fresh.encoded])
    # Its id is the hash of its bytes: the same bytes are the event the mempool holds.
    assert intake.taken == [fresh]


def test_skipping_held_events_answers_and_stores_what_admission_did(net: Net) -> None:
    """Relaying events the node holds (pending, or final) changes nothing, as admission's own
    answer to them did; a new event among them is admitted as before."""
    view = net.view()
    pending, final, fresh = (net.events.issue("BE", "AE") for _ in range(3))
    net.commit(view, [final])
    mempool = Mempool(1000)
    durability = Durability(mempool)
    outbox = Outbox()
    admission = Admission(view, mempool, durability, outbox, health_of(view), Metrics())
    admission.submit(pending)
    durability.accepted_ids.clear()
    outbox.take()
    gossip = Gossip(view, mempool, PendingBook(), Outbox(), admission, Link(), Metrics())
    gossip.on_peer_events([pending.encoded, final.encoded, fresh.encoded, pending.encoded])
    assert mempool.ids == {pending.event_id, fresh.event_id}
    assert durability.accepted_ids == [] and len(outbox) == 0
    assert admission.status(pending.event_id) == admission.status(fresh.event_id)
    final_status = admission.status(final.event_id)
    assert final_status is not None and final_status.status == "final"
