"""Admission, in process: accepts and refuses with a real store, and says an event's status."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.errors import (
    BadSignature,
    CertificateNumberTaken,
    EventTooLarge,
    SignedByAnotherParticipant,
    StoreWriteFailed,
)
from ledger.events import Event
from node.limits import RateLimiter
from node.mempool import Mempool
from node.metrics import Metrics
from node.service.admission import Admission, _Unstored
from node.service.gossip import Outbox
from node.service.view import ChainView
from tests.node.service.conftest import Durability, Net, health_of, sample


class Built:
    def __init__(self, view: ChainView) -> None:
        self.view = view
        self.mempool = Mempool(1000)
        self.durability = Durability(self.mempool)
        self.outbox = Outbox()
        self.metrics = Metrics()
        self.health = health_of(view)
        self.admission = Admission(
            view, self.mempool, self.durability, self.outbox, self.health, self.metrics
        )
        self.woken = 0

        def woke() -> None:
            self.woken += 1

        self.admission.when_pending(woke)

    def refused(self, code: str) -> float:
        return sample(self.metrics, "kpledger_events_refused_total", reason=code)


def forged(net: Net) -> Event:
    """An issuance naming BE as its signer, signed with RU's authority key."""
    maker = dataclasses.replace(net.events, keys={**net.events.keys, "BE": net.events.keys["RU"]})
    return maker.issue("BE", "AE")


def test_a_clients_event_is_accepted_stored_and_queued_for_gossip(net: Net) -> None:
    parts = Built(net.view())
    event = net.events.issue("BE", "AE")
    status = parts.admission.submit(event)
    assert status.status == "pending"
    assert event.event_id in parts.mempool
    assert parts.durability.accepted_ids == [event.event_id]
    assert parts.outbox.take() == [event]
    assert parts.woken == 1
    assert parts.admission.status(event.event_id) == status
    # The same event again: the same answer, and nothing new to gossip.
    assert parts.admission.submit(event).status == "pending"
    assert len(parts.outbox) == 0 and len(parts.mempool) == 1


def test_a_peers_event_is_neither_stored_nor_gossiped_by_us(net: Net) -> None:
    parts = Built(net.view())
    event = net.events.issue("BE", "AE")
    assert parts.admission.submit(event, from_peer=True).status == "pending"
    assert parts.durability.accepted_ids == [] and len(parts.outbox) == 0
    # A client gives it to us too: now ours to store.
    parts.admission.submit(event)
    assert parts.durability.accepted_ids == [event.event_id]


def test_an_event_that_breaks_a_rule_is_refused_and_changes_nothing(net: Net) -> None:
    view = net.view()
    first = net.events.issue("BE", "AE")
    net.commit(view, [first])
    parts = Built(view)
    rival = net.events.issue("BE", "IN", number=first.body.facts.number)
    with pytest.raises(CertificateNumberTaken):
        parts.admission.submit(rival)
    assert len(parts.mempool) == 0 and len(parts.outbox) == 0 and parts.woken == 0
    assert parts.refused("certificate_number_taken") == 1
    assert parts.admission.status(rival.event_id) is None
    # The final one is answered from the store.
    final = parts.admission.submit(first)
    assert final.status == "final" and final.height == 1


def test_nothing_is_accepted_while_the_store_cannot_be_written(net: Net) -> None:
    parts = Built(net.view())
    parts.health.write_failed("No space left on device")
    with pytest.raises(StoreWriteFailed, match="No space left"):
        parts.admission.submit(net.events.issue("BE", "AE"))
    assert len(parts.mempool) == 0


def test_an_event_over_the_size_limit_is_refused(net: Net) -> None:
    view = net.view()
    params = dataclasses.replace(view.registry.parameters, max_event_bytes=100)
    view.registry = dataclasses.replace(view.registry, parameters=params)
    parts = Built(view)
    with pytest.raises(EventTooLarge):
        parts.admission.submit(net.events.issue("BE", "AE"))
    assert len(parts.mempool) == 0


def test_whose_key_signed_is_looked_up_only_within_the_budget(net: Net) -> None:
    parts = Built(net.view())
    with pytest.raises(SignedByAnotherParticipant):
        parts.admission.submit(forged(net))
    parts.admission.attributions = RateLimiter(1e-9, 1)  # spent
    with pytest.raises(BadSignature) as refused:
        parts.admission.submit(forged(net))
    assert type(refused.value) is BadSignature
    assert (
        parts.refused("bad_signature") == 1 and parts.refused("signed_by_another_participant") == 1
    )


def test_refused_after_acceptance_the_status_says_why(net: Net) -> None:
    parts = Built(net.view())
    event = net.events.issue("BE", "AE")
    parts.admission.submit(event)
    parts.admission.refuse([(event, CertificateNumberTaken("taken meanwhile"))])
    assert parts.durability.forgotten == [event.event_id] and event.event_id not in parts.mempool
    status = parts.admission.status(event.event_id)
    assert status is not None and status.status == "rejected"
    assert (status.error, status.message) == ("certificate_number_taken", "taken meanwhile")


def test_a_commit_rechecks_the_pending_events_of_the_certificates_it_changed(net: Net) -> None:
    view = net.view()
    parts = Built(view)
    kept = net.events.issue("BE", "AE")
    pending = net.events.issue("BE", "AE")
    parts.admission.submit(kept)
    parts.admission.submit(pending)
    # The network finalises a rival under `pending`'s number (from another node's mempool).
    rival = net.events.issue("BE", "IN", number=pending.body.facts.number)
    execution = net.commit(view, [rival])
    parts.admission.committed(execution, register_changed=False)
    assert kept.event_id in parts.mempool and pending.event_id not in parts.mempool
    status = parts.admission.status(pending.event_id)
    assert status is not None and status.error == "certificate_number_taken"


def test_a_new_event_costs_one_store_read_for_whether_it_is_final(net: Net) -> None:
    """submit asks the store for the event once: the rules' own "already on the ledger?" is
    answered from that read (the store cannot change in between)."""
    view = net.view()
    stored = net.events.issue("BE", "AE")
    net.commit(view, [stored])
    parts = Built(view)
    events = view.store.readers.events
    asked: list[bytes] = []
    entry = events.entry

    def counted(event_id: bytes) -> bytes | None:
        asked.append(event_id)
        return entry(event_id)

    events.entry = counted  # type: ignore[method-assign]
    event = net.events.issue("BE", "AE")
    assert parts.admission.submit(event).status == "pending"
    assert asked.count(event.event_id) == 1
    asked.clear()
    assert parts.admission.submit(stored, from_peer=True).status == "final"
    assert asked == [stored.event_id]


def test_the_reader_admission_uses_answers_as_the_store_does_but_for_the_one_event(
    net: Net,
) -> None:
    view = net.view()
    stored = net.events.issue("BE", "AE")
    net.commit(view, [stored])
    fresh = net.events.issue("BE", "AE")
    reader = _Unstored(view.reader, fresh.event_id)
    assert reader.has_event(stored.event_id) and not reader.has_event(fresh.event_id)
    number = stored.body.facts.number
    assert reader.get_certificate(number) == view.reader.get_certificate(number)
    assert reader.header(1) == view.reader.header(1)
    assert getattr(reader, "no_such_part", None) is None
